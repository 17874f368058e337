//! Adler-32 (RFC 1950) with the algebra to append data without reading it again.
//!
//! For data `D` of length `n`, Adler-32 keeps `a = 1 + Σ D[i]` and
//! `b = Σ_{j<n} (1 + Σ_{i≤j} D[i]) = n + Σ (n - i)·D[i]`, both mod 65521.
//!
//! Appending `D2` (length `n2`, sums `a2`, `b2`) to `D1` (sums `a1`, `b1`):
//! * `a = 1 + S1 + S2 = a1 + a2 - 1`;
//! * every one of the `n2` steps of `b` adds the running `a`, which now starts from `a1`
//!   instead of 1, so `b = b1 + b2 + n2·(a1 - 1)`.
//!
//! Appending `k` copies of a block `B` (length `n`, sums `a2 = 1 + S`, `b2`): by induction on
//! the rule above, the `k` copies alone have `A = 1 + k·S` and
//! `B = k·b2 + n·S·k(k-1)/2`; then combine as above with length `k·n`.

/// The Adler-32 modulus, the largest prime below 2^16.
const MOD: u64 = 65521;
/// Bytes summed between reductions. With u64 sums, 2^20 bytes keep `b` below 2^50 (zlib's
/// 5552 is the bound for u32 sums).
const CHUNK: usize = 1 << 20;

/// A running Adler-32: the pair `(a, b)`, not necessarily reduced mod 65521.
///
/// [`Adler32::append_repeated`], called once per distinct scanline of an image, leaves the
/// sums unreduced so that successive calls do not wait on each other's divisions; it keeps
/// `a < 2^32` and `b < 2^62` between calls (reducing first when they are not), which is
/// what its terms need to fit in 64 bits. Every other method reduces its inputs, and
/// [`Adler32::value`] the result. Compare checksums by their value.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Adler32 {
    a: u64,
    b: u64,
}

impl Adler32 {
    /// The checksum of no data.
    pub(crate) const fn new() -> Adler32 {
        Adler32 { a: 1, b: 0 }
    }

    /// From a packed value `b << 16 | a`.
    #[cfg(test)]
    pub(crate) const fn from_value(v: u32) -> Adler32 {
        Adler32 {
            a: (v & 0xffff) as u64,
            b: (v >> 16) as u64,
        }
    }

    /// The same checksum with both sums reduced.
    const fn reduced(self) -> Adler32 {
        Adler32 {
            a: self.a % MOD,
            b: self.b % MOD,
        }
    }

    /// The packed value `b << 16 | a`, as zlib stores it (big-endian).
    pub(crate) const fn value(self) -> u32 {
        let r = self.reduced();
        ((r.b << 16) | r.a) as u32
    }

    /// The checksum of `data` alone.
    pub(crate) fn of(data: &[u8]) -> Adler32 {
        let mut s = Adler32::new();
        s.update(data);
        s
    }

    /// Feeds `data`.
    pub(crate) fn update(&mut self, data: &[u8]) {
        let Adler32 { mut a, mut b } = self.reduced();
        for chunk in data.chunks(CHUNK) {
            // a < 2^16 + 2^20·255 < 2^29; b < 2^16 + 2^20·2^29 < 2^50: no overflow.
            let mut words = chunk.chunks_exact(8);
            for word in &mut words {
                // Eight bytes at once: a gains their sum S, b gains 8·a + Σ (8 - i)·byte i.
                let w = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
                let (sum, weighted) = sums_of_eight(w);
                b += 8 * a + weighted;
                a += sum;
            }
            for &byte in words.remainder() {
                a += u64::from(byte);
                b += a;
            }
            a %= MOD;
            b %= MOD;
        }
        self.a = a;
        self.b = b;
    }

    /// Appends data whose own checksum is `tail` and whose length is `tail_len`.
    pub(crate) fn combine(self, tail: Adler32, tail_len: u64) -> Adler32 {
        let Adler32 { a: a1, b: b1 } = self.reduced();
        let Adler32 { a: a2, b: b2 } = tail.reduced();
        let n = tail_len % MOD;
        let a = (a1 + a2 + MOD - 1) % MOD;
        let b = (b1 + b2 + n * ((a1 + MOD - 1) % MOD)) % MOD;
        Adler32 { a, b }
    }

