//! Module placement and mask selection for QR Code (versions 1-40).
//!
//! The symbol is held as a bit plane. To score masks fast, each plane row `r` holds row `r`
//! of the symbol (part A) *and* column `r` of it (part B, the transpose), so that every
//! penalty rule is evaluated for rows and columns at once by combining whole plane rows:
//! a run along a symbol column is a run down the plane in part A, and a run along a symbol
//! row is a run down the plane in part B. `PAD` light rows above and below stand for the
//! quiet zone that the finder-like rule (N3) counts as light.

use std::sync::OnceLock;

use crate::tables::{alignment_positions, bch_format, version_bits};
use crate::{EcLevel, Mask, QrCode, SymbolVersion, Version};

/// Light plane rows above and below the symbol: enough for rule N3 at scale 3 (12 light).
const PAD: usize = 12;

/// Penalty weights of ISO/IEC 18004:2015 section 7.8.3.1.
const N1: u32 = 3;
const N2: u32 = 3;
const N3: u32 = 40;
const N4: u32 = 10;

/// Finder-like patterns every symbol has whatever its mask: rows and columns 2-4 of each of
/// the three finder patterns, with the quiet zone on their outer side. A lower bound of rule
/// N3 that lets a mask's scoring stop before N3 when it cannot win.
const N3_FLOOR: u32 = 18 * N3;

/// Everything about a version's layout that does not depend on the data.
pub(crate) struct Template {
    width: usize,
    /// Words per row of part A (and of the finished symbol).
    sa: usize,
    /// Words per plane row.
    stride: usize,
    /// Bit offset of part B in a plane row.
    ob: usize,
    /// Plane rows: width + 2 * PAD.
    rows: usize,
    /// Function patterns (dark modules), part A only; format areas left light.
    base_a: Vec<u64>,
    /// Plane bit index (part A) of every non-function module, in placement order.
    data_pos: Vec<u32>,
    /// For each level (by ordinal) and mask, `level * 8 + mask`: the dark bits of the format
    /// information in both copies and both parts, as (word index, bits) pairs.
    format_words: Vec<Vec<(u32, u64)>>,
    /// For each mask, the modules it flips (data modules only), both parts.
    masks: [Vec<u64>; 8],
    /// Valid bits of a plane row (parts A and B).
    valid: Vec<u64>,
    /// Valid bits of part A only.
    valid_a: Vec<u64>,
    /// Part A bits x < width - 1 (for the 2x2 rule).
    valid_a2: Vec<u64>,
}

fn mask_bit(mask: u8, x: usize, y: usize) -> bool {
    match mask {
        0 => (x + y) % 2 == 0,
        1 => y % 2 == 0,
        2 => x % 3 == 0,
        3 => (x + y) % 3 == 0,
        4 => (x / 3 + y / 2) % 2 == 0,
        5 => x * y % 2 + x * y % 3 == 0,
        6 => (x * y % 2 + x * y % 3) % 2 == 0,
        _ => ((x + y) % 2 + x * y % 3) % 2 == 0,
    }
}

