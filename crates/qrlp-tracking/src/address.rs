//! Client addresses as they may be kept: IPv4 cut to its /24, IPv6 to its /48. An
//! IPv4-mapped IPv6 address is treated as the IPv4 address it carries.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The address with its host part zeroed: `203.0.113.77` → `203.0.113.0`,
/// `2001:db8:1234:5678::1` → `2001:db8:1234::`.
///
/// ```
/// use qrlp_tracking::address::anonymize;
/// assert_eq!(anonymize("203.0.113.77".parse().unwrap()).to_string(), "203.0.113.0");
/// assert_eq!(anonymize("2001:db8:1234:5678::1".parse().unwrap()).to_string(), "2001:db8:1234::");
/// assert_eq!(anonymize("::ffff:198.51.100.9".parse().unwrap()).to_string(), "198.51.100.0");
/// ```
pub fn anonymize(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::V4(Ipv4Addr::new(a, b, c, 0))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_bits_are_gone() {
        for (input, want) in [
            ("127.0.0.1", "127.0.0.0"),
            ("10.1.2.255", "10.1.2.0"),
            ("::1", "::"),
            ("fe80::abcd:1", "fe80::"),
            ("2a00:1450:4007:80e::200e", "2a00:1450:4007::"),
        ] {
            let ip: IpAddr = input.parse().unwrap();
            assert_eq!(anonymize(ip).to_string(), want);
        }
    }
}