    /// Appends `copies` copies of a block whose own checksum is `block` and whose length is
    /// `block_len`, in constant time.
    pub(crate) fn repeat(self, block: Adler32, block_len: u64, copies: u64) -> Adler32 {
        if copies == 0 {
            return self;
        }
        let block = block.reduced();
        let k = copies % MOD;
        // block.a is reduced: s < MOD.
        let s = (block.a + MOD - 1) % MOD;
        let n = block_len % MOD;
        // k(k-1)/2 mod MOD without overflow: halve whichever factor is even first.
        let (even, odd) = if copies & 1 == 0 {
            (copies, copies - 1)
        } else {
            (copies - 1, copies)
        };
        let pairs = (even / 2 % MOD) * (odd % MOD) % MOD;
        let a = (1 + k * s) % MOD;
        // Each product of two reduced values is below 2^32, so the sum cannot overflow.
        let b = (k * block.b + (n * s % MOD) * pairs) % MOD;
        self.combine(
            Adler32 { a, b },
            // Only the length mod MOD matters.
            n * k,
        )
    }
}

impl Adler32 {
    /// Appends `copies` copies of `line` (at most 2^20 bytes): one pass over the line and a
    /// handful of reductions, however many copies.
    ///
    /// The line alone sums to `S = Σ line[i]` and, counted from an `a` of 0,
    /// `W = Σ (n - i)·line[i]`; both fit in 64 bits unreduced. `k` copies after a state
    /// `(a, b)` give `a + k·S` and `b + k·n·a + n·S·k(k-1)/2 + k·W` (each copy adds `n·a'`
    /// and `W` to `b`, `a'` growing by `S` a copy).
    pub(crate) fn append_repeated(self, line: &[u8], copies: u64) -> Adler32 {
        debug_assert!(line.len() <= 1 << 20);
        let (mut sum, mut weighted) = (0u64, 0u64);
        let mut words = line.chunks_exact(8);
        for word in &mut words {
            let (s, w) = sums_of_eight(u64::from_le_bytes(word.try_into().unwrap_or([0; 8])));
            weighted += 8 * sum + w;
            sum += s;
        }
        for &byte in words.remainder() {
            sum += u64::from(byte);
            weighted += sum;
        }
        if copies <= 1 << 15 && line.len() <= 4097 {
            // A PNG's lines and rows (at most 4097 bytes, 32768 rows): S < 2^20, W < 2^32,
            // k·n < 2^27 and k(k-1)/2 < 2^29. With a < 2^32 and b < 2^62 the terms added to
            // b are below 2^59, 2^61 and 2^47, so b stays below 2^63, and a below 2^36:
            // nothing is reduced (the next call reduces if it must).
            let this = if self.a >= 1 << 32 || self.b >= 1 << 62 {
                self.reduced()
            } else {
                self
            };
            let (k, n) = (copies, line.len() as u64);
            let pairs = k * k.saturating_sub(1) / 2;
            return Adler32 {
                a: this.a + k * sum,
                b: this.b + k * n * this.a + n * sum * pairs + k * weighted,
            };
        }
        let Adler32 { a: a1, b: b1 } = self.reduced();
        let k = copies % MOD;
        let n = line.len() as u64 % MOD;
        let s = sum % MOD;
        // k(k-1)/2 mod MOD without overflow: halve whichever factor is even first.
        let (even, odd) = if copies & 1 == 0 {
            (copies, copies.saturating_sub(1))
        } else {
            (copies - 1, copies)
        };
        let pairs = (even / 2 % MOD) * (odd % MOD) % MOD;
        let a = (a1 + k * s) % MOD;
        // Four products of reduced values, each below 2^32: no overflow.
        let b = (b1 + (k * n % MOD) * a1 + (n * s % MOD) * pairs + k * (weighted % MOD)) % MOD;
        Adler32 { a, b }
    }
}

