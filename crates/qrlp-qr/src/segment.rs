//! Segments (runs of data in one mode) and the segmentation that needs the fewest bits.

use crate::bits::BitBuffer;
use crate::{EncodeError, Mode};

/// The 45 characters of alphanumeric mode, in code order.
const ALPHANUMERIC: &[u8; 45] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

const fn alnum_table() -> [u8; 128] {
    let mut t = [0xFFu8; 128];
    let mut i = 0;
    while i < 45 {
        t[ALPHANUMERIC[i] as usize] = i as u8;
        i += 1;
    }
    t
}
static ALNUM_VALUE: [u8; 128] = alnum_table();

/// The alphanumeric code of `c`, if it has one.
#[inline]
fn alnum_value(c: u32) -> Option<u8> {
    if c < 128 && ALNUM_VALUE[c as usize] != 0xFF {
        Some(ALNUM_VALUE[c as usize])
    } else {
        None
    }
}

#[inline]
fn is_digit(c: u32) -> bool {
    (b'0' as u32..=b'9' as u32).contains(&c)
}

/// The 13-bit Kanji mode value of a character, if Shift JIS has it in the two double-byte
/// ranges that Kanji mode covers (0x8140..=0x9FFC and 0xE040..=0xEBBF).
#[cfg(feature = "kanji")]
pub(crate) fn kanji_value(c: char) -> Option<u16> {
    if (c as u32) < 0x80 {
        return None;
    }
    let mut buf = [0u8; 4];
    let s = c.encode_utf8(&mut buf);
    let (bytes, _, unmappable) = encoding_rs::SHIFT_JIS.encode(s);
    if unmappable || bytes.len() != 2 {
        return None;
    }
    let code = u16::from_be_bytes([bytes[0], bytes[1]]);
    let base = match code {
        0x8140..=0x9FFC => 0x8140,
        0xE040..=0xEBBF => 0xC140,
        _ => return None,
    };
    // The second byte of a double-byte character is 0x40..=0xFC, never 0x7F.
    if !(0x40..=0xFC).contains(&bytes[1]) || bytes[1] == 0x7F {
        return None;
    }
    let v = code - base;
    Some((v >> 8) * 0xC0 + (v & 0xFF))
}

#[cfg(not(feature = "kanji"))]
pub(crate) fn kanji_value(_c: char) -> Option<u16> {
    None
}

/// A run of data encoded in one mode, or an ECI designator.
///
/// ```
/// use qrlp_qr::{Mode, Segment};
/// let seg = Segment::numeric("01234567").unwrap();
/// assert_eq!(seg.mode(), Mode::Numeric);
/// assert_eq!(seg.char_count(), 8);
/// assert!(Segment::numeric("12a").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Segment {
    mode: Mode,
    /// Numeric/alphanumeric: the ASCII characters; byte: the bytes; Kanji: 13-bit values as
    /// big-endian pairs; ECI: empty.
    data: Vec<u8>,
    chars: usize,
    eci: u32,
}

impl Segment {
    /// A numeric segment. Every character must be a digit 0-9.
    pub fn numeric(digits: &str) -> Result<Segment, EncodeError> {
        if let Some((position, ch)) = digits
            .chars()
            .enumerate()
            .find(|&(_, c)| !c.is_ascii_digit())
        {
            return Err(EncodeError::InvalidCharacter {
                ch,
                position,
                mode: Mode::Numeric,
            });
        }
        Ok(Segment {
            mode: Mode::Numeric,
            data: digits.as_bytes().to_vec(),
            chars: digits.len(),
            eci: 0,
        })
    }

    /// An alphanumeric segment: digits, upper-case A-Z, space and `$%*+-./:`.
    pub fn alphanumeric(text: &str) -> Result<Segment, EncodeError> {
        if let Some((position, ch)) = text
            .chars()
            .enumerate()
            .find(|&(_, c)| alnum_value(c as u32).is_none())
        {
            return Err(EncodeError::InvalidCharacter {
                ch,
                position,
                mode: Mode::Alphanumeric,
            });
        }
        Ok(Segment {
            mode: Mode::Alphanumeric,
            data: text.as_bytes().to_vec(),
            chars: text.len(),
            eci: 0,
        })
    }

