//! The URL rules of the qr-api seed: at most 2000 characters, http or https only,
//! `https://` prepended when there is no scheme, the fragment stripped, and the host a
//! domain name, `localhost`, an IPv4 address or a bracketed IPv6 address.
//!
//! Pure: no I/O, no DNS.

use std::net::{Ipv4Addr, Ipv6Addr};

use qrlp_config::limits::URL_MAX_CHARS;

/// Why a URL was refused. [`UrlError::message`] is the text the seed documents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlError {
    /// Empty or only whitespace.
    Empty,
    /// Over 2000 characters.
    TooLong,
    /// A scheme other than http or https.
    Scheme,
    /// Anything else: no valid host, a bad port, spaces.
    Invalid,
}

impl UrlError {
    /// The seed's message for this error.
    pub fn message(self) -> &'static str {
        match self {
            UrlError::Empty => "Please provide a URL",
            UrlError::TooLong => "URL is too long (max 2000 characters)",
            UrlError::Scheme => "URL scheme must be http or https",
            UrlError::Invalid => "Please check the URL and try again",
        }
    }
}

/// Checks `input` and returns the URL to encode: trimmed, with a scheme, the scheme and host
/// in lower case, without a fragment.
///
/// ```
/// use qrlp_server::qr::url::{normalize_url, UrlError};
/// assert_eq!(normalize_url("example.com").unwrap(), "https://example.com");
/// assert_eq!(normalize_url("HTTP://Example.COM/A#top").unwrap(), "http://example.com/A");
/// assert_eq!(normalize_url("ftp://example.com"), Err(UrlError::Scheme));
/// ```
///
/// # Errors
/// A [`UrlError`] saying which rule the input breaks.
pub fn normalize_url(input: &str) -> Result<String, UrlError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(UrlError::Empty);
    }
    // Bytes bound characters from above: count only when the bytes could be too many.
    if s.len() > URL_MAX_CHARS && s.chars().count() > URL_MAX_CHARS {
        return Err(UrlError::TooLong);
    }
    let (scheme, rest) = match split_scheme(s)? {
        Some((scheme, rest)) => (scheme, rest),
        // Protocol-relative `//host/path` gets the default scheme too.
        None => ("https", s.strip_prefix("//").unwrap_or(s)),
    };
    let rest = rest.split_once('#').map_or(rest, |(kept, _fragment)| kept);
    let spaced = if rest.is_ascii() {
        // ASCII white space and controls are the bytes up to the space, and DEL.
        rest.bytes().any(|b| b <= b' ' || b == 0x7f)
    } else {
        rest.chars().any(|c| c.is_whitespace() || c.is_control())
    };
    if spaced {
        return Err(UrlError::Invalid);
    }
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_and_query) = rest.split_at(authority_end);
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((user, hp)) => (Some(user), hp),
        None => (None, authority),
    };
    if let Some(user) = userinfo {
        if user.is_empty() || !user.chars().all(is_userinfo_char) {
            return Err(UrlError::Invalid);
        }
    }
    let (host, port) = split_port(host_port)?;
    if !is_valid_host(host) {
        return Err(UrlError::Invalid);
    }
    let mut out = String::with_capacity(scheme.len() + 3 + rest.len());
    out.push_str(scheme);
    out.push_str("://");
    if let Some(user) = userinfo {
        out.push_str(user);
        out.push('@');
    }
    if host.is_ascii() {
        let from = out.len();
        out.push_str(host);
        out[from..].make_ascii_lowercase();
    } else {
        out.push_str(&host.to_lowercase());
    }
    if let Some(port) = port {
        out.push(':');
        out.push_str(port);
    }
    out.push_str(path_and_query);
    Ok(out)
}

/// Finds a scheme (`name:`) and returns it lower-cased with what follows `name://`.
/// `Ok(None)` when there is none; `host:port` (digits after the colon) is not a scheme.
fn split_scheme(s: &str) -> Result<Option<(&'static str, &str)>, UrlError> {
    let Some(colon) = s.find(':') else {
        return Ok(None);
    };
    let (name, after) = (&s[..colon], &s[colon + 1..]);
    let is_scheme_name = name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !is_scheme_name {
        return Ok(None);
    }
    if let Some(rest) = after.strip_prefix("//") {
        return if name.eq_ignore_ascii_case("http") {
            Ok(Some(("http", rest)))
        } else if name.eq_ignore_ascii_case("https") {
            Ok(Some(("https", rest)))
        } else {
            Err(UrlError::Scheme)
        };
    }
    let port_len = after.bytes().take_while(u8::is_ascii_digit).count();
    let looks_like_port = port_len > 0
        && matches!(
            after.as_bytes().get(port_len),
            None | Some(b'/' | b'?' | b'#')
        );
    if looks_like_port {
        return Ok(None);
    }
    // `mailto:x`, `javascript:alert(1)`: a scheme without `//`; `http:x` is malformed.
    if name.eq_ignore_ascii_case("http") || name.eq_ignore_ascii_case("https") {
        Err(UrlError::Invalid)
    } else {
        Err(UrlError::Scheme)
    }
}

