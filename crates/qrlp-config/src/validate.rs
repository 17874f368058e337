//! Checks of values that their types alone do not rule out.

use std::net::IpAddr;

use crate::limits::{BORDER, BOX_SIZE};
use crate::load::{ConfigError, Problem};
use crate::{Config, SignatureSuite, SIGNATURE_ALGORITHMS};

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
        if !s.public_base_url.is_empty() {
            if let Err(why) = check_base_url(&s.public_base_url) {
                p.push(Problem::new("server.public_base_url", why));
            }
        }
        for proxy in &s.trusted_proxies {
            if !is_cidr(proxy) {
                p.push(Problem::new(
                    "server.trusted_proxies",
                    format!(
                        "{:?} is not a CIDR block such as 10.0.0.0/8",
                        truncate(proxy)
                    ),
                ));
            }
        }
        for (key, value, max) in [
            (
                "server.header_read_timeout_secs",
                s.header_read_timeout_secs,
                300,
            ),
            ("server.request_timeout_secs", s.request_timeout_secs, 3600),
            (
                "server.max_connections",
                u64::from(s.max_connections),
                1_000_000,
            ),
            (
                "server.keepalive_timeout_secs",
                s.keepalive_timeout_secs,
                3600,
            ),
            (
                "auth.purge_interval_secs",
                self.auth.purge_interval_secs,
                86_400,
            ),
            (
                "auth.invitation_ttl_secs",
                self.auth.invitation_ttl_secs,
                30 * 86_400,
            ),
            (
                "auth.password_reset_ttl_secs",
                self.auth.password_reset_ttl_secs,
                86_400,
            ),
        ] {
            let min = if key.ends_with("ttl_secs") { 60 } else { 1 };
            if !(min..=max).contains(&value) {
                p.push(Problem::new(
                    key,
                    format!("must be between {min} and {max}, got {value}"),
                ));
            }
        }
        let m = &self.metrics;
        if !m.listen.is_empty() && m.listen.parse::<std::net::SocketAddr>().is_err() {
            p.push(Problem::new(
                "metrics.listen",
                format!(
                    "{:?} is not an address such as 127.0.0.1:9100",
                    truncate(&m.listen)
                ),
            ));
        }
        if !m.token.is_empty() && m.token.len() < 16 {
            p.push(Problem::new(
                "metrics.token",
                "must be at least 16 characters (not shown: this key is secret)",
            ));
        }
        let mail = &self.mail;
        let scheme_ok = ["smtp://", "smtps://"]
            .iter()
            .any(|p| mail.smtp_url.starts_with(p));
        if !mail.smtp_url.is_empty() && !scheme_ok {
            p.push(Problem::new(
                "mail.smtp_url",
                "must start with smtp:// or smtps:// (not shown: it may hold a password)",
            ));
        }
        if mail.from.trim().is_empty() || !mail.from.contains('@') {
            p.push(Problem::new("mail.from", "must be a mail address"));
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

        let st = &self.storage;
        if st.data_dir.trim().is_empty() {
            p.push(Problem::new("storage.data_dir", "must not be empty"));
        }
        if !st.database_url.is_empty()
            && !["postgres://", "postgresql://", "sqlite:"]
                .iter()
                .any(|scheme| st.database_url.starts_with(scheme))
        {
            p.push(Problem::new(
                "storage.database_url",
                format!(
                    "{:?} must start with postgres://, postgresql:// or sqlite:",
                    truncate(&st.redacted_url())
                ),
            ));
        }
        if !st.encryption_key.is_empty() && !is_data_key_text(&st.encryption_key) {
            // Never the value: it is a secret.
            p.push(Problem::new(
                "storage.encryption_key",
                "must be 64 hex digits or base64 of 32 bytes (value not shown)",
            ));
        }
        let w = &self.webhooks;
        if !(100..=60_000).contains(&w.timeout_ms) {
            p.push(Problem::new(
                "webhooks.timeout_ms",
                format!("must be between 100 and 60000, got {}", w.timeout_ms),
            ));
        }
        if !(w.retry_time_scale.is_finite() && (0.0..=1000.0).contains(&w.retry_time_scale)) {
            p.push(Problem::new(
                "webhooks.retry_time_scale",
                format!("must be between 0 and 1000, got {}", w.retry_time_scale),
            ));
        }
        if w.concurrency > 1024 {
            p.push(Problem::new(
                "webhooks.concurrency",
                format!("must be between 0 and 1024, got {}", w.concurrency),
            ));
        }
        if !(10..=60_000).contains(&w.poll_interval_ms) {
            p.push(Problem::new(
                "webhooks.poll_interval_ms",
                format!("must be between 10 and 60000, got {}", w.poll_interval_ms),
            ));
        }
        if !(1..=1000).contains(&st.max_connections) {
            p.push(Problem::new(
                "storage.max_connections",
                format!("must be between 1 and 1000, got {}", st.max_connections),
            ));
        }

        let a = &self.auth;
        if !(60..=31_536_000).contains(&a.session_ttl_secs) {
            p.push(Problem::new(
                "auth.session_ttl_secs",
                format!(
                    "must be between 60 and 31536000, got {}",
                    a.session_ttl_secs
                ),
            ));
        }
        if a.key_cache_ttl_ms > 5000 {
            p.push(Problem::new(
                "auth.key_cache_ttl_ms",
                format!(
                    "must be between 0 and 5000 (revocation must take effect within 5 s), got {}",
                    a.key_cache_ttl_ms
                ),
            ));
        }

        self.validate_protocol(&mut p);
        self.validate_fleet(&mut p);

        if p.is_empty() {
            Ok(())
        } else {
            Err(ConfigError { problems: p })
        }
    }
}