    /// A byte segment carrying `data` as it is.
    pub fn bytes(data: &[u8]) -> Segment {
        Segment {
            mode: Mode::Byte,
            data: data.to_vec(),
            chars: data.len(),
            eci: 0,
        }
    }

    /// A Kanji segment. Every character must be in the Shift JIS double-byte ranges that Kanji
    /// mode covers. Without the `kanji` feature every character is rejected.
    pub fn kanji(text: &str) -> Result<Segment, EncodeError> {
        let mut data = Vec::with_capacity(text.len());
        for (position, ch) in text.chars().enumerate() {
            match kanji_value(ch) {
                Some(v) => data.extend_from_slice(&v.to_be_bytes()),
                None => {
                    return Err(EncodeError::InvalidCharacter {
                        ch,
                        position,
                        mode: Mode::Kanji,
                    })
                }
            }
        }
        let chars = data.len() / 2;
        Ok(Segment {
            mode: Mode::Kanji,
            data,
            chars,
            eci: 0,
        })
    }

    /// An ECI designator: the byte segments after it are read in character set `assignment`
    /// (26 = UTF-8, 3 = ISO-8859-1, 20 = Shift JIS, ...). Valid numbers are 0..=999999.
    pub fn eci(assignment: u32) -> Result<Segment, EncodeError> {
        if assignment > 999_999 {
            return Err(EncodeError::InvalidEci(assignment));
        }
        Ok(Segment {
            mode: Mode::Eci,
            data: Vec::new(),
            chars: 0,
            eci: assignment,
        })
    }

    /// A segment of `text` in the given mode; the error names the first character the mode
    /// cannot carry and its position. Byte mode takes the UTF-8 bytes.
    pub fn in_mode(text: &str, mode: Mode) -> Result<Segment, EncodeError> {
        match mode {
            Mode::Numeric => Segment::numeric(text),
            Mode::Alphanumeric => Segment::alphanumeric(text),
            Mode::Byte => Ok(Segment::bytes(text.as_bytes())),
            Mode::Kanji => Segment::kanji(text),
            Mode::Eci => Err(EncodeError::InvalidCharacter {
                ch: text.chars().next().unwrap_or(' '),
                position: 0,
                mode: Mode::Eci,
            }),
        }
    }

    /// The segment's mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Characters in the segment (bytes for byte mode, double-byte characters for Kanji).
    pub fn char_count(&self) -> usize {
        self.chars
    }

    /// The ECI assignment number of an ECI segment (0 for other modes).
    pub fn eci_assignment(&self) -> u32 {
        self.eci
    }

    /// The bytes this segment stands for in a decoded message: the characters for numeric,
    /// alphanumeric and byte mode, Shift JIS pairs for Kanji, nothing for ECI. Structured
    /// append's parity is computed over these.
    pub fn message_bytes(&self) -> Vec<u8> {
        match self.mode {
            Mode::Kanji => self
                .data
                .chunks_exact(2)
                .flat_map(|p| {
                    let v = u16::from_be_bytes([p[0], p[1]]);
                    let (hi, lo) = (v / 0xC0, v % 0xC0);
                    let code = (hi << 8) + lo;
                    let sjis = if code + 0x8140 <= 0x9FFC {
                        code + 0x8140
                    } else {
                        code + 0xC140
                    };
                    sjis.to_be_bytes()
                })
                .collect(),
            Mode::Eci => Vec::new(),
            _ => self.data.clone(),
        }
    }

    /// Bits of the payload after mode indicator and count.
    pub(crate) fn data_bits(&self) -> usize {
        let n = self.chars;
        match self.mode {
            Mode::Numeric => 10 * (n / 3) + [0, 4, 7][n % 3],
            Mode::Alphanumeric => 11 * (n / 2) + 6 * (n % 2),
            Mode::Byte => 8 * n,
            Mode::Kanji => 13 * n,
            Mode::Eci => match self.eci {
                0..=127 => 8,
                128..=16383 => 16,
                _ => 24,
            },
        }
    }