impl Template {
    pub(crate) fn get(v: Version) -> &'static Template {
        static CACHE: [OnceLock<Template>; 41] = [const { OnceLock::new() }; 41];
        CACHE[v.number() as usize].get_or_init(|| Template::build(v))
    }

    fn a_index(&self, x: usize, y: usize) -> u32 {
        ((y + PAD) * self.stride * 64 + x) as u32
    }

    fn b_index(&self, x: usize, y: usize) -> u32 {
        ((x + PAD) * self.stride * 64 + self.ob + y) as u32
    }

    fn build(v: Version) -> Template {
        let w = v.width();
        let sa = w.div_ceil(64);
        let (stride, ob) = if w <= 32 { (1, 32) } else { (2 * sa, 64 * sa) };
        let rows = w + 2 * PAD;
        let mut t = Template {
            width: w,
            sa,
            stride,
            ob,
            rows,
            base_a: vec![0; rows * stride],
            data_pos: Vec::new(),
            format_words: Vec::new(),
            masks: Default::default(),
            valid: vec![0; stride],
            valid_a: vec![0; stride],
            valid_a2: vec![0; stride],
        };
        for x in 0..w {
            set_bit(&mut t.valid, x);
            set_bit(&mut t.valid, ob + x);
            set_bit(&mut t.valid_a, x);
            if x + 1 < w {
                set_bit(&mut t.valid_a2, x);
            }
        }

        // Function modules: `func` marks them, `dark` holds their colour.
        let mut func = vec![false; w * w];
        let mut dark = vec![false; w * w];
        let mut put = |x: usize, y: usize, d: bool| {
            func[y * w + x] = true;
            dark[y * w + x] = d;
        };
        for i in 0..w {
            put(6, i, i % 2 == 0);
            put(i, 6, i % 2 == 0);
        }
        for (cx, cy) in [(3, 3), (w - 4, 3), (3, w - 4)] {
            for dy in -4i32..=4 {
                for dx in -4i32..=4 {
                    let (x, y) = (cx as i32 + dx, cy as i32 + dy);
                    if x >= 0 && y >= 0 && (x as usize) < w && (y as usize) < w {
                        let dist = dx.abs().max(dy.abs());
                        put(x as usize, y as usize, dist != 2 && dist != 4);
                    }
                }
            }
        }
        let align = alignment_positions(v);
        let last = align.len().saturating_sub(1);
        for (i, &ax) in align.iter().enumerate() {
            for (j, &ay) in align.iter().enumerate() {
                // The three corners hold finder patterns instead.
                let corner =
                    (i == 0 || i == last) && (j == 0 || j == last) && !(i == last && j == last);
                if corner {
                    continue;
                }
                for dy in -2i32..=2 {
                    for dx in -2i32..=2 {
                        let d = dx.abs().max(dy.abs()) != 1;
                        put((ax as i32 + dx) as usize, (ay as i32 + dy) as usize, d);
                    }
                }
            }
        }
        // Format areas: reserved here, drawn per mask.
        let mut format_xy = [[(0usize, 0usize); 2]; 15];
        for (i, slot) in format_xy.iter_mut().enumerate() {
            let first = match i {
                0..=5 => (8, i),
                6 => (8, 7),
                7 => (8, 8),
                8 => (7, 8),
                _ => (14 - i, 8),
            };
            let second = if i < 8 {
                (w - 1 - i, 8)
            } else {
                (8, w - 15 + i)
            };
            *slot = [first, second];
        }
        for pair in &format_xy {
            for &(x, y) in pair {
                put(x, y, false);
            }
        }
        put(8, w - 8, true);
        if v.number() >= 7 {
            let bits = version_bits(v.number() as u32);
            for i in 0..18 {
                let d = (bits >> i) & 1 != 0;
                let (a, b) = (w - 11 + i % 3, i / 3);
                put(a, b, d);
                put(b, a, d);
            }
        }

        for y in 0..w {
            for x in 0..w {
                if dark[y * w + x] {
                    let i = t.a_index(x, y) as usize;
                    set_bit(&mut t.base_a, i);
                }
            }
        }
        for ecc in EcLevel::ALL {
            for m in 0..8u8 {
                let fw = format_word(ecc, m);
                let mut words: Vec<(u32, u64)> = Vec::new();
                for (i, pair) in format_xy.iter().enumerate() {
                    if (fw >> i) & 1 == 0 {
                        continue;
                    }
                    for &(x, y) in pair {
                        for bit in [t.a_index(x, y), t.b_index(x, y)] {
                            let (word, b) = (bit / 64, 1u64 << (bit % 64));
                            match words.iter_mut().find(|(wi, _)| *wi == word) {
                                Some((_, bits)) => *bits |= b,
                                None => words.push((word, b)),
                            }
                        }
                    }
                }
                t.format_words.push(words);
            }
        }

        // Zig-zag placement order: two-module columns from the right, skipping the vertical
        // timing pattern, alternately upwards and downwards.
        let mut right = w as i32 - 1;
        while right >= 1 {
            if right == 6 {
                right = 5;
            }
            let upward = ((right + 1) & 2) == 0;
            for vert in 0..w {
                let y = if upward { w - 1 - vert } else { vert };
                for j in 0..2 {
                    let x = (right - j) as usize;
                    if !func[y * w + x] {
                        t.data_pos.push(t.a_index(x, y));
                    }
                }
            }
            right -= 2;
        }

        for m in 0..8u8 {
            let mut plane = vec![0u64; rows * stride];
            for y in 0..w {
                for x in 0..w {
                    if !func[y * w + x] && mask_bit(m, x, y) {
                        set_bit(&mut plane, t.a_index(x, y) as usize);
                        set_bit(&mut plane, t.b_index(x, y) as usize);
                    }
                }
            }
            t.masks[m as usize] = plane;
        }
        t
    }
}

