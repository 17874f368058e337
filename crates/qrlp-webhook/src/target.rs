//! Where a delivery may go: URL rules and the classification of addresses (SSRF defence).
//!
//! A webhook URL is chosen by a customer and fetched by our servers, so by default it must
//! not reach anything a customer could not reach from the Internet: loopback, private,
//! link-local, unique-local, carrier-grade NAT, cloud metadata and other special-purpose
//! addresses are refused. The URL is checked when the endpoint is saved and the address is
//! checked again at delivery, after DNS resolution, on the address actually connected to
//! (the adapter connects only to addresses that passed [`check_address`]).
//! IPv4 addresses embedded in IPv6 (mapped, NAT64, 6to4) are judged as the IPv4 address.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// Longest webhook URL, in bytes.
pub const MAX_URL_LEN: usize = 2048;

/// What kind of address an IP address is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// A global unicast address.
    Public,
    /// `0.0.0.0/8`, `::`.
    Unspecified,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918 (`10/8`, `172.16/12`, `192.168/16`), IPv6 site-local, NAT64 local use.
    Private,
    /// `169.254/16`, `fe80::/10`.
    LinkLocal,
    /// `fc00::/7`.
    UniqueLocal,
    /// `100.64/10` (RFC 6598).
    CarrierGradeNat,
    /// Cloud metadata services: `169.254.169.254`, `fd00:ec2::254`, `100.100.100.200`.
    CloudMetadata,
    /// Multicast.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// Documentation ranges (`192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`).
    Documentation,
    /// `198.18/15`.
    Benchmarking,
    /// Other special-purpose or unallocated ranges (`240/4`, `192.0.0/24`, Teredo, …).
    Reserved,
}

impl AddressClass {
    /// Whether a delivery may connect to it without `webhooks.allow_private_targets`.
    pub fn is_public(self) -> bool {
        self == AddressClass::Public
    }

    /// A short name for messages and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            AddressClass::Public => "public",
            AddressClass::Unspecified => "unspecified",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::LinkLocal => "link-local",
            AddressClass::UniqueLocal => "unique-local",
            AddressClass::CarrierGradeNat => "carrier-grade NAT",
            AddressClass::CloudMetadata => "cloud metadata",
            AddressClass::Multicast => "multicast",
            AddressClass::Broadcast => "broadcast",
            AddressClass::Documentation => "documentation",
            AddressClass::Benchmarking => "benchmarking",
            AddressClass::Reserved => "reserved",
        }
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The class of `ip`.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    use AddressClass::*;
    const TABLE: &[([u8; 4], u32, AddressClass)] = &[
        ([169, 254, 169, 254], 32, CloudMetadata),
        ([100, 100, 100, 200], 32, CloudMetadata),
        ([255, 255, 255, 255], 32, Broadcast),
        ([0, 0, 0, 0], 8, Unspecified),
        ([127, 0, 0, 0], 8, Loopback),
        ([10, 0, 0, 0], 8, Private),
        ([172, 16, 0, 0], 12, Private),
        ([192, 168, 0, 0], 16, Private),
        ([169, 254, 0, 0], 16, LinkLocal),
        ([100, 64, 0, 0], 10, CarrierGradeNat),
        ([192, 0, 0, 0], 24, Reserved),
        ([192, 0, 2, 0], 24, Documentation),
        ([198, 51, 100, 0], 24, Documentation),
        ([203, 0, 113, 0], 24, Documentation),
        ([198, 18, 0, 0], 15, Benchmarking),
        ([192, 88, 99, 0], 24, Reserved),
        ([224, 0, 0, 0], 4, Multicast),
        ([240, 0, 0, 0], 4, Reserved),
    ];
    TABLE
        .iter()
        .find(|(net, prefix, _)| in_v4(ip, *net, *prefix))
        .map_or(Public, |&(_, _, class)| class)
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    };
    (u128::from(ip) & mask) == (u128::from(net) & mask)
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    use AddressClass::*;
    let bits = u128::from(ip);
    if ip.is_unspecified() {
        return Unspecified;
    }
    if ip.is_loopback() {
        return Loopback;
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let low32 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    let net = |s: &str| s.parse::<Ipv6Addr>().unwrap_or(Ipv6Addr::UNSPECIFIED);
    if in_v6(ip, net("64:ff9b::"), 96) {
        return classify_v4(low32); // NAT64 well-known prefix
    }
    if in_v6(ip, net("2002::"), 16) {
        return classify_v4(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32));
        // 6to4
    }
    if ip == net("fd00:ec2::254") {
        return CloudMetadata;
    }
    const TABLE: &[(&str, u32, AddressClass)] = &[
        ("::", 96, Reserved), // IPv4-compatible, deprecated
        ("64:ff9b:1::", 48, Private),
        ("100::", 64, Reserved),
        ("2001::", 32, Reserved), // Teredo
        ("2001:db8::", 32, Documentation),
        ("2001:2::", 48, Benchmarking),
        ("fc00::", 7, UniqueLocal),
        ("fe80::", 10, LinkLocal),
        ("fec0::", 10, Private),
        ("ff00::", 8, Multicast),
    ];
    if let Some(&(_, _, class)) = TABLE
        .iter()
        .find(|(n, prefix, _)| in_v6(ip, net(n), *prefix))
    {
        return class;
    }
    if in_v6(ip, net("2000::"), 3) {
        Public
    } else {
        Reserved
    }
}