    /// Writes the payload bits (no mode indicator, no count).
    pub(crate) fn write_data(&self, out: &mut BitBuffer) {
        match self.mode {
            Mode::Numeric => {
                for group in self.data.chunks(3) {
                    let v = group.iter().fold(0u32, |a, &d| a * 10 + (d - b'0') as u32);
                    out.push(v, [0, 4, 7, 10][group.len()]);
                }
            }
            Mode::Alphanumeric => {
                for pair in self.data.chunks(2) {
                    let v = pair
                        .iter()
                        .fold(0u32, |a, &c| a * 45 + ALNUM_VALUE[c as usize] as u32);
                    out.push(v, [0, 6, 11][pair.len()]);
                }
            }
            Mode::Byte => out.push_bytes(&self.data),
            Mode::Kanji => {
                for p in self.data.chunks_exact(2) {
                    out.push(u16::from_be_bytes([p[0], p[1]]) as u32, 13);
                }
            }
            Mode::Eci => match self.eci {
                0..=127 => out.push(self.eci, 8),
                128..=16383 => out.push(0b10 << 14 | self.eci, 16),
                _ => out.push(0b110 << 21 | self.eci, 24),
            },
        }
    }
}

/// What a symbol spends on a segment header, and which modes it offers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HeaderCosts {
    /// Mode indicator bits (4 for QR; 0-3 for Micro QR).
    pub mode_bits: usize,
    /// Count indicator bits for numeric, alphanumeric, byte and Kanji; `None` where the
    /// symbol lacks the mode.
    pub count_bits: [Option<usize>; 4],
}

impl HeaderCosts {
    pub(crate) fn count_bits(&self, mode: Mode) -> Option<usize> {
        match mode {
            Mode::Numeric => self.count_bits[0],
            Mode::Alphanumeric => self.count_bits[1],
            Mode::Byte => self.count_bits[2],
            Mode::Kanji => self.count_bits[3],
            Mode::Eci => Some(0),
        }
    }

    /// Total bits of `segs` under these costs, or `None` if a mode is missing or a count
    /// overflows its indicator.
    pub(crate) fn total_bits(&self, segs: &[Segment]) -> Option<usize> {
        let mut total = 0;
        for s in segs {
            let cc = self.count_bits(s.mode)?;
            if cc < usize::BITS as usize && s.chars >= 1 << cc && s.mode != Mode::Eci {
                return None;
            }
            total += self.mode_bits + cc + s.data_bits();
        }
        Some(total)
    }
}

// DP states: byte, kanji, numeric with 1/2/0 digits pending in the group, alphanumeric with
// 1/0 characters pending in the pair.
const S_BYTE: usize = 0;
const S_KANJI: usize = 1;
const S_NUM1: usize = 2;
const S_NUM2: usize = 3;
const S_NUM0: usize = 4;
const S_ALNUM1: usize = 5;
const S_ALNUM0: usize = 6;
const STATES: usize = 7;
const START: u8 = u8::MAX;

fn state_mode(s: usize) -> Mode {
    match s {
        S_BYTE => Mode::Byte,
        S_KANJI => Mode::Kanji,
        S_NUM1 | S_NUM2 | S_NUM0 => Mode::Numeric,
        _ => Mode::Alphanumeric,
    }
}

