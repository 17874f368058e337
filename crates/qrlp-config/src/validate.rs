//! Checks of values that their types alone do not rule out.

use std::net::IpAddr;

use crate::limits::{BORDER, BOX_SIZE};
use crate::load::{ConfigError, Problem};
use crate::Config;

impl Config {
    /// Checks every value and every combination; returns all problems at once.
    ///
    /// # Errors
    /// A [`ConfigError`] listing each problem with its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut p = Vec::new();
        let s = &self.server;
        if !is_host(&s.host) {
            p.push(Problem::new(
                "server.host",
                format!(
                    "{:?} is neither an IP address nor a host name",
                    truncate(&s.host)
                ),
            ));
        }
        if !(1024..=64 * 1024 * 1024).contains(&s.body_limit_bytes) {
            p.push(Problem::new(
                "server.body_limit_bytes",
                format!(
                    "must be between 1024 and 67108864, got {}",
                    s.body_limit_bytes
                ),
            ));
        }
        if s.shutdown_timeout_secs > 3600 {
            p.push(Problem::new(
                "server.shutdown_timeout_secs",
                format!(
                    "must be between 0 and 3600, got {}",
                    s.shutdown_timeout_secs
                ),
            ));
        }

        if let Err(msg) = check_log_filter(&self.log.level) {
            p.push(Problem::new("log.level", msg));
        }

        let c = &self.cors;
        if c.enabled && c.allowed_origins.is_empty() {
            p.push(Problem::new(
                "cors.allowed_origins",
                "CORS is enabled but no origin is allowed: list origins or use [\"*\"]",
            ));
        }
        if c.allowed_origins.len() > 1 && c.allowed_origins.iter().any(|o| o == "*") {
            p.push(Problem::new(
                "cors.allowed_origins",
                "\"*\" allows every origin and cannot be combined with others",
            ));
        }
        for origin in &c.allowed_origins {
            if origin != "*" && !is_origin(origin) {
                p.push(Problem::new(
                    "cors.allowed_origins",
                    format!(
                        "{:?} is not an origin like https://app.example.com (scheme and host, no path)",
                        truncate(origin)
                    ),
                ));
            }
        }
        for (key, list) in [
            ("cors.allowed_methods", &c.allowed_methods),
            ("cors.allowed_headers", &c.allowed_headers),
            ("cors.expose_headers", &c.expose_headers),
        ] {
            for item in list.iter().filter(|i| !is_token(i)) {
                p.push(Problem::new(
                    key,
                    format!("{:?} is not a valid HTTP token", truncate(item)),
                ));
            }
        }

        let r = &self.redis;
        if r.is_configured()
            && !["redis://", "rediss://", "unix://", "redis+unix://"]
                .iter()
                .any(|scheme| r.url.starts_with(scheme))
        {
            p.push(Problem::new(
                "redis.url",
                format!(
                    "{:?} must start with redis://, rediss:// or unix://",
                    truncate(&r.redacted_url())
                ),
            ));
        }
        if !(1..=60_000).contains(&r.timeout_ms) {
            p.push(Problem::new(
                "redis.timeout_ms",
                format!("must be between 1 and 60000, got {}", r.timeout_ms),
            ));
        }

        let q = &self.qr;
        if !BOX_SIZE.contains(&q.default_box_size) {
            p.push(Problem::new(
                "qr.default_box_size",
                format!("must be between 5 and 20, got {}", q.default_box_size),
            ));
        }
        if !BORDER.contains(&q.default_border) {
            p.push(Problem::new(
                "qr.default_border",
                format!("must be between 1 and 10, got {}", q.default_border),
            ));
        }
        if q.cache_max_age_secs > 31_536_000 {
            p.push(Problem::new(
                "qr.cache_max_age_secs",
                format!(
                    "must be between 0 and 31536000 (one year), got {}",
                    q.cache_max_age_secs
                ),
            ));
        }

        if p.is_empty() {
            Ok(())
        } else {
            Err(ConfigError { problems: p })
        }
    }
}

/// At most 64 characters of a bad value, so that a problem stays one readable line.
fn truncate(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(MAX).collect();
        t.push('…');
        t
    }
}

