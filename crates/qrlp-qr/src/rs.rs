//! Reed-Solomon error correction over GF(2^8) with the QR polynomial x^8+x^4+x^3+x^2+1.
//!
//! The remainder register (at most 30 bytes) lives in two `u128` words, and each generator
//! polynomial has a 256-row table of its multiples, so dividing by it costs one table load, a
//! 256-bit shift and an XOR per data byte.

use std::sync::OnceLock;

const fn build_exp_log() -> ([u8; 512], [u8; 256]) {
    let mut exp = [0u8; 512];
    let mut log = [0u8; 256];
    let mut x: u32 = 1;
    let mut i = 0;
    while i < 255 {
        exp[i] = x as u8;
        exp[i + 255] = x as u8;
        log[x as usize] = i as u8;
        x <<= 1;
        if x & 0x100 != 0 {
            x ^= 0x11D;
        }
        i += 1;
    }
    (exp, log)
}

const EXP_LOG: ([u8; 512], [u8; 256]) = build_exp_log();
const EXP: [u8; 512] = EXP_LOG.0;
const LOG: [u8; 256] = EXP_LOG.1;

/// Product of two field elements.
pub(crate) fn mul(a: u8, b: u8) -> u8 {
    if a == 0 || b == 0 {
        0
    } else {
        EXP[LOG[a as usize] as usize + LOG[b as usize] as usize]
    }
}

/// Coefficients of the generator polynomial of `degree`, highest first, leading 1 omitted.
pub(crate) fn generator(degree: usize) -> Vec<u8> {
    // Product of (x - a^i) for i in 0..degree.
    let mut poly = vec![0u8; degree];
    poly[degree - 1] = 1;
    let mut root = 1u8;
    for _ in 0..degree {
        for j in 0..degree {
            poly[j] = mul(poly[j], root);
            if j + 1 < degree {
                poly[j] ^= poly[j + 1];
            }
        }
        root = mul(root, 2);
    }
    poly
}

/// A 256-bit register; byte 0 of the remainder is the most significant byte of `hi`.
#[derive(Clone, Copy, Default)]
struct Reg {
    hi: u128,
    lo: u128,
}

struct Divisor {
    degree: usize,
    rows: Vec<Reg>,
}

fn divisor(degree: usize) -> &'static Divisor {
    static TABLES: [OnceLock<Divisor>; 31] = [const { OnceLock::new() }; 31];
    TABLES[degree].get_or_init(|| {
        let gen = generator(degree);
        let rows = (0..256)
            .map(|f| {
                let mut bytes = [0u8; 32];
                for (j, &g) in gen.iter().enumerate() {
                    bytes[j] = mul(g, f as u8);
                }
                Reg {
                    hi: u128::from_be_bytes(bytes[..16].try_into().unwrap()),
                    lo: u128::from_be_bytes(bytes[16..].try_into().unwrap()),
                }
            })
            .collect();
        Divisor { degree, rows }
    })
}

/// Writes the `out.len()` error correction codewords of `data` into `out`.
/// `out.len()` must be in 1..=30.
pub(crate) fn remainder(data: &[u8], out: &mut [u8]) {
    let div = divisor(out.len());
    let mut r = Reg::default();
    for &b in data {
        let factor = b ^ (r.hi >> 120) as u8;
        r.hi = (r.hi << 8) | (r.lo >> 120);
        r.lo <<= 8;
        let row = &div.rows[factor as usize];
        r.hi ^= row.hi;
        r.lo ^= row.lo;
    }
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(&r.hi.to_be_bytes());
    bytes[16..].copy_from_slice(&r.lo.to_be_bytes());
    out.copy_from_slice(&bytes[..div.degree]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Schoolbook polynomial division, the definition the table version must agree with.
    fn slow_remainder(data: &[u8], degree: usize) -> Vec<u8> {
        let gen = generator(degree);
        let mut rem = vec![0u8; degree];
        for &b in data {
            let f = b ^ rem[0];
            rem.remove(0);
            rem.push(0);
            for (r, &g) in rem.iter_mut().zip(&gen) {
                *r ^= mul(g, f);
            }
        }
        rem
    }

    #[test]
    fn table_division_matches_schoolbook() {
        let mut seed = 0x1234_5678u32;
        for degree in [2, 5, 6, 7, 8, 10, 14, 17, 22, 26, 28, 30] {
            for len in [0, 1, 2, 19, 55, 123] {
                let data: Vec<u8> = (0..len)
                    .map(|_| {
                        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                        (seed >> 16) as u8
                    })
                    .collect();
                let mut out = vec![0u8; degree];
                remainder(&data, &mut out);
                assert_eq!(
                    out,
                    slow_remainder(&data, degree),
                    "degree {degree} len {len}"
                );
            }
        }
    }

    #[test]
    fn generator_of_degree_7_matches_the_standard() {
        // Annex A lists g(x) for 7 ECC codewords as exponents 87 229 146 149 238 102 21.
        let exps = [87u8, 229, 146, 149, 238, 102, 21];
        let expected: Vec<u8> = exps.iter().map(|&e| EXP[e as usize]).collect();
        assert_eq!(generator(7), expected);
    }
}
