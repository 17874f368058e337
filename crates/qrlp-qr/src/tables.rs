//! Capacity tables of ISO/IEC 18004:2015 (Tables 7 and 9) and the geometry derived from them.

use crate::{EcLevel, Version};

/// Error correction codewords per block, indexed `[level][version]` (index 0 unused).
const ECC_PER_BLOCK: [[u8; 41]; 4] = [
    [
        0, 7, 10, 15, 20, 26, 18, 20, 24, 30, 18, 20, 24, 26, 30, 22, 24, 28, 30, 28, 28, 28, 28,
        30, 30, 26, 28, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30,
    ],
    [
        0, 10, 16, 26, 18, 24, 16, 18, 22, 22, 26, 30, 22, 22, 24, 24, 28, 28, 26, 26, 26, 26, 28,
        28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28,
    ],
    [
        0, 13, 22, 18, 26, 18, 24, 18, 22, 20, 24, 28, 26, 24, 20, 30, 24, 28, 28, 26, 30, 28, 30,
        30, 30, 30, 28, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30,
    ],
    [
        0, 17, 28, 22, 16, 22, 28, 26, 26, 24, 28, 24, 28, 22, 24, 24, 30, 28, 28, 26, 28, 30, 24,
        30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30,
    ],
];

/// Number of error correction blocks, indexed `[level][version]` (index 0 unused).
const BLOCKS: [[u8; 41]; 4] = [
    [
        0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 4, 4, 6, 6, 6, 6, 7, 8, 8, 9, 9, 10, 12, 12, 12, 13,
        14, 15, 16, 17, 18, 19, 19, 20, 21, 22, 24, 25,
    ],
    [
        0, 1, 1, 1, 2, 2, 4, 4, 4, 5, 5, 5, 8, 9, 9, 10, 10, 11, 13, 14, 16, 17, 17, 18, 20, 21,
        23, 25, 26, 28, 29, 31, 33, 35, 37, 38, 40, 43, 45, 47, 49,
    ],
    [
        0, 1, 1, 2, 2, 4, 4, 6, 6, 8, 8, 8, 10, 12, 16, 12, 17, 16, 18, 21, 20, 23, 23, 25, 27, 29,
        34, 34, 35, 38, 40, 43, 45, 48, 51, 53, 56, 59, 62, 65, 68,
    ],
    [
        0, 1, 1, 2, 4, 4, 4, 5, 6, 8, 8, 11, 11, 16, 16, 18, 16, 19, 21, 25, 25, 25, 34, 30, 32,
        35, 37, 40, 42, 45, 48, 51, 54, 57, 60, 63, 66, 70, 74, 77, 81,
    ],
];

/// Error correction codewords in each block.
pub(crate) fn ecc_per_block(v: Version, ecc: EcLevel) -> usize {
    ECC_PER_BLOCK[ecc.ordinal()][v.number() as usize] as usize
}

/// Number of blocks the codewords are split into.
pub(crate) fn num_blocks(v: Version, ecc: EcLevel) -> usize {
    BLOCKS[ecc.ordinal()][v.number() as usize] as usize
}

/// Modules available for codewords (and remainder bits) once every function pattern,
/// format and version area is taken.
pub(crate) const fn raw_data_modules(v: Version) -> usize {
    let v = v.number() as usize;
    let mut n = (16 * v + 128) * v + 64;
    if v >= 2 {
        let align = v / 7 + 2;
        n -= (25 * align - 10) * align - 55;
        if v >= 7 {
            n -= 36;
        }
    }
    n
}

/// All codewords (data + error correction) of a version.
pub(crate) const fn total_codewords(v: Version) -> usize {
    raw_data_modules(v) / 8
}

/// Data codewords of a version at a level.
pub(crate) fn data_codewords(v: Version, ecc: EcLevel) -> usize {
    total_codewords(v) - ecc_per_block(v, ecc) * num_blocks(v, ecc)
}

/// Centre coordinates of the alignment patterns along one axis (Annex E), ascending.
pub(crate) fn alignment_positions(v: Version) -> Vec<usize> {
    let n = v.number() as usize;
    if n == 1 {
        return Vec::new();
    }
    let count = n / 7 + 2;
    let step = if n == 32 {
        26
    } else {
        (n * 4 + count * 2 + 1) / (count * 2 - 2) * 2
    };
    let width = v.width();
    let mut pos: Vec<usize> = (0..count - 1).map(|i| width - 7 - i * step).collect();
    pos.push(6);
    pos.reverse();
    pos
}

/// Bits of the character count indicator for a mode, by version range (Table 3).
pub(crate) fn char_count_bits(mode: crate::Mode, v: Version) -> usize {
    let class = match v.number() {
        1..=9 => 0,
        10..=26 => 1,
        _ => 2,
    };
    use crate::Mode::*;
    match mode {
        Numeric => [10, 12, 14][class],
        Alphanumeric => [9, 11, 13][class],
        Byte => [8, 16, 16][class],
        Kanji => [8, 10, 12][class],
        Eci => 0,
    }
}

/// BCH(15,5) code of the 5 format bits, before masking (Annex C).
pub(crate) const fn bch_format(data: u32) -> u32 {
    let mut rem = data;
    let mut i = 0;
    while i < 10 {
        rem = (rem << 1) ^ ((rem >> 9) * 0x537);
        i += 1;
    }
    (data << 10) | (rem & 0x3FF)
}

/// The 18-bit version information of versions 7 and up: BCH(18,6) (Annex D).
pub(crate) const fn version_bits(v: u32) -> u32 {
    let mut rem = v;
    let mut i = 0;
    while i < 12 {
        rem = (rem << 1) ^ ((rem >> 11) * 0x1F25);
        i += 1;
    }
    (v << 12) | rem
}