/// Splits `text` into the segments that need the fewest bits in total under `costs`,
/// counting every bit exactly: numeric groups of three, alphanumeric pairs, and a header for
/// each mode switch. Byte mode carries UTF-8. `None` when a character fits none of the modes
/// the symbol offers (only possible in Micro QR).
pub(crate) fn optimal_segments(text: &str, costs: &HeaderCosts) -> Option<Vec<Segment>> {
    if text.is_empty() {
        return Some(Vec::new());
    }
    const INF: usize = usize::MAX / 4;
    let header = |m: Mode| costs.count_bits(m).map(|cc| costs.mode_bits + cc);
    let heads = [
        header(Mode::Byte),
        header(Mode::Kanji),
        header(Mode::Numeric),
        header(Mode::Alphanumeric),
    ];
    let chars: Vec<char> = text.chars().collect();
    let mut back: Vec<[u8; STATES]> = Vec::with_capacity(chars.len());
    let mut prev = [INF; STATES];
    let mut first = true;
    for &c in &chars {
        let cu = c as u32;
        let (best_prev, best_state) = if first {
            (0, START)
        } else {
            let mut b = (INF, 0u8);
            for (s, &v) in prev.iter().enumerate() {
                if v < b.0 {
                    b = (v, s as u8);
                }
            }
            b
        };
        let mut cur = [INF; STATES];
        let mut bp = [START; STATES];
        // A new segment starting at this character, after the cheapest state so far.
        let start = |state: usize,
                     head: Option<usize>,
                     bits: usize,
                     cur: &mut [usize; STATES],
                     bp: &mut [u8; STATES]| {
            if let Some(h) = head {
                let v = best_prev + h + bits;
                if v < cur[state] {
                    cur[state] = v;
                    bp[state] = best_state;
                }
            }
        };
        let extend = |from: usize,
                      to: usize,
                      bits: usize,
                      cur: &mut [usize; STATES],
                      bp: &mut [u8; STATES]| {
            if !first && prev[from] < INF {
                let v = prev[from] + bits;
                if v < cur[to] {
                    cur[to] = v;
                    bp[to] = from as u8;
                }
            }
        };
        let byte_bits = 8 * c.len_utf8();
        extend(S_BYTE, S_BYTE, byte_bits, &mut cur, &mut bp);
        start(S_BYTE, heads[0], byte_bits, &mut cur, &mut bp);
        if heads[1].is_some() && kanji_value(c).is_some() {
            extend(S_KANJI, S_KANJI, 13, &mut cur, &mut bp);
            start(S_KANJI, heads[1], 13, &mut cur, &mut bp);
        }
        if is_digit(cu) && heads[2].is_some() {
            extend(S_NUM0, S_NUM1, 4, &mut cur, &mut bp);
            extend(S_NUM1, S_NUM2, 3, &mut cur, &mut bp);
            extend(S_NUM2, S_NUM0, 3, &mut cur, &mut bp);
            start(S_NUM1, heads[2], 4, &mut cur, &mut bp);
        }
        if alnum_value(cu).is_some() && heads[3].is_some() {
            extend(S_ALNUM0, S_ALNUM1, 6, &mut cur, &mut bp);
            extend(S_ALNUM1, S_ALNUM0, 5, &mut cur, &mut bp);
            start(S_ALNUM1, heads[3], 6, &mut cur, &mut bp);
        }
        back.push(bp);
        prev = cur;
        first = false;
    }
    // Walk back from the cheapest final state, recording each character's mode.
    let mut state = (0..STATES).min_by_key(|&s| prev[s]).unwrap_or(S_BYTE);
    if prev[state] >= INF {
        return None;
    }
    let mut modes = vec![Mode::Byte; chars.len()];
    let mut breaks = vec![false; chars.len()];
    for i in (0..chars.len()).rev() {
        modes[i] = state_mode(state);
        let p = back[i][state];
        if p == START {
            breaks[i] = true;
            break;
        }
        let p = p as usize;
        if state_mode(p) != modes[i] {
            breaks[i] = true;
        }
        state = p;
    }
    let mut segs = Vec::new();
    let mut begin = 0;
    let mut byte_start = 0;
    for i in 1..=chars.len() {
        if i == chars.len() || breaks[i] {
            let byte_end = byte_start + chars[begin..i].iter().map(|c| c.len_utf8()).sum::<usize>();
            let piece = &text[byte_start..byte_end];
            let seg = match modes[begin] {
                Mode::Byte => Segment::bytes(piece.as_bytes()),
                m => {
                    Segment::in_mode(piece, m).unwrap_or_else(|_| Segment::bytes(piece.as_bytes()))
                }
            };
            segs.push(seg);
            begin = i;
            byte_start = byte_end;
        }
    }
    Some(split_oversized(segs, costs))
}