#[inline]
fn set_bit(words: &mut [u64], i: usize) {
    words[i / 64] |= 1 << (i % 64);
}

/// Transposes a 64x64 bit block in place: afterwards bit `c` of word `r` is what bit `r` of
/// word `c` was.
fn transpose64(a: &mut [u64; 64]) {
    let mut j = 32;
    let mut m: u64 = 0x0000_0000_FFFF_FFFF;
    while j != 0 {
        let mut k = 0;
        while k < 64 {
            let t = ((a[k] >> j) ^ a[k + j]) & m;
            a[k] ^= t << j;
            a[k + j] ^= t;
            k = (k + j + 1) & !j;
        }
        j >>= 1;
        m ^= m << j;
    }
}

/// Transposes a 32x32 bit block in place, as [`transpose64`] does a 64x64 one.
fn transpose32(a: &mut [u32; 32]) {
    let mut j = 16;
    let mut m: u32 = 0x0000_FFFF;
    while j != 0 {
        let mut k = 0;
        while k < 32 {
            let t = ((a[k] >> j) ^ a[k + j]) & m;
            a[k] ^= t << j;
            a[k + j] ^= t;
            k = (k + j + 1) & !j;
        }
        j >>= 1;
        m ^= m << j;
    }
}

/// Fills part B of `plane` with the transpose of its part A.
fn fill_transpose(t: &Template, plane: &mut [u64]) {
    let w = t.width;
    let s = t.stride;
    if w <= 32 {
        // One 32x32 block: part A in the low half of each word, part B in the high half.
        let mut block = [0u32; 32];
        for (k, slot) in block.iter_mut().enumerate().take(w) {
            *slot = plane[(k + PAD) * s] as u32;
        }
        transpose32(&mut block);
        for (x, &col) in block.iter().enumerate().take(w) {
            let word = &mut plane[(x + PAD) * s];
            *word = (*word & 0xFFFF_FFFF) | (u64::from(col) << 32);
        }
        return;
    }
    let mut block = [0u64; 64];
    for bi in 0..t.sa {
        for bj in 0..t.sa {
            for (k, slot) in block.iter_mut().enumerate() {
                let y = bi * 64 + k;
                *slot = if y < w { plane[(y + PAD) * s + bj] } else { 0 };
            }
            transpose64(&mut block);
            for (k, &col) in block.iter().enumerate() {
                let x = bj * 64 + k;
                if x < w {
                    plane[(x + PAD) * s + t.sa + bi] = col;
                }
            }
        }
    }
}

/// The 15 format bits for a level and mask, already XOR-masked (section 7.9).
pub(crate) fn format_word(ecc: EcLevel, mask: u8) -> u32 {
    bch_format(ecc.format_bits() << 3 | mask as u32) ^ 0x5412
}

/// Places `codewords` (data and error correction, interleaved) into a symbol of version `v`,
/// chooses the mask (or uses `forced`), and returns the finished symbol.
///
/// Mask scoring is whole-word bit counting and masking: on x86-64 processors that have the
/// population-count, bit-manipulation and AVX2 instructions (the x86-64-v3 level: Intel
/// since 2013, AMD since 2015) the same code runs compiled for them, found at run time, so a
/// binary built for the baseline still uses them. The result does not depend on which runs.
pub(crate) fn build(v: Version, ecc: EcLevel, codewords: &[u8], forced: Option<Mask>) -> QrCode {
    #[cfg(target_arch = "x86_64")]
    if x86_64_v3() {
        // SAFETY: `build_x86_64_v3` is compiled for exactly the instruction-set extensions
        // that `x86_64_v3` has just found on this processor.
        #[allow(unsafe_code)]
        return unsafe { build_x86_64_v3(v, ecc, codewords, forced) };
    }
    build_any(v, ecc, codewords, forced)
}

/// Whether this processor has the extensions [`build_x86_64_v3`] is compiled for (the
/// standard library caches what it finds, so each check is a load and a bit test).
#[cfg(target_arch = "x86_64")]
fn x86_64_v3() -> bool {
    std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("bmi1")
        && std::is_x86_feature_detected!("bmi2")
        && std::is_x86_feature_detected!("lzcnt")
        && std::is_x86_feature_detected!("popcnt")
}