/// Why a target is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Not a URL we can deliver to.
    #[error("{0}")]
    Url(String),
    /// The host is, or resolved to, an address of a refused class.
    #[error("the target address {address} is {class}; webhooks may only reach public addresses")]
    Address {
        /// The address.
        address: IpAddr,
        /// Its class.
        class: AddressClass,
    },
}

/// Checks a webhook URL: `http` or `https`, a host, no user name or password, at most
/// [`MAX_URL_LEN`] bytes. When the host is an IP address, that address must pass
/// [`check_address`] too; host names are checked when they are resolved.
///
/// # Errors
/// [`TargetError`] saying what is wrong.
pub fn check_url(text: &str, allow_private: bool) -> Result<Url, TargetError> {
    if text.len() > MAX_URL_LEN {
        return Err(TargetError::Url(format!(
            "url must be at most {MAX_URL_LEN} bytes"
        )));
    }
    let url = Url::parse(text).map_err(|e| TargetError::Url(format!("url is not valid: {e}")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(TargetError::Url(
            "url must start with http:// or https://".into(),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetError::Url(
            "url must not carry a user name or password".into(),
        ));
    }
    if url.fragment().is_some() {
        return Err(TargetError::Url("url must not have a #fragment".into()));
    }
    if let Some(ip) = literal_ip(&url) {
        check_address(ip, allow_private)?;
    } else if url.host_str().is_none_or(str::is_empty) {
        return Err(TargetError::Url("url must name a host".into()));
    }
    Ok(url)
}

/// The host of `url` when it is an IP address.
pub fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        Host::Domain(_) => None,
    }
}

/// Whether a delivery may connect to `ip`.
///
/// # Errors
/// [`TargetError::Address`] for a non-public address unless `allow_private`.
pub fn check_address(ip: IpAddr, allow_private: bool) -> Result<(), TargetError> {
    let class = classify(ip);
    if allow_private || class.is_public() {
        Ok(())
    } else {
        Err(TargetError::Address { address: ip, class })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> AddressClass {
        classify(s.parse().unwrap())
    }

    #[test]
    fn classes() {
        use AddressClass::*;
        for (ip, c) in [
            ("8.8.8.8", Public),
            ("1.1.1.1", Public),
            ("127.0.0.1", Loopback),
            ("127.255.0.9", Loopback),
            ("10.0.0.1", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("172.32.0.1", Public),
            ("192.168.1.1", Private),
            ("169.254.169.254", CloudMetadata),
            ("169.254.1.1", LinkLocal),
            ("100.64.0.1", CarrierGradeNat),
            ("100.127.255.255", CarrierGradeNat),
            ("100.128.0.1", Public),
            ("100.100.100.200", CloudMetadata),
            ("0.0.0.0", Unspecified),
            ("255.255.255.255", Broadcast),
            ("224.0.0.1", Multicast),
            ("240.0.0.1", Reserved),
            ("192.0.2.5", Documentation),
            ("198.18.0.1", Benchmarking),
            ("::1", Loopback),
            ("::", Unspecified),
            ("fd00::1", UniqueLocal),
            ("fc00::1", UniqueLocal),
            ("fd00:ec2::254", CloudMetadata),
            ("fe80::1", LinkLocal),
            ("ff02::1", Multicast),
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:8.8.8.8", Public),
            ("64:ff9b::a00:1", Private),
            ("64:ff9b::808:808", Public),
            ("2002:7f00:1::", Loopback),
            ("2002:0808:0808::", Public),
            ("2001:db8::1", Documentation),
            ("2001::1", Reserved),
            ("2606:4700:4700::1111", Public),
            ("::127.0.0.1", Reserved),
        ] {
            assert_eq!(class(ip), c, "{ip}");
        }
    }

    #[test]
    fn urls() {
        for bad in [
            "http://127.0.0.1/hook",
            "http://10.0.0.1",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]:8080/",
            "http://[fd00::1]/",
            "http://0x7f.1/",
            "http://2130706433/",
            "http://[::ffff:7f00:1]/",
            "ftp://example.com/",
            "http://user:pw@example.com/",
            "not a url",
            "http://example.com/#frag",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        assert!(check_url("https://example.com/hook?x=1", false).is_ok());
        assert!(check_url("http://127.0.0.1:9/hook", true).is_ok());
        assert!(check_url(&format!("https://e.com/{}", "a".repeat(3000)), false).is_err());
        let e = check_url("http://10.0.0.1", false).unwrap_err();
        assert!(e.to_string().contains("private"), "{e}");
    }
}