impl Config {
    /// The QR Live Protocol groups.
    fn validate_fleet(&self, p: &mut Vec<Problem>) {
        let f = &self.fleet;
        let ranges: [(&str, u64, u64, u64); 8] = [
            (
                "fleet.update_interval_secs",
                f.update_interval_secs.into(),
                1,
                86_400,
            ),
            (
                "fleet.offline_check_interval_ms",
                f.offline_check_interval_ms,
                100,
                600_000,
            ),
            (
                "fleet.signature_tolerance_secs",
                f.signature_tolerance_secs.into(),
                1,
                3600,
            ),
            (
                "fleet.device_requests_per_minute",
                f.device_requests_per_minute.into(),
                1,
                100_000,
            ),
            (
                "fleet.rotation_interval_days",
                f.rotation_interval_days.into(),
                1,
                3650,
            ),
            (
                "fleet.rotation_grace_secs",
                f.rotation_grace_secs,
                0,
                2_592_000,
            ),
            ("fleet.certificate_days", f.certificate_days.into(), 1, 3650),
            (
                "fleet.enrollment_token_ttl_secs",
                f.enrollment_token_ttl_secs,
                60,
                31_536_000,
            ),
        ];
        for (key, value, lo, hi) in ranges {
            if !(lo..=hi).contains(&value) {
                p.push(Problem::new(
                    key,
                    format!("must be between {lo} and {hi}, got {value}"),
                ));
            }
        }
    }

