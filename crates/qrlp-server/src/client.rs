//! Who the client is: one address and one scheme per request, derived once, used by
//! per-address rate limits, audit records, the session cookie's `Secure` flag and the CSRF
//! origin check.
//!
//! `X-Forwarded-For` and `X-Forwarded-Proto` are believed only when the TCP peer is one of
//! `server.trusted_proxies` (CIDR list, empty by default). Then the client is the rightmost
//! address of `X-Forwarded-For` that is not itself a trusted proxy: each trusted hop appends
//! the address it received the request from, so everything left of the first untrusted hop
//! may be forged by the client. With no trusted proxy, both headers are ignored and the TCP
//! peer is the client.
//!
//! Routes take [`ClientInfo`] as an extractor.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use ipnet::IpNet;

use crate::state::AppState;

/// The trusted reverse proxies, parsed from `server.trusted_proxies`.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    /// Parses a CIDR list; a bare address counts as a /32 (or /128).
    ///
    /// # Errors
    /// The first entry that is neither.
    pub fn parse(list: &[String]) -> Result<TrustedProxies, String> {
        let mut nets = Vec::with_capacity(list.len());
        for entry in list {
            let entry = entry.trim();
            let net = entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{entry:?} is not a CIDR block such as 10.0.0.0/8"))?;
            nets.push(net);
        }
        Ok(TrustedProxies { nets })
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// Whether any proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }
}

/// The client of a request: its address and whether it reached the first trusted hop over
/// HTTPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client's address; `None` only when the server runs without connect info (tests
    /// that call the router directly).
    pub ip: Option<IpAddr>,
    /// Whether the request came over HTTPS (only a trusted proxy can say so).
    pub https: bool,
}

impl ClientInfo {
    /// Derives the client from the TCP peer and, when the peer is trusted, the forwarding
    /// headers.
    pub fn derive(headers: &HeaderMap, peer: Option<SocketAddr>, trusted: &TrustedProxies) -> Self {
        let Some(peer) = peer.map(|p| p.ip().to_canonical()) else {
            return ClientInfo {
                ip: None,
                https: false,
            };
        };
        if trusted.is_empty() || !trusted.contains(peer) {
            return ClientInfo {
                ip: Some(peer),
                https: false,
            };
        }
        let mut client = peer;
        // Rightmost first; stop at the first hop that is not a trusted proxy.
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                // Garbage from the client side: stop believing anything further left.
                break;
            };
            client = ip;
            if !trusted.contains(ip) {
                break;
            }
        }
        let https = headers
            .get_all("x-forwarded-proto")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .next_back()
            .is_some_and(|p| p.eq_ignore_ascii_case("https"));
        ClientInfo {
            ip: Some(client),
            https,
        }
    }

    /// The client of a request handled by `state`'s server.
    pub fn of(
        parts_headers: &HeaderMap,
        extensions: &axum::http::Extensions,
        state: &AppState,
    ) -> Self {
        let peer = extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
        ClientInfo::derive(parts_headers, peer, state.trusted_proxies())
    }

    /// The scheme the client used: `https` or `http`.
    pub fn scheme(&self) -> &'static str {
        if self.https {
            "https"
        } else {
            "http"
        }
    }
}

/// An address in `X-Forwarded-For`: an IP, possibly `[v6]:port` or `v4:port`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sa) = hop.parse::<SocketAddr>() {
        return Some(sa.ip().to_canonical());
    }
    None
}

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientInfo::of(&parts.headers, &parts.extensions, state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(xff: &str, proto: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_str(xff).unwrap());
        h.insert("x-forwarded-proto", HeaderValue::from_str(proto).unwrap());
        h
    }

    fn peer(s: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(s.parse().unwrap(), 40000))
    }

    #[test]
    fn forged_forwarding_headers_change_nothing_without_a_trusted_proxy() {
        let none = TrustedProxies::default();
        let c = ClientInfo::derive(&headers("1.2.3.4", "https"), peer("203.0.113.9"), &none);
        assert_eq!(c.ip, Some("203.0.113.9".parse().unwrap()));
        assert!(!c.https);
        // A peer outside the list is not believed either.
        let lan = TrustedProxies::parse(&["10.0.0.0/8".into()]).unwrap();
        let c = ClientInfo::derive(&headers("1.2.3.4", "https"), peer("203.0.113.9"), &lan);
        assert_eq!(c.ip, Some("203.0.113.9".parse().unwrap()));
        assert!(!c.https);
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let t = TrustedProxies::parse(&["10.0.0.0/8".into(), "::1".into()]).unwrap();
        let c = ClientInfo::derive(
            &headers("6.6.6.6, 198.51.100.7, 10.1.1.1", "https"),
            peer("10.0.0.2"),
            &t,
        );
        assert_eq!(c.ip, Some("198.51.100.7".parse().unwrap()));
        assert!(c.https);
        let c = ClientInfo::derive(&headers("[2001:db8::1]:443", "http"), peer("::1"), &t);
        assert_eq!(c.ip, Some("2001:db8::1".parse().unwrap()));
        assert!(!c.https);
        // Garbage stops the walk at the last good hop.
        let c = ClientInfo::derive(&headers("nonsense, 10.2.2.2", "http"), peer("10.0.0.2"), &t);
        assert_eq!(c.ip, Some("10.2.2.2".parse().unwrap()));
        // IPv4-mapped peers count as IPv4.
        let c = ClientInfo::derive(&headers("192.0.2.1", "https"), peer("::ffff:10.0.0.5"), &t);
        assert_eq!(c.ip, Some("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn bad_cidr_is_refused() {
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(TrustedProxies::parse(&["proxy.local".into()]).is_err());
    }
}
