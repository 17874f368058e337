//! Base45 (RFC 9285): two bytes become three characters of the QR alphanumeric set, so a
//! binary frame rides in alphanumeric mode at 5.5 bits per character.
//!
//! The decoder is strict: a character outside the alphabet, a length of 1 modulo 3, or a
//! group whose value does not fit its bytes is an error. With those checks every byte string
//! has exactly one encoding.

/// The 45 characters, in value order.
const ALPHABET: &[u8; 45] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

/// The value of an alphabet character, or `None`.
fn value(c: u8) -> Option<u32> {
    let v = match c {
        b'0'..=b'9' => c - b'0',
        b'A'..=b'Z' => c - b'A' + 10,
        b' ' => 36,
        b'$' => 37,
        b'%' => 38,
        b'*' => 39,
        b'+' => 40,
        b'-' => 41,
        b'.' => 42,
        b'/' => 43,
        b':' => 44,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Appends the base45 text of `data` to `out`.
pub(crate) fn encode_into(data: &[u8], out: &mut String) {
    out.reserve(data.len() / 2 * 3 + 2);
    let mut chunks = data.chunks_exact(2);
    for pair in &mut chunks {
        let n = u32::from(pair[0]) * 256 + u32::from(pair[1]);
        push(out, n % 45);
        push(out, (n / 45) % 45);
        push(out, n / 2025);
    }
    if let [last] = chunks.remainder() {
        let n = u32::from(*last);
        push(out, n % 45);
        push(out, n / 45);
    }
}

fn push(out: &mut String, v: u32) {
    out.push(char::from(ALPHABET[v as usize]));
}

/// Decodes base45 text; `None` for anything that is not a canonical encoding.
pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if bytes.len() % 3 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 3 * 2 + 1);
    let mut chunks = bytes.chunks_exact(3);
    for group in &mut chunks {
        let n = value(group[0])? + value(group[1])? * 45 + value(group[2])? * 2025;
        if n > 0xFFFF {
            return None;
        }
        out.push((n >> 8) as u8);
        out.push(n as u8);
    }
    if let [a, b] = chunks.remainder() {
        let n = value(*a)? + value(*b)? * 45;
        if n > 0xFF {
            return None;
        }
        out.push(n as u8);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(data: &[u8]) -> String {
        let mut s = String::new();
        encode_into(data, &mut s);
        s
    }

    #[test]
    fn rfc9285_examples() {
        assert_eq!(enc(b"AB"), "BB8");
        assert_eq!(enc(b"Hello!!"), "%69 VD92EX0");
        assert_eq!(enc(b"base-45"), "UJCLQE7W581");
        assert_eq!(decode("QED8WEX0").as_deref(), Some(&b"ietf!"[..]));
        assert_eq!(enc(b""), "");
    }

    #[test]
    fn rejects_non_canonical() {
        assert_eq!(decode("GGW"), None); // 65535 + 1
        assert_eq!(decode("ZZZ"), None);
        assert_eq!(decode("A"), None);
        assert_eq!(decode("aB8"), None);
        assert_eq!(decode("::"), None); // 44 + 44*45 > 255
        assert_eq!(decode("FGW").as_deref(), Some(&[0xFF, 0xFF][..]));
    }

    #[test]
    fn round_trip_all_lengths() {
        let data: Vec<u8> = (0..=255u8).rev().collect();
        for n in 0..data.len() {
            assert_eq!(decode(&enc(&data[..n])).as_deref(), Some(&data[..n]));
        }
    }
}