/// [`build_any`] compiled for the x86-64-v3 extensions.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,bmi1,bmi2,lzcnt,popcnt")]
fn build_x86_64_v3(v: Version, ecc: EcLevel, codewords: &[u8], forced: Option<Mask>) -> QrCode {
    build_any(v, ecc, codewords, forced)
}

/// The body of [`build`], inlined into each processor-specific copy.
#[inline(always)]
fn build_any(v: Version, ecc: EcLevel, codewords: &[u8], forced: Option<Mask>) -> QrCode {
    let t = Template::get(v);
    let n = t.base_a.len();
    // The planes and the scoring scratch, in one buffer a thread keeps between symbols
    // (taken out while in use, so a nested call would only allocate its own).
    let mut planes = PLANES.take();
    planes.clear();
    planes.resize(3 * n + Scratch::words(t), 0);
    let (base, rest) = planes.split_at_mut(n);
    let (mut work, rest) = rest.split_at_mut(n);
    let (mut best, space) = rest.split_at_mut(n);
    base.copy_from_slice(&t.base_a);
    let mut scratch = Scratch { buf: space };
    // Only the dark bits need placing: bit 7 - k of a codeword goes to position k of its
    // eight (the last codeword may have fewer positions in principle; never in practice).
    for (&byte, pos) in codewords.iter().zip(t.data_pos.chunks(8)) {
        let mut dark = u32::from(byte) << 24;
        while dark != 0 {
            let k = dark.leading_zeros() as usize;
            dark &= !(0x8000_0000 >> k);
            if let Some(&p) = pos.get(k) {
                let p = p as usize;
                base[p / 64] |= 1 << (p % 64);
            }
        }
    }
    fill_transpose(t, base);

    let (mut best_mask, mut best_score) = (0u8, u32::MAX);
    let candidates = match forced {
        Some(m) => m.number()..m.number() + 1,
        None => 0..8,
    };
    for m in candidates {
        for ((o, &b), &k) in work.iter_mut().zip(&*base).zip(&t.masks[m as usize]) {
            *o = b ^ k;
        }
        // The format areas are light in `base` and outside every mask: set the dark bits.
        for &(i, bits) in &t.format_words[ecc.ordinal() * 8 + m as usize] {
            work[i as usize] |= bits;
        }
        if forced.is_some() {
            std::mem::swap(&mut best, &mut work);
            best_mask = m;
            break;
        }
        let score = penalty(t, work, &mut scratch, best_score);
        if score < best_score {
            best_score = score;
            best_mask = m;
            std::mem::swap(&mut best, &mut work);
        }
    }

    let w = t.width;
    let mut bits = vec![0u64; w * t.sa];
    for y in 0..w {
        let row = &best[(y + PAD) * t.stride..];
        if w <= 32 {
            bits[y] = row[0] & 0xFFFF_FFFF;
        } else {
            bits[y * t.sa..(y + 1) * t.sa].copy_from_slice(&row[..t.sa]);
        }
    }
    PLANES.set(planes);
    QrCode {
        version: SymbolVersion::Normal(v),
        ecc,
        mask: Mask::new(best_mask).unwrap_or(Mask::new(0).unwrap()),
        width: w,
        stride: t.sa,
        bits,
    }
}

thread_local! {
    /// [`build`]'s planes, kept per thread so that a symbol costs no allocation but its
    /// result's (and, in a server, no large allocation, which makes the allocator tidy up).
    /// It holds the largest symbol the thread has built: at most version 40's 7 x 1,206
    /// words (66 KiB).
    static PLANES: std::cell::Cell<Vec<u64>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Reusable buffers for [`penalty`]: light modules, runs of 4 light, runs of 3 dark, and
/// vertical equality, one plane row each.
struct Scratch<'a> {
    buf: &'a mut [u64],
}

impl Scratch<'_> {
    /// Words of scratch space that [`penalty`] needs for `t`.
    fn words(t: &Template) -> usize {
        4 * t.rows * t.stride
    }
}

/// Total penalty of a masked plane (rules N1-N4), computed to agree exactly with the
/// run-length formulation (see `reference` in the tests). Stops early, returning a value
/// `>= limit`, once the score cannot beat `limit`.
#[inline(always)]
fn penalty(t: &Template, d: &[u64], sc: &mut Scratch<'_>, limit: u32) -> u32 {
    match t.stride {
        1 => penalty_rows::<1>(t, d, sc, limit),
        2 => penalty_rows::<2>(t, d, sc, limit),
        4 => penalty_rows::<4>(t, d, sc, limit),
        _ => penalty_rows::<6>(t, d, sc, limit),
    }
}

