//! Micro QR Code, M1 to M4 (ISO/IEC 18004:2015, the Micro QR parts of sections 6 and 7).
//!
//! Small enough to build on a plain module grid: at most 17x17 modules and 4 masks.

use crate::bits::BitBuffer;
use crate::segment::{HeaderCosts, Segment};
use crate::tables::bch_format;
use crate::{EcLevel, EncodeError, Mask, MicroVersion, Mode, Options, QrCode, SymbolVersion};

/// Data bits, error correction codewords and symbol number of a version at a level.
struct Capacity {
    data_bits: usize,
    ecc_codewords: usize,
    symbol_number: u32,
}

fn capacity(v: MicroVersion, ecc: EcLevel) -> Option<Capacity> {
    let (data_bits, ecc_codewords, symbol_number) = match (v.number(), ecc) {
        // M1 has error detection only; it is offered for level L.
        (1, EcLevel::L) => (20, 2, 0),
        (2, EcLevel::L) => (40, 5, 1),
        (2, EcLevel::M) => (32, 6, 2),
        (3, EcLevel::L) => (84, 6, 3),
        (3, EcLevel::M) => (68, 8, 4),
        (4, EcLevel::L) => (128, 8, 5),
        (4, EcLevel::M) => (112, 10, 6),
        (4, EcLevel::Q) => (80, 14, 7),
        _ => return None,
    };
    Some(Capacity {
        data_bits,
        ecc_codewords,
        symbol_number,
    })
}

pub(crate) fn costs(v: MicroVersion) -> HeaderCosts {
    let k = v.number() as usize;
    let pick = |table: [usize; 4], first: usize| (k >= first).then(|| table[k - 1]);
    HeaderCosts {
        mode_bits: k - 1,
        count_bits: [
            pick([3, 4, 5, 6], 1),
            pick([0, 3, 4, 5], 2),
            pick([0, 0, 4, 5], 3),
            pick([0, 0, 3, 4], 3),
        ],
    }
}

fn mode_indicator(mode: Mode) -> u32 {
    match mode {
        Mode::Numeric => 0,
        Mode::Alphanumeric => 1,
        Mode::Byte => 2,
        Mode::Kanji => 3,
        Mode::Eci => 0,
    }
}

fn check_segments(segs: &[Segment]) -> Result<(), EncodeError> {
    if segs.iter().any(|s| s.mode() == Mode::Eci) {
        return Err(EncodeError::UnsupportedInMicro("ECI"));
    }
    Ok(())
}

fn too_long(segs: &[Segment], max: MicroVersion, ecc: EcLevel) -> EncodeError {
    match capacity(max, ecc) {
        Some(cap) => EncodeError::DataTooLong {
            needed_bits: costs(max).total_bits(segs).unwrap_or(usize::MAX),
            capacity_bits: cap.data_bits,
            symbol: format!("{max}-{ecc}"),
        },
        None => EncodeError::EcLevelUnavailable {
            level: ecc,
            symbol: format!("{max}"),
        },
    }
}

pub(crate) fn encode_segments(
    segs: &[Segment],
    opts: &Options,
    min: MicroVersion,
    max: MicroVersion,
) -> Result<QrCode, EncodeError> {
    check_segments(segs)?;
    for v in MicroVersion::all().filter(|&v| v >= min && v <= max) {
        if let (Some(cap), Some(bits)) = (capacity(v, opts.ecc), costs(v).total_bits(segs)) {
            if bits <= cap.data_bits {
                return Ok(build(segs, v, opts.ecc, opts.mask));
            }
        }
    }
    Err(too_long(segs, max, opts.ecc))
}

pub(crate) fn encode_text(
    text: &str,
    opts: &Options,
    min: MicroVersion,
    max: MicroVersion,
) -> Result<QrCode, EncodeError> {
    let mut last = None;
    let mut last_err: Option<EncodeError> = None;
    for v in MicroVersion::all().filter(|&v| v >= min && v <= max) {
        let segs = match crate::encode::text_segments(text, opts, &costs(v), false) {
            Ok(segs) => segs,
            // A smaller version may lack a mode that a larger one has.
            Err(e) if v < max => {
                last_err = Some(e);
                continue;
            }
            Err(e) => return Err(last_err.filter(|_| opts.mode.is_none()).unwrap_or(e)),
        };
        check_segments(&segs)?;
        if let (Some(cap), Some(bits)) = (capacity(v, opts.ecc), costs(v).total_bits(&segs)) {
            if bits <= cap.data_bits {
                return Ok(build(&segs, v, opts.ecc, opts.mask));
            }
        }
        if let Some(mode) = opts.mode {
            if costs(v).count_bits(mode).is_none() && v == max {
                return Err(EncodeError::UnsupportedInMicro(match mode {
                    Mode::Byte => "byte mode below M3",
                    Mode::Kanji => "Kanji mode below M3",
                    Mode::Alphanumeric => "alphanumeric mode in M1",
                    _ => "this mode",
                }));
            }
        }
        last = Some(segs);
    }
    Err(too_long(&last.unwrap_or_default(), max, opts.ecc))
}

fn mask_bit(mask: u8, x: usize, y: usize) -> bool {
    match mask {
        0 => y % 2 == 0,
        1 => (y / 2 + x / 3) % 2 == 0,
        2 => ((y * x) % 2 + (y * x) % 3) % 2 == 0,
        _ => ((y + x) % 2 + (y * x) % 3) % 2 == 0,
    }
}