/// For the eight bytes of `w` (byte `i` at bits `8i..8i + 8`): their sum and
/// `Σ (8 - i)·byte i`.
///
/// The bytes are spread into 16-bit lanes (even bytes in one word, odd ones in another);
/// multiplying a word of four lanes by `k0 + k1·2^16 + k2·2^32 + k3·2^48` leaves
/// `Σ lane j · k(3 - j)` in the top lane. No lane carries: every partial sum is at most
/// 4 · 255 · 8 < 2^16.
#[inline(always)]
fn sums_of_eight(w: u64) -> (u64, u64) {
    const LANES: u64 = 0x00ff_00ff_00ff_00ff;
    const ONES: u64 = 0x0001_0001_0001_0001;
    // Even bytes 0, 2, 4, 6 weigh 8, 6, 4, 2; odd bytes 1, 3, 5, 7 weigh 7, 5, 3, 1.
    const EVEN_WEIGHTS: u64 = 2 | 4 << 16 | 6 << 32 | 8 << 48;
    const ODD_WEIGHTS: u64 = 1 | 3 << 16 | 5 << 32 | 7 << 48;
    let even = w & LANES;
    let odd = (w >> 8) & LANES;
    let sum = (even + odd).wrapping_mul(ONES) >> 48;
    let weighted = (even.wrapping_mul(EVEN_WEIGHTS) >> 48) + (odd.wrapping_mul(ODD_WEIGHTS) >> 48);
    (sum, weighted)
}