type Row<const S: usize> = [u64; S];

#[inline(always)]
fn and<const S: usize>(a: Row<S>, b: Row<S>) -> Row<S> {
    std::array::from_fn(|i| a[i] & b[i])
}

#[inline(always)]
fn any<const S: usize>(a: Row<S>) -> bool {
    a.iter().fold(0, |acc, &x| acc | x) != 0
}

#[inline(always)]
fn ones<const S: usize>(a: Row<S>) -> u32 {
    a.iter().map(|x| x.count_ones()).sum()
}

/// Row shifted down by one bit position (bit x takes bit x + 1).
#[inline(always)]
fn next_bit<const S: usize>(a: Row<S>) -> Row<S> {
    std::array::from_fn(|i| a[i] >> 1 | if i + 1 < S { a[i + 1] << 63 } else { 0 })
}

fn as_rows<const S: usize>(words: &[u64]) -> &[Row<S>] {
    words.as_chunks::<S>().0
}

#[inline(always)]
fn penalty_rows<const S: usize>(
    t: &Template,
    plane: &[u64],
    sc: &mut Scratch<'_>,
    limit: u32,
) -> u32 {
    let w = t.width;
    let rows = t.rows;
    let d = &as_rows::<S>(plane)[..rows];
    let row_of = |v: &[u64]| -> Row<S> { std::array::from_fn(|i| v[i]) };
    let valid = row_of(&t.valid);
    let valid_a = row_of(&t.valid_a);
    let valid_a2 = row_of(&t.valid_a2);
    let sym = &d[PAD..PAD + w];

    // N4: balance of dark modules (part A only).
    let dark: u32 = sym.iter().map(|&r| ones(and(r, valid_a))).sum();
    let total = (w * w) as i64;
    let k = (((dark as i64) * 20 - total * 10).abs() + total - 1) / total - 1;
    let mut score = k as u32 * N4;

    // N2: 2x2 blocks of one colour (part A only; part B would count the same blocks).
    let mut blocks = 0;
    for pair in sym.windows(2) {
        let (r0, r1) = (pair[0], pair[1]);
        let h: Row<S> = std::array::from_fn(|i| !(r0[i] ^ next_bit(r0)[i]));
        let v: Row<S> = std::array::from_fn(|i| !(r0[i] ^ r1[i]));
        blocks += ones(and(and(h, and(v, next_bit(v))), valid_a2));
    }
    score += blocks * N2;
    if score + N3_FLOOR >= limit {
        return score + N3_FLOOR;
    }

    let (light, rest) = sc.buf.as_chunks_mut::<S>().0.split_at_mut(rows);
    let (quad, rest) = rest.split_at_mut(rows);
    let (dark3, eq) = rest.split_at_mut(rows);
    for (l, &r) in light.iter_mut().zip(d) {
        *l = std::array::from_fn(|i| !r[i] & valid[i]);
    }
    for (q, l) in quad.iter_mut().zip(light.windows(4)) {
        *q = and(and(l[0], l[1]), and(l[2], l[3]));
    }
    for (x, r) in dark3.iter_mut().zip(d.windows(3)) {
        *x = and(and(r[0], r[1]), r[2]);
    }

    // N1: runs of five or more. E(r) marks five equal modules starting at r; a run of length
    // L >= 5 has L - 4 such starts, and scores N1 + (L - 5) = (L - 4) + (N1 - 1).
    for (e, pair) in eq.iter_mut().zip(sym.windows(2)) {
        *e = std::array::from_fn(|i| !(pair[0][i] ^ pair[1][i]) & valid[i]);
    }
    let mut n1 = 0;
    let mut prev = [0u64; S];
    for q in eq[..w - 1].windows(4) {
        let e = and(and(q[0], q[1]), and(q[2], q[3]));
        let starts: Row<S> = std::array::from_fn(|i| e[i] & !prev[i]);
        n1 += ones(e) + (N1 - 1) * ones(starts);
        prev = e;
    }
    score += n1;
    if score + N3_FLOOR >= limit {
        return score + N3_FLOOR;
    }

    // N3: dark-light-dark-dark-dark-light-dark at scale n, light on both sides, with at least
    // 4n light on one side (each side counted). Scales 1-3 here, wider ones below.
    // Each loop runs over equal-length windows of the rows it reads, so that no index needs
    // a bounds check.
    let (light, quad, dark3) = (&light[..rows], &quad[..rows], &dark3[..rows]);
    let mut n3 = 0;
    {
        // Pattern at rows r..r + 7 for r in PAD..=PAD + w - 7.
        let n = w - 6;
        let (d0, l1, x2) = (
            win(d, PAD, n),
            win(light, PAD + 1, n),
            win(dark3, PAD + 2, n),
        );
        let (l5, d6, l7) = (
            win(light, PAD + 5, n),
            win(d, PAD + 6, n),
            win(light, PAD + 7, n),
        );
        let (lm1, qm4, q7) = (
            win(light, PAD - 1, n),
            win(quad, PAD - 4, n),
            win(quad, PAD + 7, n),
        );
        for i in 0..n {
            let core = and(
                and(and(d0[i], l1[i]), and(x2[i], l5[i])),
                and(d6[i], and(lm1[i], l7[i])),
            );
            if any(core) {
                n3 += ones(and(core, qm4[i])) + ones(and(core, q7[i]));
            }
        }
    }
    if w >= 14 {
        // Scale 2, r in PAD..PAD + w - 13: d[0..2] l[2..4] d[4..10] l[10..12] d[12..14].
        let n = w - 13;
        let (x4, x7) = (win(dark3, PAD + 4, n), win(dark3, PAD + 7, n));
        let (l3, l10) = (win(light, PAD + 3, n), win(light, PAD + 10, n));
        for i in 0..n {
            let centre = and(and(x4[i], x7[i]), and(l3[i], l10[i]));
            if !any(centre) {
                continue;
            }
            let r = PAD + i;
            let core = and(
                and(
                    and(centre, and(d[r], d[r + 1])),
                    and(and(light[r + 2], light[r + 11]), and(d[r + 12], d[r + 13])),
                ),
                and(
                    and(light[r - 1], light[r - 2]),
                    and(light[r + 14], light[r + 15]),
                ),
            );
            if any(core) {
                let left = and(quad[r - 8], quad[r - 4]);
                let right = and(quad[r + 14], quad[r + 18]);
                n3 += ones(and(core, left)) + ones(and(core, right));
            }
        }
    }
    if w >= 21 {
        // Scale 3, r in PAD..PAD + w - 20: d[0..3] l[3..6] d[6..15] l[15..18] d[18..21].
        let n = w - 20;
        let (x6, x9) = (win(dark3, PAD + 6, n), win(dark3, PAD + 9, n));
        let (x12, l5, l15) = (
            win(dark3, PAD + 12, n),
            win(light, PAD + 5, n),
            win(light, PAD + 15, n),
        );
        for i in 0..n {
            let centre = and(and(x6[i], x9[i]), and(x12[i], and(l5[i], l15[i])));
            if !any(centre) {
                continue;
            }
            let r = PAD + i;
            let l3 = |k: usize| and(and(light[k], light[k + 1]), light[k + 2]);
            let core = and(
                and(and(centre, dark3[r]), and(l3(r + 3), l3(r + 15))),
                and(and(dark3[r + 18], l3(r + 21)), l3(r - 3)),
            );
            if any(core) {
                let left = and(and(quad[r - 12], quad[r - 8]), quad[r - 4]);
                let right = and(and(quad[r + 21], quad[r + 25]), quad[r + 29]);
                n3 += ones(and(core, left)) + ones(and(core, right));
            }
        }
    }
    // Scales 4 and up: a centre of 12+ dark right after 4+ light is rare, so only the lines
    // that have one are walked run by run.
    let mut wide = [0u64; S];
    if w >= 27 {
        // c in PAD + 8..PAD + w - 19.
        let n = w - 27;
        let (q, x0, x3) = (
            win(quad, PAD + 4, n),
            win(dark3, PAD + 8, n),
            win(dark3, PAD + 11, n),
        );
        let (x6, x9) = (win(dark3, PAD + 14, n), win(dark3, PAD + 17, n));
        for i in 0..n {
            let gate = and(and(q[i], x0[i]), and(and(x3[i], x6[i]), x9[i]));
            for j in 0..S {
                wide[j] |= gate[j];
            }
        }
    }
    if any(wide) {
        n3 += wide_finder_patterns(t, plane, &wide);
    }
    score + n3 * N3
}