    fn validate_protocol(&self, p: &mut Vec<Problem>) {
        let q = &self.qr;
        if q.version > 40 {
            p.push(Problem::new(
                "qr.version",
                format!("must be 0 (automatic) or 1 to 40, got {}", q.version),
            ));
        }

        let l = &self.live;
        secs(
            p,
            "live.update_interval_secs",
            l.update_interval_secs,
            0.01,
            3600.0,
        );
        secs(p, "live.ttl_secs", l.ttl_secs, 0.001, 86_400.0);
        secs(
            p,
            "live.evidence_timeout_secs",
            l.evidence_timeout_secs,
            0.01,
            60.0,
        );
        if l.ttl_secs.is_finite()
            && l.update_interval_secs.is_finite()
            && l.ttl_secs < l.update_interval_secs
        {
            p.push(Problem::new(
                "live.ttl_secs",
                format!(
                    "{} s is shorter than live.update_interval_secs ({} s): frames would expire before the next one",
                    l.ttl_secs, l.update_interval_secs
                ),
            ));
        }
        let own = match l.signature {
            SignatureSuite::Ed25519 => "ed25519",
            SignatureSuite::FnDsa => "fn-dsa-512",
            SignatureSuite::Hybrid => "hybrid",
        };

        let b = &self.blockchain;
        secs(
            p,
            "blockchain.cache_duration",
            b.cache_duration,
            0.0,
            86_400.0,
        );
        secs(p, "blockchain.timeout", b.timeout, 0.01, 300.0);
        if b.retry_attempts > 10 {
            p.push(Problem::new(
                "blockchain.retry_attempts",
                format!("must be between 0 and 10, got {}", b.retry_attempts),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for chain in &b.enabled_chains {
            if !is_name(chain) {
                p.push(Problem::new(
                    "blockchain.enabled_chains",
                    format!(
                        "{:?} is not a chain name (1 to 32 of a-z 0-9 _ -)",
                        truncate(chain)
                    ),
                ));
            } else if !seen.insert(chain.as_str()) {
                p.push(Problem::new(
                    "blockchain.enabled_chains",
                    format!("{chain:?} is listed twice"),
                ));
            } else if b.endpoint(chain).is_none() {
                p.push(Problem::new(
                    "blockchain.api_endpoints",
                    format!("chain {chain:?} is enabled but has no endpoint: add {chain}=URL"),
                ));
            }
        }
        for (chain, url) in &b.api_endpoints {
            if !is_http_url(url) {
                p.push(Problem::new(
                    "blockchain.api_endpoints",
                    format!(
                        "{chain}: {:?} is not an http:// or https:// URL with a host",
                        truncate(&crate::protocol::shown_url(url))
                    ),
                ));
            }
        }

        let t = &self.time;
        secs(p, "time.update_interval", t.update_interval, 0.01, 86_400.0);
        secs(p, "time.timeout", t.timeout, 0.01, 60.0);
        secs(p, "time.max_drift", t.max_drift, 0.001, 86_400.0);
        if t.time_servers.is_empty() && !t.fallback_to_system {
            p.push(Problem::new(
                "time.time_servers",
                "is empty and time.fallback_to_system is false: there is no time source",
            ));
        }
        for server in &t.time_servers {
            if !is_server(server) {
                p.push(Problem::new(
                    "time.time_servers",
                    format!(
                        "{:?} is not host, host:port or [IPv6]:port",
                        truncate(server)
                    ),
                ));
            }
        }

        let i = &self.identity;
        match i.hash_algorithm.as_str() {
            "sha256" | "sha512" => {}
            "md5" | "sha1" => p.push(Problem::new(
                "identity.hash_algorithm",
                format!(
                    "{} is broken and refused: use sha256 or sha512",
                    i.hash_algorithm
                ),
            )),
            other => p.push(Problem::new(
                "identity.hash_algorithm",
                format!("unknown {:?}: use sha256 or sha512", truncate(other)),
            )),
        }
        for name in i.custom_data.keys() {
            if name.is_empty() || name.len() > 64 {
                p.push(Problem::new(
                    "identity.custom_data",
                    "names must be 1 to 64 characters",
                ));
            }
        }

        let v = &self.verification;
        secs(
            p,
            "verification.max_time_drift",
            v.max_time_drift,
            0.001,
            86_400.0,
        );
        if v.allowed_signature_algorithms.is_empty() {
            p.push(Problem::new(
                "verification.allowed_signature_algorithms",
                "is empty: no signed frame could verify; list ed25519, fn-dsa-512 or hybrid",
            ));
        }
        for alg in &v.allowed_signature_algorithms {
            if !SIGNATURE_ALGORITHMS.contains(&alg.as_str()) {
                p.push(Problem::new(
                    "verification.allowed_signature_algorithms",
                    format!(
                        "{:?} is not supported: this product signs and verifies ed25519, fn-dsa-512 and hybrid",
                        truncate(alg)
                    ),
                ));
            }
        }
        let s = &self.security;
        if s.sign_qr_data
            && !v.allowed_signature_algorithms.is_empty()
            && !v.allowed_signature_algorithms.iter().any(|a| a == own)
        {
            p.push(Problem::new(
                "verification.allowed_signature_algorithms",
                format!(
                    "does not list {own}, the live.signature of this issuer: its own frames would not verify"
                ),
            ));
        }

        if s.encryption_algorithm != "chacha20-poly1305" {
            p.push(Problem::new(
                "security.encryption_algorithm",
                format!(
                    "{:?} is not supported: use chacha20-poly1305",
                    truncate(&s.encryption_algorithm)
                ),
            ));
        }
        if s.hmac_algorithm != "sha256" {
            p.push(Problem::new(
                "security.hmac_algorithm",
                format!(
                    "{:?} is not supported: use sha256",
                    truncate(&s.hmac_algorithm)
                ),
            ));
        }
        for (key, secret) in [
            ("security.hmac_secret", &s.hmac_secret),
            ("security.data_key_secret", &s.data_key_secret),
        ] {
            // Only the length is reported, never the value.
            if !secret.is_empty() && secret.len() < 16 {
                p.push(Problem::new(
                    key,
                    format!(
                        "is {} bytes long: use at least 16 (32 random bytes advised)",
                        secret.len()
                    ),
                ));
            }
        }
        for (key, id) in [
            ("security.hmac_key_id", &s.hmac_key_id),
            ("security.data_key_id", &s.data_key_id),
        ] {
            if !is_key_name(id) {
                p.push(Problem::new(
                    key,
                    format!(
                        "{:?} is not a key name: 1 to 32 of A-Z a-z 0-9 . _ -",
                        truncate(id)
                    ),
                ));
            }
        }
        if s.encrypt_qr_data && s.data_key_secret.is_empty() {
            p.push(Problem::new(
                "security.data_key_secret",
                "security.encrypt_qr_data is true but no data key secret is set",
            ));
        }
        if s.key_rotation_days > 3650 {
            p.push(Problem::new(
                "security.key_rotation_days",
                format!("must be between 0 and 3650, got {}", s.key_rotation_days),
            ));
        }
    }
}

/// Seconds: finite and within `[min, max]`.
fn secs(p: &mut Vec<Problem>, key: &str, value: f64, min: f64, max: f64) {
    if !(value.is_finite() && value >= min && value <= max) {
        p.push(Problem::new(
            key,
            format!("must be between {min} and {max} seconds, got {value}"),
        ));
    }
}

/// A chain name: 1 to 32 of `a-z 0-9 _ -`.
fn is_name(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// A key name carried in frames: 1 to 32 of `A-Z a-z 0-9 . _ -`.
fn is_key_name(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// `http://` or `https://`, then a non-empty authority.
fn is_http_url(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    !host.is_empty() && !host.contains(char::is_whitespace)
}

/// `host`, `host:port` or `[IPv6]:port`, as the SNTP client reads them.
fn is_server(s: &str) -> bool {
    if let Some(rest) = s.strip_prefix('[') {
        let Some((ip, after)) = rest.split_once(']') else {
            return false;
        };
        return ip.parse::<std::net::Ipv6Addr>().is_ok()
            && (after.is_empty()
                || after
                    .strip_prefix(':')
                    .is_some_and(|port| port.parse::<u16>().is_ok()));
    }
    if s.parse::<std::net::Ipv6Addr>().is_ok() {
        return true;
    }
    match s.rsplit_once(':') {
        Some((host, port)) => is_host(host) && port.parse::<u16>().is_ok(),
        None => is_host(s),
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

/// `address/prefix` with the prefix no longer than the address, or a bare address.
fn is_cidr(raw: &str) -> bool {
    let raw = raw.trim();
    let (addr, prefix) = match raw.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (raw, None),
    };
    let Ok(ip) = addr.parse::<IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    prefix.is_none_or(|p| p.parse::<u8>().is_ok_and(|n| n <= max))
}

/// 64 hex digits, or standard base64 of 32 bytes (44 characters ending in one `=`).
fn is_data_key_text(raw: &str) -> bool {
    let t = raw.trim();
    let hex = t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit());
    let b64 = t.len() == 44
        && t.ends_with('=')
        && !t.ends_with("==")
        && t[..43]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
    hex || b64
}

/// An absolute `http` or `https` URL with a host and no query or fragment.
fn check_base_url(raw: &str) -> Result<(), String> {
    let rest = raw
        .strip_prefix("https://")
        .or_else(|| raw.strip_prefix("http://"))
        .ok_or_else(|| format!("{:?} must start with http:// or https://", truncate(raw)))?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || rest.contains(['?', '#']) || rest.chars().any(char::is_whitespace) {
        return Err(format!(
            "{:?} must be an absolute URL with a host and no query or fragment",
            truncate(raw)
        ));
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

    #[test]
    fn public_base_url_is_checked_and_derived() {
        for good in [
            "https://qr.example.com",
            "http://127.0.0.1:8000/",
            "https://x.example/base",
        ] {
            assert_eq!(check_base_url(good), Ok(()), "{good}");
        }
        for bad in [
            "qr.example.com",
            "ftp://x",
            "https://",
            "https://x/?a=1",
            "https://x/#f",
        ] {
            assert!(check_base_url(bad).is_err(), "{bad}");
        }
        let mut c = Config::default();
        assert_eq!(c.server.public_base_url(), "http://127.0.0.1:8000");
        c.server.host = "::".into();
        assert_eq!(c.server.public_base_url(), "http://127.0.0.1:8000");
        c.server.host = "::1".into();
        assert_eq!(c.server.public_base_url(), "http://[::1]:8000");
        c.server.public_base_url = "https://qr.example.com/".into();
        assert_eq!(c.server.public_base_url(), "https://qr.example.com");
    }
}