/// zlib-style combine on packed values: the Adler-32 of `D1 ++ D2` from those of `D1` and
/// `D2` and the length of `D2`.
#[cfg(test)]
pub(crate) fn adler32_combine(adler1: u32, adler2: u32, len2: u64) -> u32 {
    Adler32::from_value(adler1)
        .combine(Adler32::from_value(adler2), len2)
        .value()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::test_rng::Rng;

    /// The textbook definition, one byte at a time with a modulo on every step.
    fn reference(data: &[u8]) -> u32 {
        let (mut a, mut b) = (1u32, 0u32);
        for &x in data {
            a = (a + u32::from(x)) % 65521;
            b = (b + a) % 65521;
        }
        (b << 16) | a
    }

    fn random_bytes(rng: &mut Rng, len: usize, flavour: u64) -> Vec<u8> {
        (0..len)
            .map(|_| match flavour {
                0 => 0xff,
                1 => rng.next() as u8,
                _ => [0u8, 0xff][(rng.next() & 1) as usize],
            })
            .collect()
    }

    #[test]
    fn known_values() {
        assert_eq!(Adler32::new().value(), 1);
        assert_eq!(Adler32::of(b"Wikipedia").value(), 0x11E6_0398);
        assert_eq!(reference(b"Wikipedia"), 0x11E6_0398);
    }

    #[test]
    fn update_matches_reference_including_long_input() {
        let mut rng = Rng::new(7);
        for len in [
            0,
            1,
            2,
            100,
            5551,
            5552,
            5553,
            65521,
            200_000,
            (1 << 20) + 3,
        ] {
            for flavour in 0..3 {
                let d = random_bytes(&mut rng, len, flavour);
                assert_eq!(Adler32::of(&d).value(), reference(&d), "len {len}");
                // Split feeding gives the same result.
                let mut s = Adler32::new();
                let (x, y) = d.split_at(len / 3);
                s.update(x);
                s.update(y);
                assert_eq!(s.value(), reference(&d));
            }
        }
    }

    #[test]
    fn combine_matches_reference_on_random_data() {
        let mut rng = Rng::new(42);
        for _ in 0..500 {
            let l1 = rng.below(3000) as usize;
            let l2 = rng.below(3000) as usize;
            let flavour = rng.below(3);
            let d1 = random_bytes(&mut rng, l1, flavour);
            let d2 = random_bytes(&mut rng, l2, flavour);
            let whole: Vec<u8> = d1.iter().chain(&d2).copied().collect();
            assert_eq!(
                adler32_combine(reference(&d1), reference(&d2), l2 as u64),
                reference(&whole)
            );
        }
        // Lengths past the modulus, and a first part whose `a` is 0 or 1.
        let d2 = vec![0xffu8; 70_000];
        for d1 in [vec![], vec![0u8; 3], vec![0xf0u8, 1]] {
            let whole: Vec<u8> = d1.iter().chain(&d2).copied().collect();
            assert_eq!(
                adler32_combine(reference(&d1), reference(&d2), d2.len() as u64),
                reference(&whole)
            );
        }
        // a1 == 0 happens when the bytes sum to 65520 = 0xff·256 + 240.
        let mut d1 = vec![0xffu8; 256];
        d1.push(240);
        assert_eq!(reference(&d1) & 0xffff, 0);
        let d2 = b"tail bytes";
        let whole: Vec<u8> = d1.iter().chain(d2).copied().collect();
        assert_eq!(
            adler32_combine(reference(&d1), reference(d2), d2.len() as u64),
            reference(&whole)
        );
    }

    #[test]
    fn repeat_matches_reference_on_random_data() {
        let mut rng = Rng::new(99);
        for case in 0..300 {
            let prefix_len = rng.below(500) as usize;
            let block_len = 1 + rng.below(600) as usize;
            let copies = if case % 10 == 0 {
                rng.below(400) + 100
            } else {
                rng.below(12)
            };
            let flavour = rng.below(3);
            let prefix = random_bytes(&mut rng, prefix_len, flavour);
            let block = random_bytes(&mut rng, block_len, flavour);
            let mut whole = prefix.clone();
            for _ in 0..copies {
                whole.extend_from_slice(&block);
            }
            let got = Adler32::of(&prefix).repeat(Adler32::of(&block), block_len as u64, copies);
            assert_eq!(got.value(), reference(&whole), "case {case}");
        }
    }

    #[test]
    fn append_repeated_matches_reference() {
        let mut rng = Rng::new(2026);
        for case in 0..400 {
            let prefix_len = rng.below(300) as usize;
            let line_len = rng.below(700) as usize;
            let copies = match case % 4 {
                0 => rng.below(3),
                1 => rng.below(40),
                _ => rng.below(400),
            };
            let flavour = rng.below(3);
            let prefix = random_bytes(&mut rng, prefix_len, flavour);
            let line = random_bytes(&mut rng, line_len, flavour);
            let mut whole = prefix.clone();
            for _ in 0..copies {
                whole.extend_from_slice(&line);
            }
            let got = Adler32::of(&prefix).append_repeated(&line, copies);
            assert_eq!(got.value(), reference(&whole), "case {case}");
        }
        // Many copies of a long line of 0xff, past the modulus in every factor.
        let line = vec![0xffu8; 4097];
        let start = Adler32::of(b"x");
        for copies in [
            1u64, 2, 32_767, 32_768, 32_769, 65_520, 65_521, 65_522, 200_003,
        ] {
            let folded = start.repeat(Adler32::of(&line), line.len() as u64, copies);
            assert_eq!(
                start.append_repeated(&line, copies).value(),
                folded.value(),
                "{copies}"
            );
        }
    }

    #[test]
    fn unreduced_appends_in_a_row_match_reduced_folding() {
        // Calls that leave the sums unreduced, chained as an image's lines are, past the
        // points where a and b must be reduced before the next call (the largest lines and
        // row counts a PNG has, all 0xff), and small ones between.
        let mut rng = Rng::new(62);
        let mut lazy = Adler32::of(b"x");
        let mut folded = lazy;
        for step in 0..40 {
            let (len, copies) = match step % 3 {
                0 => (4097, 1 << 15),
                1 => (1 + rng.below(4097) as usize, rng.below(1 << 15)),
                _ => (1 + rng.below(64) as usize, rng.below(12)),
            };
            let line = if step % 2 == 0 {
                vec![0xffu8; len]
            } else {
                random_bytes(&mut rng, len, step)
            };
            lazy = lazy.append_repeated(&line, copies);
            folded = folded.repeat(Adler32::of(&line), len as u64, copies);
            assert_eq!(lazy.value(), folded.value(), "step {step}");
        }
    }

    #[test]
    fn repeat_of_many_copies_matches_folding_one_at_a_time() {
        // Past the modulus in count and in total length, where k(k-1)/2 must be exact.
        let block = [0x00u8, 0xff, 0x0f, 0xf0, 0xaa];
        let b = Adler32::of(&block);
        let mut folded = Adler32::of(b"start");
        for copies in 1..=140_000u64 {
            folded = folded.combine(b, block.len() as u64);
            if copies % 13_331 == 0 || copies == 140_000 || copies == 65_521 {
                let direct = Adler32::of(b"start").repeat(b, block.len() as u64, copies);
                assert_eq!(direct.value(), folded.value(), "copies {copies}");
            }
        }
    }
}