/// `n` rows from `from`: loops over equal-length windows need no bounds checks.
#[inline(always)]
fn win<const S: usize>(v: &[Row<S>], from: usize, n: usize) -> &[Row<S>] {
    &v[from..from + n]
}

/// Finder-like patterns at scale 4 and above on the plane lines (bit columns) marked in
/// `lines`, counted by walking their runs.
fn wide_finder_patterns(t: &Template, d: &[u64], lines: &[u64]) -> u32 {
    let s = t.stride;
    let mut count = 0;
    for (i, &word) in lines.iter().enumerate() {
        let mut bits = word;
        while bits != 0 {
            let col = i * 64 + bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let line = |r: usize| (d[(r + PAD) * s + col / 64] >> (col % 64)) & 1 != 0;
            count += finder_runs(t.width, line, 4);
        }
    }
    count
}

/// Counts finder-like patterns with scale `n >= min_scale` along one line of `size`
/// modules, with the outside counted as `size` light modules on each end.
pub(crate) fn finder_runs(size: usize, dark: impl Fn(usize) -> bool, min_scale: usize) -> u32 {
    let mut hist = [0usize; 7];
    let push = |hist: &mut [usize; 7], mut len: usize| {
        if hist[0] == 0 {
            len += size;
        }
        hist.copy_within(0..6, 1);
        hist[0] = len;
    };
    let count = |h: &[usize; 7]| -> u32 {
        let n = h[1];
        let core = n >= min_scale && h[2] == n && h[3] == n * 3 && h[4] == n && h[5] == n;
        u32::from(core && h[0] >= n * 4 && h[6] >= n)
            + u32::from(core && h[6] >= n * 4 && h[0] >= n)
    };
    let mut total = 0;
    let mut colour = false;
    let mut run = 0;
    for i in 0..size {
        if dark(i) == colour {
            run += 1;
        } else {
            push(&mut hist, run);
            if !colour {
                total += count(&hist);
            }
            colour = dark(i);
            run = 1;
        }
    }
    if colour {
        push(&mut hist, run);
        run = 0;
    }
    push(&mut hist, run + size);
    total + count(&hist)
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)] // 2-D grid code reads best with indices
pub(crate) mod tests {
    use super::*;

