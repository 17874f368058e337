//! Segments (runs of data in one mode) and the segmentation that needs the fewest bits.
//!
//! The segmentation follows the crate's rule on which modes may share a symbol (see the
//! crate documentation, "Text that every decoder reads").

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

/// Whether byte mode may carry `c` beside Kanji segments: ASCII that Shift JIS reads alike,
/// so not `\` (0x5C, `¥` in Shift JIS) or `~` (0x7E, `‾`).
#[inline]
fn kanji_carrier_byte(c: char) -> bool {
    c.is_ascii() && c != '\\' && c != '~'
}

/// ECI 20: Shift JIS, the one character set in which Kanji mode's bytes read as meant.
const ECI_SHIFT_JIS: u32 = 20;

/// Refuses a Kanji segment after an ECI designator other than Shift JIS: decoders read the
/// Kanji segment's Shift JIS bytes in the designated character set, so phones would show
/// garbage.
pub(crate) fn check_kanji_eci(segs: &[Segment]) -> Result<(), EncodeError> {
    let mut eci = None;
    for s in segs {
        match s.mode {
            Mode::Eci => eci = Some(s.eci),
            Mode::Kanji => match eci {
                Some(n) if n != ECI_SHIFT_JIS => return Err(EncodeError::KanjiAfterEci(n)),
                _ => {}
            },
            _ => {}
        }
    }
    Ok(())
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

    /// The stored data: for byte mode, the bytes (what [`Segment::message_bytes`] copies).
    pub(crate) fn data(&self) -> &[u8] {
        &self.data
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

/// How a symbol carries non-ASCII characters (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Carrier {
    /// Kanji mode for every non-ASCII character; byte mode for ASCII only.
    Kanji,
    /// Byte mode (UTF-8) for non-ASCII characters; no Kanji mode.
    Utf8,
}

/// Splits `text` into the segments that need the fewest bits under the rule of the module
/// documentation: the cheaper of the [`Carrier::Kanji`] segmentation (when `kanji_allowed`
/// and every non-ASCII character has a Kanji value) and the [`Carrier::Utf8`] one, which is
/// charged `utf8_eci_bits` (the ECI designator it needs) when it carries non-ASCII text. On a
/// tie the Kanji one wins: it needs no designator. `None` when neither can carry some
/// character (only possible in Micro QR, which lacks byte mode below M3).
pub(crate) fn optimal_segments(
    text: &str,
    costs: &HeaderCosts,
    kanji_allowed: bool,
    utf8_eci_bits: usize,
) -> Option<Vec<Segment>> {
    // ASCII text has no Kanji values: both carriers are the same segmentation.
    if text.is_ascii() {
        if !text.is_empty() && one_byte_segment_is_cheapest(text.as_bytes(), costs) {
            return Some(split_oversized(
                vec![Segment::bytes(text.as_bytes())],
                costs,
            ));
        }
        return segments_with(text, costs, Carrier::Utf8);
    }
    let utf8 = segments_with(text, costs, Carrier::Utf8);
    let kanji = if kanji_allowed {
        segments_with(text, costs, Carrier::Kanji)
    } else {
        None
    };
    match (kanji, utf8) {
        (Some(k), Some(u)) => {
            let k_bits = costs.total_bits(&k).unwrap_or(usize::MAX);
            let u_bits = costs
                .total_bits(&u)
                .map_or(usize::MAX, |b| b.saturating_add(utf8_eci_bits));
            Some(if k_bits <= u_bits { k } else { u })
        }
        (k, u) => k.or(u),
    }
}

/// Whether a single byte segment is the one cheapest segmentation of the ASCII `text`, so
/// that [`segments_with`] would return it: a cheap test that settles most URLs and prose
/// without the full search.
///
/// Characters outside the alphanumeric set can only go in byte mode, so any other
/// segmentation puts some block `B` of a maximal run `R` of alphanumeric-set characters in
/// numeric or alphanumeric segments. Such a block costs at least one header (alphanumeric
/// if it holds a non-digit), 5.5 bits per non-digit and, per group of `g` digits, the lesser
/// of 5.5·g and a numeric header plus 10·g/3; in byte mode it costs 8 bits a character,
/// minus a byte header when `B` lies inside the text (the byte segments on either side then
/// merge), plus one when `B` is the whole text. A character added to a block saves at least
/// as much as before (8 > 5.5 > 10/3), so of the blocks holding a non-digit `R` itself
/// saves the most, and of the all-digit blocks a whole group of digits. When none of these
/// saves anything, every other segmentation is strictly dearer. Arithmetic is in sixths of a
/// bit, so every bound is exact.
fn one_byte_segment_is_cheapest(text: &[u8], costs: &HeaderCosts) -> bool {
    const INF: usize = usize::MAX / 8;
    let header = |m: Mode| {
        costs
            .count_bits(m)
            .map_or(INF, |cc| 6 * (costs.mode_bits + cc))
    };
    let byte = header(Mode::Byte);
    if byte >= INF {
        return false;
    }
    let (numeric, alnum) = (header(Mode::Numeric), header(Mode::Alphanumeric));
    let end = text.len();
    // Sixths of a bit that `len` characters from `start` cost in byte mode, beside the rest
    // of the text in byte mode.
    let in_bytes = |start: usize, len: usize| match (start == 0, start + len == end) {
        (true, true) => 48 * len + byte,
        (false, false) => (48 * len).saturating_sub(byte),
        _ => 48 * len,
    };
    // The least a group of `g` digits costs beside non-digits: in alphanumeric mode or in a
    // numeric segment of its own.
    let digits = |g: usize| (33 * g).min(numeric.saturating_add(20 * g));
    // Whether the group of `g` digits ending before `at` saves bits as a block of its own.
    let group_saves = |at: usize, g: usize| {
        g > 0 && in_bytes(at - g, g) >= numeric.min(alnum).saturating_add(20 * g)
    };
    let mut i = 0;
    while i < end {
        if alnum_value(u32::from(text[i])).is_none() {
            i += 1;
            continue;
        }
        let start = i;
        let (mut others, mut groups, mut group) = (0, 0, 0);
        while i < end && alnum_value(u32::from(text[i])).is_some() {
            if text[i].is_ascii_digit() {
                group += 1;
            } else {
                if group_saves(i, group) {
                    return false;
                }
                others += 1;
                groups += digits(group);
                group = 0;
            }
            i += 1;
        }
        if group_saves(i, group) {
            return false;
        }
        let least = alnum
            .saturating_add(33 * others)
            .saturating_add(groups + digits(group));
        if others > 0 && in_bytes(start, i - start) >= least {
            return false;
        }
    }
    true
}

/// The segmentation of `text` with the fewest bits under `costs` that carries non-ASCII
/// characters as `carrier` says, counting every bit exactly: numeric groups of three,
/// alphanumeric pairs, and a header for each mode switch. `None` when a character fits none
/// of the modes allowed.
pub(crate) fn segments_with(
    text: &str,
    costs: &HeaderCosts,
    carrier: Carrier,
) -> Option<Vec<Segment>> {
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
        if carrier == Carrier::Utf8 || kanji_carrier_byte(c) {
            let byte_bits = 8 * c.len_utf8();
            extend(S_BYTE, S_BYTE, byte_bits, &mut cur, &mut bp);
            start(S_BYTE, heads[0], byte_bits, &mut cur, &mut bp);
        }
        if carrier == Carrier::Kanji && heads[1].is_some() && kanji_value(c).is_some() {
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
        if cur.iter().all(|&v| v >= INF) {
            // No allowed mode carries this character.
            return None;
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

    /// Every way to cut `text` into single-mode runs that `carrier` allows is tried; the
    /// cheapest total, or `None` when some character fits no allowed mode.
    fn brute_force(text: &str, costs: &HeaderCosts, carrier: Carrier) -> Option<usize> {
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
                    let allowed = match (mode, carrier) {
                        (Mode::Byte, Carrier::Kanji) => piece.chars().all(kanji_carrier_byte),
                        (Mode::Kanji, Carrier::Utf8) => false,
                        _ => true,
                    };
                    if !allowed {
                        continue;
                    }
                    if let Ok(seg) = Segment::in_mode(&piece, mode) {
                        if let Some(bits) = costs.total_bits(&[seg]) {
                            best[end] = best[end].min(best[begin] + bits);
                        }
                    }
                }
            }
        }
        (best[n] != usize::MAX).then_some(best[n])
    }

    /// The rule by brute force: the cheaper of the two carriers, the UTF-8 one paying for
    /// its designator when the text is not ASCII.
    fn brute_force_best(
        text: &str,
        costs: &HeaderCosts,
        kanji_allowed: bool,
        utf8_eci_bits: usize,
    ) -> usize {
        let eci = if text.is_ascii() { 0 } else { utf8_eci_bits };
        let utf8 = brute_force(text, costs, Carrier::Utf8).map(|b| b + eci);
        let kanji = kanji_allowed
            .then(|| brute_force(text, costs, Carrier::Kanji))
            .flatten();
        utf8.into_iter().chain(kanji).min().unwrap()
    }

    #[test]
    fn dp_matches_brute_force_within_the_rule() {
        // Every character, and one pool without `é`, `\\` and `~` so that the Kanji
        // carrier is possible and the two compete.
        let everything: Vec<char> = "0123456789ABCZ:/ ab?\\~é漢字γのЯ£".chars().collect();
        let kanji_able: Vec<char> = "0123456789ABCZ:/ ab?漢字γのЯ£".chars().collect();
        let mut seed = 7u64;
        let mut carriers = [0usize; 2];
        for case in 0..1500 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = 1 + (seed >> 59) as usize;
            let pool = if case % 2 == 0 {
                &everything
            } else {
                &kanji_able
            };
            let text: String = (0..len)
                .map(|k| {
                    let r = seed.rotate_left(k as u32 * 7) ^ (k as u64 * 0x9E37);
                    pool[(r % pool.len() as u64) as usize]
                })
                .collect();
            let costs = qr_costs(case % 3);
            let (kanji_allowed, eci_bits) = [(true, 12), (true, 0), (false, 12)][case % 3];
            let segs = optimal_segments(&text, &costs, kanji_allowed, eci_bits).unwrap();
            let has_kanji = segs.iter().any(|s| s.mode() == Mode::Kanji);
            let non_ascii_bytes = segs
                .iter()
                .any(|s| s.mode() == Mode::Byte && !s.message_bytes().is_ascii());
            assert!(
                !(has_kanji && non_ascii_bytes),
                "mixed carriers for {text:?}"
            );
            let eci = if non_ascii_bytes { eci_bits } else { 0 };
            let got = costs.total_bits(&segs).unwrap() + eci;
            assert_eq!(
                got,
                brute_force_best(&text, &costs, kanji_allowed, eci_bits),
                "text {text:?}"
            );
            carriers[usize::from(has_kanji)] += 1;
            let joined: Vec<u8> = segs.iter().flat_map(|s| s.message_bytes()).collect();
            if has_kanji {
                #[cfg(feature = "kanji")]
                assert_eq!(encoding_rs::SHIFT_JIS.decode(&joined).0, text);
            } else {
                assert_eq!(joined, text.as_bytes());
            }
        }
        #[cfg(feature = "kanji")]
        assert!(carriers[1] >= 50 && carriers[0] >= 500, "{carriers:?}");
    }

    #[cfg(feature = "kanji")]
    #[test]
    fn one_byte_segment_shortcut_agrees_with_the_search() {
        // Text biased towards runs of digits and alphanumeric characters between bytes, so
        // that both answers of the shortcut occur often.
        let mut rng = crate::xorshift(0x9E37_79B9_7F4A_7C15);
        let mut next = |n: u64| rng() % n;
        let alphabets: [&[u8]; 4] = [b"0123456789", b"ABCXYZ:/.$%*+- ", b"abcxyz?=&_~", b"19/Ab"];
        let micro = HeaderCosts {
            mode_bits: 3,
            count_bits: [Some(6), Some(5), Some(5), Some(4)],
        };
        let (mut shortcut, mut total) = (0, 0);
        for case in 0..6000 {
            let len = 1 + next(if case % 3 == 0 { 12 } else { 70 }) as usize;
            let text: String = (0..len)
                .map(|_| {
                    let a = alphabets[next(4) as usize];
                    char::from(a[next(a.len() as u64) as usize])
                })
                .collect();
            for costs in [qr_costs(0), qr_costs(1), qr_costs(2), micro] {
                total += 1;
                let full = segments_with(&text, &costs, Carrier::Utf8);
                if one_byte_segment_is_cheapest(text.as_bytes(), &costs) {
                    shortcut += 1;
                    let one = split_oversized(vec![Segment::bytes(text.as_bytes())], &costs);
                    assert_eq!(Some(one), full, "{text:?} {costs:?}");
                }
                assert_eq!(
                    optimal_segments(&text, &costs, true, 0),
                    full,
                    "{text:?} {costs:?}"
                );
            }
        }
        // Both answers occur often enough for the comparison to mean something.
        assert!(
            shortcut > total / 5 && shortcut < total * 4 / 5,
            "{shortcut} of {total}"
        );
        // The URL of the benchmarks takes the shortcut at every version class.
        let url = b"https://example.com/product/12345?ref=qr";
        for class in 0..3 {
            assert!(one_byte_segment_is_cheapest(url, &qr_costs(class)));
        }
    }

    #[test]
    fn kanji_and_utf8_are_never_mixed() {
        let costs = qr_costs(0);
        // The reported failure: `γδ日` went to Kanji mode beside UTF-8 bytes.
        let mixed = "語£oñIk¥YfåtiЩcLя국かBNγδ日";
        let segs = optimal_segments(mixed, &costs, true, 12).unwrap();
        assert!(segs.iter().all(|s| s.mode() != Mode::Kanji), "{segs:?}");
        // Pure Japanese keeps Kanji mode (13 bits a character, not 24).
        let segs = optimal_segments("日本語のテキストです", &costs, true, 12).unwrap();
        assert_eq!(segs.len(), 1);
        assert_eq!(segs[0].mode(), Mode::Kanji);
        // `\` and `~` read as `¥` and `‾` beside Kanji: that text goes as UTF-8.
        let segs = optimal_segments("日本語\\テキスト", &costs, true, 12).unwrap();
        assert!(segs.iter().all(|s| s.mode() != Mode::Kanji), "{segs:?}");
    }

    #[cfg(feature = "kanji")]
    #[test]
    fn kanji_after_a_foreign_eci_is_refused() {
        let kanji = Segment::kanji("点").unwrap();
        for (eci, ok) in [(26, false), (3, false), (20, true)] {
            let segs = [Segment::eci(eci).unwrap(), kanji.clone()];
            assert_eq!(check_kanji_eci(&segs).is_ok(), ok, "ECI {eci}");
        }
        let err = check_kanji_eci(&[Segment::eci(26).unwrap(), kanji]).unwrap_err();
        assert!(err.to_string().contains("ECI 26 (UTF-8)"), "{err}");
        assert!(check_kanji_eci(&[Segment::bytes(b"x")]).is_ok());
    }

    #[test]
    fn digits_use_numeric_mode() {
        let segs = optimal_segments("01234567", &qr_costs(0), true, 12).unwrap();
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