/// Splits `host[:port]` and `[v6][:port]`; the port must be 0..=65535 if present.
fn split_port(host_port: &str) -> Result<(&str, Option<&str>), UrlError> {
    let (host, port) = if host_port.starts_with('[') {
        let close = host_port.find(']').ok_or(UrlError::Invalid)?;
        let (host, after) = host_port.split_at(close + 1);
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(after.strip_prefix(':').ok_or(UrlError::Invalid)?),
            ),
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    if let Some(p) = port {
        let ok = !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit());
        if !ok || p.parse::<u32>().map_or(true, |n| n > 65535) {
            return Err(UrlError::Invalid);
        }
    }
    Ok((host, port))
}

/// A domain name, `localhost`, an IPv4 address or `[IPv6]`.
fn is_valid_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().is_ok();
    }
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return host.parse::<Ipv4Addr>().is_ok();
    }
    is_domain(host)
}

/// At least two labels of letters, digits and hyphens (any script), each 1 to 63 characters
/// not starting or ending with a hyphen; the last one alphabetic (2+ letters) or punycode.
fn is_domain(host: &str) -> bool {
    if host.is_empty() || host.len() > 253 {
        return false;
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    let Some((_, tld)) = host.rsplit_once('.') else {
        return false;
    };
    let labels_ok = host.split('.').all(label_ok);
    let tld_ok = (tld.chars().count() >= 2 && tld.chars().all(char::is_alphabetic))
        || (tld.len() > 4 && tld[..4].eq_ignore_ascii_case("xn--"));
    labels_ok && tld_ok
}

/// RFC 3986 userinfo: unreserved, percent signs, sub-delims and `:`.
fn is_userinfo_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~%!$&'()*+,;=:".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<&str, UrlError>) {
        assert_eq!(
            normalize_url(input),
            expected.map(String::from),
            "{input:?}"
        );
    }

    #[test]
    fn the_seeds_valid_urls() {
        check("https://example.com", Ok("https://example.com"));
        check(
            "http://localhost:3000/path",
            Ok("http://localhost:3000/path"),
        );
        check("example.com", Ok("https://example.com"));
        check("https://192.168.1.1/api", Ok("https://192.168.1.1/api"));
        check("https://[::1]:8080/test", Ok("https://[::1]:8080/test"));
    }

    #[test]
    fn the_seeds_invalid_urls() {
        check("ftp://example.com", Err(UrlError::Scheme));
        check("javascript:alert(1)", Err(UrlError::Scheme));
        check("not a url at all", Err(UrlError::Invalid));
    }

    #[test]
    fn normalization() {
        check(
            "  https://example.com/a?b=1#frag  ",
            Ok("https://example.com/a?b=1"),
        );
        check("HTTPS://EXAMPLE.com/Path", Ok("https://example.com/Path"));
        check("localhost:8080/x", Ok("https://localhost:8080/x"));
        check("example.com:8443", Ok("https://example.com:8443"));
        check("//example.com/p", Ok("https://example.com/p"));
        check(
            "https://user:pw@example.com",
            Ok("https://user:pw@example.com"),
        );
        check("https://bücher.de/", Ok("https://bücher.de/"));
        check("https://xn--bcher-kva.de", Ok("https://xn--bcher-kva.de"));
        check("https://example.com?q=1", Ok("https://example.com?q=1"));
        check("https://example.com/#", Ok("https://example.com/"));
    }

    #[test]
    fn refusals() {
        check("", Err(UrlError::Empty));
        check("   ", Err(UrlError::Empty));
        check("mailto:a@example.com", Err(UrlError::Scheme));
        check("data:text/html,hi", Err(UrlError::Scheme));
        check("file:///etc/passwd", Err(UrlError::Scheme));
        check("http:example.com", Err(UrlError::Invalid));
        check("https://", Err(UrlError::Invalid));
        check("https:///path", Err(UrlError::Invalid));
        check("https://example", Err(UrlError::Invalid));
        check("https://example.c0m", Err(UrlError::Invalid));
        check("https://-a.com", Err(UrlError::Invalid));
        check("https://a..com", Err(UrlError::Invalid));
        check("https://example.com:99999", Err(UrlError::Invalid));
        check("https://example.com:", Err(UrlError::Invalid));
        check("https://example.com:80x", Err(UrlError::Invalid));
        check("https://999.1.1.1", Err(UrlError::Invalid));
        check("https://[::g]", Err(UrlError::Invalid));
        check("https://[::1", Err(UrlError::Invalid));
        check("https://::1/", Err(UrlError::Invalid));
        check("https://exa mple.com", Err(UrlError::Invalid));
        check("https://example.com/a b", Err(UrlError::Invalid));
        check("https://@example.com", Err(UrlError::Invalid));
    }

    #[test]
    fn length_limit_counts_characters() {
        let base = "https://example.com/";
        let ok = format!("{base}{}", "é".repeat(2000 - base.len()));
        assert!(normalize_url(&ok).is_ok());
        let long = format!("{ok}a");
        check(&long, Err(UrlError::TooLong));
    }
}