    /// The penalty rules written out plainly over a module grid: the definition the plane
    /// code must agree with.
    pub(crate) fn reference(m: &[Vec<bool>]) -> u32 {
        let n = m.len();
        let mut score = 0;
        for line in 0..2 {
            for a in 0..n {
                let get = |b: usize| if line == 0 { m[a][b] } else { m[b][a] };
                let mut run = 1;
                for b in 1..=n {
                    if b < n && get(b) == get(b - 1) {
                        run += 1;
                    } else {
                        if run >= 5 {
                            score += N1 + (run as u32 - 5);
                        }
                        run = 1;
                    }
                }
                score += finder_runs(n, get, 1) * N3;
            }
        }
        for y in 0..n - 1 {
            for x in 0..n - 1 {
                let c = m[y][x];
                if c == m[y][x + 1] && c == m[y + 1][x] && c == m[y + 1][x + 1] {
                    score += N2;
                }
            }
        }
        let dark = m.iter().flatten().filter(|&&b| b).count() as i64;
        let total = (n * n) as i64;
        let k = ((dark * 20 - total * 10).abs() + total - 1) / total - 1;
        score + k as u32 * N4
    }

    fn plane_from_grid(t: &Template, m: &[Vec<bool>]) -> Vec<u64> {
        let mut p = vec![0u64; t.rows * t.stride];
        for (y, row) in m.iter().enumerate() {
            for (x, &b) in row.iter().enumerate() {
                if b {
                    set_bit(&mut p, t.a_index(x, y) as usize);
                }
            }
        }
        fill_transpose(t, &mut p);
        p
    }

    #[test]
    fn transpose_is_an_involution_and_correct() {
        let mut a = [0u64; 64];
        let mut seed = 99u64;
        for w in a.iter_mut() {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            *w = seed;
        }
        let orig = a;
        transpose64(&mut a);
        for r in 0..64 {
            for c in 0..64 {
                assert_eq!((a[r] >> c) & 1, (orig[c] >> r) & 1);
            }
        }
    }

    #[test]
    fn transpose32_is_correct() {
        let mut a = [0u32; 32];
        let mut seed = 7u64;
        for w in a.iter_mut() {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            *w = (seed >> 32) as u32;
        }
        let orig = a;
        transpose32(&mut a);
        for r in 0..32 {
            for c in 0..32 {
                assert_eq!((a[r] >> c) & 1, (orig[c] >> r) & 1);
            }
        }
    }