fn build(segs: &[Segment], v: MicroVersion, ecc: EcLevel, forced: Option<Mask>) -> QrCode {
    let cap = capacity(v, ecc).unwrap_or_else(|| unreachable!("checked by the caller"));
    let c = costs(v);
    // Bit stream: segments, terminator, zero bits to a codeword boundary, pad codewords.
    let mut bb = BitBuffer::with_capacity(cap.data_bits);
    for s in segs {
        bb.push(mode_indicator(s.mode()), c.mode_bits as u32);
        let cc = c.count_bits(s.mode()).unwrap_or(0);
        bb.push(s.char_count() as u32, cc as u32);
        s.write_data(&mut bb);
    }
    let terminator = 2 * v.number() as usize + 1;
    bb.push(0, (cap.data_bits - bb.len()).min(terminator) as u32);
    let to_byte = (8 - bb.len() % 8) % 8;
    bb.push(0, (cap.data_bits - bb.len()).min(to_byte) as u32);
    let mut pad = 0xECu32;
    while bb.len() < cap.data_bits {
        if cap.data_bits - bb.len() >= 8 {
            bb.push(pad, 8);
            pad ^= 0xEC ^ 0x11;
        } else {
            bb.push(0, 4);
        }
    }
    // In M1 and M3 the last data codeword is 4 bits; it sits in the high nibble here.
    let data = bb.into_bytes();
    let mut ecc_words = vec![0u8; cap.ecc_codewords];
    crate::rs::remainder(&data, &mut ecc_words);

    let w = v.width();
    let mut func = vec![false; w * w];
    let mut grid = vec![false; w * w];
    let put = |func: &mut Vec<bool>, grid: &mut Vec<bool>, x: usize, y: usize, d: bool| {
        func[y * w + x] = true;
        grid[y * w + x] = d;
    };
    for dy in 0..8usize {
        for dx in 0..8usize {
            let dist = (dx as i32 - 3).abs().max((dy as i32 - 3).abs());
            put(&mut func, &mut grid, dx, dy, dist != 2 && dist != 4);
        }
    }
    for i in 8..w {
        put(&mut func, &mut grid, i, 0, i % 2 == 0);
        put(&mut func, &mut grid, 0, i, i % 2 == 0);
    }
    let format_xy = |i: usize| if i < 8 { (8, i + 1) } else { (15 - i, 8) };
    for i in 0..15 {
        let (x, y) = format_xy(i);
        put(&mut func, &mut grid, x, y, false);
    }

    // Codeword bits in order; the 4-bit data codeword contributes only its high nibble.
    let half = cap.data_bits % 8 != 0;
    let mut stream: Vec<bool> = Vec::with_capacity((data.len() + ecc_words.len()) * 8);
    for (i, &b) in data.iter().enumerate() {
        let n = if half && i == data.len() - 1 { 4 } else { 8 };
        stream.extend((0..n).map(|k| (b >> (7 - k)) & 1 != 0));
    }
    stream.extend(
        ecc_words
            .iter()
            .flat_map(|&b| (0..8).map(move |k| (b >> (7 - k)) & 1 != 0)),
    );

    let mut bits = stream.into_iter();
    let mut upward = true;
    let mut right = w - 1;
    while right >= 1 {
        for vert in 0..w {
            let y = if upward { w - 1 - vert } else { vert };
            for x in [right, right - 1] {
                if !func[y * w + x] {
                    grid[y * w + x] = bits.next().unwrap_or(false);
                }
            }
        }
        upward = !upward;
        if right < 2 {
            break;
        }
        right -= 2;
    }

    let masked = |m: u8| -> Vec<bool> {
        let mut g = grid.clone();
        for y in 0..w {
            for x in 0..w {
                if !func[y * w + x] && mask_bit(m, x, y) {
                    g[y * w + x] ^= true;
                }
            }
        }
        let fw = bch_format(cap.symbol_number << 2 | m as u32) ^ 0x4445;
        for i in 0..15 {
            let (x, y) = format_xy(i);
            g[y * w + x] = (fw >> i) & 1 != 0;
        }
        g
    };
    // Section 7.8.3.2: the mask with the most dark modules on the two outer edges (the
    // weaker edge weighted 16) wins.
    let score = |g: &[bool]| {
        let right_edge = (1..w).filter(|&y| g[y * w + w - 1]).count();
        let bottom_edge = (1..w).filter(|&x| g[(w - 1) * w + x]).count();
        let (lo, hi) = if right_edge <= bottom_edge {
            (right_edge, bottom_edge)
        } else {
            (bottom_edge, right_edge)
        };
        lo * 16 + hi
    };
    let (mask, g) = match forced {
        Some(m) => (m.number(), masked(m.number())),
        None => {
            let mut best = (0u8, masked(0));
            let mut best_score = score(&best.1);
            for m in 1..4 {
                let g = masked(m);
                let s = score(&g);
                if s > best_score {
                    best_score = s;
                    best = (m, g);
                }
            }
            best
        }
    };
    let mut out = vec![0u64; w];
    for y in 0..w {
        for x in 0..w {
            if g[y * w + x] {
                out[y] |= 1 << x;
            }
        }
    }
    QrCode {
        version: SymbolVersion::Micro(v),
        ecc,
        mask: Mask::new(mask).unwrap_or_else(|| unreachable!()),
        width: w,
        stride: 1,
        bits: out,
    }
}