fn is_host(host: &str) -> bool {
    host.parse::<IpAddr>().is_ok() || is_dns_name(host)
}

fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// `scheme://host[:port]` with nothing after.
fn is_origin(origin: &str) -> bool {
    let Some(rest) = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
    else {
        return false;
    };
    let host = match rest.rsplit_once(':') {
        Some((h, port)) if !h.ends_with(']') || rest.starts_with('[') => {
            if port.parse::<u16>().is_err() {
                return false;
            }
            h
        }
        _ => rest,
    };
    let bracketed = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .is_some_and(|h| h.parse::<std::net::Ipv6Addr>().is_ok());
    bracketed || is_host(host)
}

/// An RFC 9110 token: header names and methods.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Light check of `tracing` filter directives: `level`, `target` or `target=level`, joined
/// by commas. The logger reports anything subtler when it starts.
fn check_log_filter(filter: &str) -> Result<(), String> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    if filter.trim().is_empty() {
        return Err("is empty: use a level such as info".into());
    }
    for directive in filter.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let level = match directive.rsplit_once('=') {
            Some((target, level)) => {
                if target.is_empty() {
                    return Err(format!("{directive:?} has no target before '='"));
                }
                Some(level)
            }
            None if LEVELS.contains(&directive.to_ascii_lowercase().as_str()) => None,
            // A bare target, e.g. "qrlp_server", enables it at every level.
            None if directive
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':' || b == b'-') =>
            {
                None
            }
            None => {
                return Err(format!(
                    "{:?} is not a level or target",
                    truncate(directive)
                ))
            }
        };
        if let Some(level) = level {
            if !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
                return Err(format!(
                    "unknown level {:?} in {directive:?}: use trace, debug, info, warn, error or off",
                    truncate(level)
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(c: &Config) -> Vec<String> {
        match c.validate() {
            Ok(()) => vec![],
            Err(e) => e.problems.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(problems(&Config::default()), Vec::<String>::new());
    }

    #[test]
    fn hosts() {
        for ok in [
            "127.0.0.1",
            "0.0.0.0",
            "::",
            "::1",
            "localhost",
            "qrlp-1.internal",
        ] {
            assert!(is_host(ok), "{ok}");
        }
        for bad in ["", "a b", "-x", "x..y", "http://x", "[::1]"] {
            assert!(!is_host(bad), "{bad}");
        }
    }

    #[test]
    fn origins() {
        for ok in [
            "https://app.example.com",
            "http://localhost:3000",
            "http://[::1]:8080",
            "http://127.0.0.1",
        ] {
            assert!(is_origin(ok), "{ok}");
        }
        for bad in [
            "app.example.com",
            "https://a.example/",
            "https://a.example:x",
            "ftp://a",
        ] {
            assert!(!is_origin(bad), "{bad}");
        }
    }

    #[test]
    fn log_filters() {
        for ok in [
            "info",
            "INFO",
            "warn,qrlp_server=debug",
            "tower_http",
            "a::b=trace",
        ] {
            assert_eq!(check_log_filter(ok), Ok(()), "{ok}");
        }
        // A lone word that is not a level names a target, as in `tracing`'s filters.
        assert_eq!(check_log_filter("loud"), Ok(()));
        for bad in ["", "x=loud", "=info", "a b", "info,x=verbose"] {
            assert!(check_log_filter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn all_problems_of_a_bad_config() {
        let mut c = Config::default();
        c.server.host = "not a host".into();
        c.server.body_limit_bytes = 10;
        c.server.shutdown_timeout_secs = 99_999;
        c.log.level = "info,qrlp=loud".into();
        c.cors.enabled = true;
        c.cors.allowed_origins = vec!["*".into(), "nope".into()];
        c.cors.allowed_methods = vec!["GE T".into()];
        c.redis.url = "http://:pw@x".into();
        c.redis.timeout_ms = 0;
        c.qr.default_box_size = 4;
        c.qr.default_border = 0;
        c.qr.cache_max_age_secs = u64::MAX;
        let p = problems(&c);
        assert_eq!(p.len(), 12, "{p:#?}");
        assert!(p.iter().all(|line| !line.contains(":pw@")), "{p:#?}");
    }
}