    #[test]
    fn plane_penalty_matches_reference_on_random_grids() {
        let mut next = crate::xorshift(12345);
        for v in [1u8, 2, 3, 4, 7, 10, 15, 26, 40] {
            let t = Template::get(Version::new(v).unwrap());
            let w = t.width;
            for case in 0..12 {
                // Vary the density and clumping so long runs and wide finder shapes occur.
                let m: Vec<Vec<bool>> = (0..w)
                    .map(|_| {
                        let mut row = Vec::with_capacity(w);
                        let mut cur = false;
                        for _ in 0..w {
                            let r = next();
                            if r % [2, 3, 5, 9][case % 4] == 0 {
                                cur = !cur;
                            }
                            row.push(if case % 3 == 0 { r & 1 == 1 } else { cur });
                        }
                        row
                    })
                    .collect();
                let p = plane_from_grid(t, &m);
                let mut space = vec![0; Scratch::words(t)];
                let mut sc = Scratch { buf: &mut space };
                assert_eq!(
                    penalty(t, &p, &mut sc, u32::MAX),
                    reference(&m),
                    "v{v} case {case}"
                );
            }
        }
    }

    #[test]
    fn processor_specific_build_matches_the_baseline_one() {
        // `build` may run a copy compiled for x86-64-v3; the baseline body must give the
        // same symbol, module for module and mask for mask, at every version and level.
        let mut next = crate::xorshift(0x2545_f491_4f6c_dd1d);
        for v in 1..=40u8 {
            let version = Version::new(v).unwrap();
            let codewords = crate::tables::total_codewords(version);
            for (i, ecc) in [EcLevel::L, EcLevel::M, EcLevel::Q, EcLevel::H]
                .into_iter()
                .enumerate()
            {
                let data: Vec<u8> = (0..codewords)
                    .map(|_| match (v as usize + i) % 3 {
                        0 => next() as u8,
                        1 => (next() % 4) as u8,
                        _ => 0xff ^ (next() % 3) as u8,
                    })
                    .collect();
                let forced = (i == 3).then(|| Mask::new(v % 8).unwrap());
                assert_eq!(
                    build(version, ecc, &data, forced),
                    build_any(version, ecc, &data, forced),
                    "v{v} {ecc:?}"
                );
            }
        }
    }

    #[test]
    fn every_symbol_has_the_n3_floor() {
        // Whatever the version, level and mask, rule N3 finds at least the 18 finder-like
        // patterns that the early exit of `penalty` counts on.
        for (i, v) in [1u8, 2, 3, 4, 6, 7, 9, 10, 14, 20, 27, 33, 40]
            .into_iter()
            .enumerate()
        {
            let version = Version::new(v).unwrap();
            for m in 0..8 {
                let opts = crate::Options {
                    ecc: EcLevel::ALL[(i + m as usize) % 4],
                    symbol: crate::SymbolKind::Qr {
                        min: version,
                        max: version,
                    },
                    mask: Mask::new(m),
                    ..crate::Options::default()
                };
                let code = QrCode::encode_text_with(&"Qr 1".repeat(i + 1), &opts).unwrap();
                let grid = code.to_rows();
                let n = grid.len();
                let mut patterns = 0;
                for a in 0..n {
                    patterns += finder_runs(n, |b| grid[a][b], 1);
                    patterns += finder_runs(n, |b| grid[b][a], 1);
                }
                assert!(patterns * N3 >= N3_FLOOR, "v{v} mask {m}: {patterns}");
            }
        }
    }

    #[test]
    fn wide_finder_shapes_are_counted() {
        // A column holding a scale-4 and a scale-5 finder shape.
        let t = Template::get(Version::new(20).unwrap());
        let w = t.width;
        let mut m = vec![vec![false; w]; w];
        let mut y = 2;
        for (len, dark) in [
            (4, true),
            (4, false),
            (12, true),
            (4, false),
            (4, true),
            (20, false),
            (5, true),
            (5, false),
            (15, true),
            (5, false),
            (5, true),
        ] {
            for _ in 0..len {
                m[y][3] = dark;
                y += 1;
            }
        }
        let p = plane_from_grid(t, &m);
        let mut space = vec![0; Scratch::words(t)];
        let mut sc = Scratch { buf: &mut space };
        assert_eq!(penalty(t, &p, &mut sc, u32::MAX), reference(&m));
    }
}