/// Splits segments whose character count does not fit their count indicator.
pub(crate) fn split_oversized(segs: Vec<Segment>, costs: &HeaderCosts) -> Vec<Segment> {
    let mut out = Vec::with_capacity(segs.len());
    for s in segs {
        let max = match costs.count_bits(s.mode) {
            Some(cc) if s.mode != Mode::Eci && cc < 24 => (1usize << cc) - 1,
            _ => usize::MAX,
        };
        if s.chars <= max || max == 0 {
            out.push(s);
            continue;
        }
        let unit = if s.mode == Mode::Kanji { 2 } else { 1 };
        for chunk in s.data.chunks(max * unit) {
            out.push(Segment {
                mode: s.mode,
                data: chunk.to_vec(),
                chars: chunk.len() / unit,
                eci: 0,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qr_costs(class: usize) -> HeaderCosts {
        HeaderCosts {
            mode_bits: 4,
            count_bits: [
                Some([10, 12, 14][class]),
                Some([9, 11, 13][class]),
                Some([8, 16, 16][class]),
                Some([8, 10, 12][class]),
            ],
        }
    }

    /// Every way to cut `text` into maximal single-mode runs is tried; the DP must match the best.
    fn brute_force_best(text: &str, costs: &HeaderCosts) -> usize {
        let chars: Vec<char> = text.chars().collect();
        let n = chars.len();
        let mut best = vec![usize::MAX; n + 1];
        best[0] = 0;
        for end in 1..=n {
            for begin in 0..end {
                if best[begin] == usize::MAX {
                    continue;
                }
                let piece: String = chars[begin..end].iter().collect();
                for mode in [Mode::Numeric, Mode::Alphanumeric, Mode::Byte, Mode::Kanji] {
                    if let Ok(seg) = Segment::in_mode(&piece, mode) {
                        if let Some(bits) = costs.total_bits(&[seg]) {
                            best[end] = best[end].min(best[begin] + bits);
                        }
                    }
                }
            }
        }
        best[n]
    }

    #[test]
    fn dp_matches_brute_force() {
        let alphabet: Vec<char> = "0123456789ABCZ:/ ab?é漢字".chars().collect();
        let mut seed = 7u64;
        for case in 0..600 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = 1 + (seed >> 59) as usize;
            let text: String = (0..len)
                .map(|k| {
                    let r = seed.rotate_left(k as u32 * 7) ^ (k as u64 * 0x9E37);
                    alphabet[(r % alphabet.len() as u64) as usize]
                })
                .collect();
            let costs = qr_costs(case % 3);
            let segs = optimal_segments(&text, &costs).unwrap();
            let got = costs.total_bits(&segs).unwrap();
            assert_eq!(got, brute_force_best(&text, &costs), "text {text:?}");
            let joined: Vec<u8> = segs.iter().flat_map(|s| s.message_bytes()).collect();
            if !text.chars().any(|c| kanji_value(c).is_some()) {
                assert_eq!(joined, text.as_bytes());
            }
        }
    }

    #[test]
    fn digits_use_numeric_mode() {
        let segs = optimal_segments("01234567", &qr_costs(0)).unwrap();
        assert_eq!(segs.len(), 1);
        assert_eq!(segs[0].mode(), Mode::Numeric);
    }

    #[cfg(feature = "kanji")]
    #[test]
    fn kanji_values_follow_the_standard_examples() {
        // ISO/IEC 18004 8.4.5: 点 is 0x935F -> 0xD9F; 茗 is 0xE4AA -> 0x1AAA.
        assert_eq!(kanji_value('点'), Some(0xD9F));
        assert_eq!(kanji_value('茗'), Some(0x1AAA));
        assert_eq!(kanji_value('a'), None);
    }
}
