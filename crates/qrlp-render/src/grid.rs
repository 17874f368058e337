//! The module source every renderer reads.
//!
//! The public functions take a [`QrCode`]; internally they are written against this small
//! trait so that the unit tests can feed hand-made patterns of any width.

use qrlp_qr::QrCode;

/// A square of dark and light modules, stored as rows of 64-bit words (module `x` of a row is
/// bit `x % 64` of word `x / 64`, 1 = dark, bits past the width are 0).
pub(crate) trait Modules {
    /// Width (and height) in modules.
    fn width(&self) -> usize;
    /// Row `y` (`y < width`) as bit words.
    fn row(&self, y: usize) -> &[u64];
    /// Whether module (`x`, `y`) is dark; out of range is light.
    fn is_dark(&self, x: usize, y: usize) -> bool {
        if x >= self.width() || y >= self.width() {
            return false;
        }
        (self.row(y)[x / 64] >> (x % 64)) & 1 != 0
    }
}

impl Modules for QrCode {
    #[inline]
    fn width(&self) -> usize {
        QrCode::width(self)
    }

    #[inline]
    fn row(&self, y: usize) -> &[u64] {
        QrCode::row(self, y)
    }

    #[inline]
    fn is_dark(&self, x: usize, y: usize) -> bool {
        QrCode::is_dark(self, x, y)
    }
}

/// The first column `≥ from` whose module is dark (`dark = true`) or light, or `width` if
/// there is none.
#[inline]
pub(crate) fn next_module(row: &[u64], from: usize, width: usize, dark: bool) -> usize {
    // Light modules are the set bits of the complemented words; the complement makes the
    // (zero) bits past the width count as light, which the final `min` clips.
    let flip = if dark { 0 } else { u64::MAX };
    let mut w = from / 64;
    let Some(&first) = row.get(w) else {
        return width;
    };
    let mut bits = (first ^ flip) & (u64::MAX << (from % 64));
    loop {
        if bits != 0 {
            return (w * 64 + bits.trailing_zeros() as usize).min(width);
        }
        w += 1;
        match row.get(w) {
            Some(&word) if w * 64 < width => bits = word ^ flip,
            _ => return width,
        }
    }
}

/// Calls `f(start, end)` for each maximal run of dark modules `start..end` in a row, left to
/// right.
#[inline]
pub(crate) fn dark_runs(row: &[u64], width: usize, mut f: impl FnMut(usize, usize)) {
    let mut x = next_module(row, 0, width, true);
    while x < width {
        let end = next_module(row, x, width, false);
        f(x, end);
        x = next_module(row, end, width, true);
    }
}

/// Test-only module pattern of any width.
#[cfg(test)]
pub(crate) mod test_grid {
    use super::Modules;

    /// A hand-made module pattern.
    #[derive(Clone, Debug)]
    pub(crate) struct Grid {
        width: usize,
        stride: usize,
        bits: Vec<u64>,
    }

    impl Grid {
        /// All light.
        pub(crate) fn new(width: usize) -> Grid {
            let stride = width.div_ceil(64).max(1);
            Grid {
                width,
                stride,
                bits: vec![0; stride * width.max(1)],
            }
        }

        /// Sets one module.
        pub(crate) fn set(&mut self, x: usize, y: usize, dark: bool) {
            assert!(x < self.width && y < self.width);
            let w = &mut self.bits[y * self.stride + x / 64];
            if dark {
                *w |= 1 << (x % 64);
            } else {
                *w &= !(1 << (x % 64));
            }
        }

        /// From a function.
        pub(crate) fn from_fn(width: usize, mut f: impl FnMut(usize, usize) -> bool) -> Grid {
            let mut g = Grid::new(width);
            for y in 0..width {
                for x in 0..width {
                    g.set(x, y, f(x, y));
                }
            }
            g
        }

        /// Pseudo-random pattern from a seed (xorshift), with finder-like corners so that
        /// identical neighbouring rows are rare but possible.
        pub(crate) fn random(width: usize, seed: u64) -> Grid {
            let mut rng = super::test_rng::Rng::new(seed);
            Grid::from_fn(width, |_, _| rng.next() & 1 == 1)
        }

        /// From text rows: `#` dark, anything else light.
        pub(crate) fn parse(rows: &[&str]) -> Grid {
            let mut g = Grid::new(rows.len());
            for (y, r) in rows.iter().enumerate() {
                assert_eq!(r.chars().count(), rows.len(), "grid must be square");
                for (x, c) in r.chars().enumerate() {
                    g.set(x, y, c == '#');
                }
            }
            g
        }
    }

    impl Modules for Grid {
        fn width(&self) -> usize {
            self.width
        }

        fn row(&self, y: usize) -> &[u64] {
            &self.bits[y * self.stride..(y + 1) * self.stride]
        }
    }
}

/// A tiny deterministic generator for tests (xorshift64*).
#[cfg(test)]
pub(crate) mod test_rng {
    /// xorshift64* state.
    pub(crate) struct Rng(u64);

    impl Rng {
        /// Seeded generator; any seed works.
        pub(crate) fn new(seed: u64) -> Rng {
            Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
        }

        /// Next 64 random bits.
        pub(crate) fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        /// Uniform-ish value in `0..n` (`n > 0`).
        pub(crate) fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_grid::Grid;
    use super::*;

    #[test]
    fn dark_runs_are_maximal_and_cover_the_row() {
        for width in [1usize, 2, 21, 63, 64, 65, 127, 128, 129, 177, 200] {
            for seed in 0..8 {
                let g = Grid::random(width, seed + width as u64 * 100);
                for y in 0..width {
                    let mut expected = Vec::new();
                    let mut x = 0;
                    while x < width {
                        if g.is_dark(x, y) {
                            let start = x;
                            while x < width && g.is_dark(x, y) {
                                x += 1;
                            }
                            expected.push((start, x));
                        } else {
                            x += 1;
                        }
                    }
                    let mut got = Vec::new();
                    dark_runs(g.row(y), width, |a, b| got.push((a, b)));
                    assert_eq!(got, expected, "width {width} row {y}");
                }
            }
        }
        // All dark across word boundaries: one run.
        let g = Grid::from_fn(130, |_, _| true);
        let mut got = Vec::new();
        dark_runs(g.row(0), 130, |a, b| got.push((a, b)));
        assert_eq!(got, [(0, 130)]);
        assert_eq!(next_module(g.row(0), 0, 130, false), 130);
        assert_eq!(next_module(g.row(0), 500, 130, true), 130);
    }
}
