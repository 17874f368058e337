//! From segments to codewords: version choice, bit stream, padding, Reed-Solomon blocks.

use crate::bits::BitBuffer;
use crate::segment::{check_kanji_eci, optimal_segments, HeaderCosts, Segment};
use crate::tables::{char_count_bits, data_codewords, ecc_per_block, num_blocks, total_codewords};
use crate::{matrix, micro, EcLevel, EncodeError, Mask, MicroVersion, Mode, QrCode, Version};

/// Which symbols the encoder may choose from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymbolKind {
    /// QR Code, any version in `min..=max`.
    Qr {
        /// Smallest version allowed.
        min: Version,
        /// Largest version allowed.
        max: Version,
    },
    /// Micro QR Code, any version in `min..=max`.
    Micro {
        /// Smallest version allowed.
        min: MicroVersion,
        /// Largest version allowed.
        max: MicroVersion,
    },
}

/// When to put an ECI designator in front of text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EciPolicy {
    /// The default: text whose byte-mode part is not plain ASCII gets ECI 26 (UTF-8) first,
    /// so decoders read the bytes as UTF-8 rather than guessing; ASCII text, and text whose
    /// non-ASCII characters all go in Kanji mode, gets none (see the crate documentation).
    #[default]
    Auto,
    /// Never add an ECI designator: byte mode carries raw UTF-8 that decoders must guess.
    Never,
    /// Always start with this ECI assignment number. The optimal mix then never uses Kanji
    /// mode (decoders would read its Shift JIS bytes in that character set), and forcing
    /// Kanji mode is an [`EncodeError::KanjiAfterEci`] unless the number is 20 (Shift JIS).
    Always(u32),
}

/// The second-level options: ECC, version range, mask, mode and ECI.
///
/// ```
/// use qrlp_qr::{EcLevel, Mask, Options, QrCode, SymbolKind, Version};
/// let opts = Options {
///     ecc: EcLevel::H,
///     symbol: SymbolKind::Qr { min: Version::new(5).unwrap(), max: Version::MAX },
///     mask: Mask::new(3),
///     ..Options::default()
/// };
/// let code = QrCode::encode_text_with("HELLO", &opts)?;
/// assert_eq!(code.width(), 37); // version 5
/// assert_eq!(code.mask().number(), 3);
/// # Ok::<(), qrlp_qr::EncodeError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Error correction level (default M).
    pub ecc: EcLevel,
    /// Symbols to choose from; the smallest that fits wins (default QR versions 1-40).
    pub symbol: SymbolKind,
    /// Raise the ECC level as far as the chosen version still holds the data.
    pub boost_ecc: bool,
    /// Use this mask instead of the one with the lowest penalty.
    pub mask: Option<Mask>,
    /// Encode text in this one mode instead of the optimal mix (text APIs only).
    pub mode: Option<Mode>,
    /// ECI designator policy (text APIs only).
    pub eci: EciPolicy,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ecc: EcLevel::M,
            symbol: SymbolKind::Qr {
                min: Version::MIN,
                max: Version::MAX,
            },
            boost_ecc: false,
            mask: None,
            mode: None,
            eci: EciPolicy::Auto,
        }
    }
}

impl Options {
    /// Options for Micro QR, M1 to M4, at the given level.
    pub fn micro(ecc: EcLevel) -> Options {
        Options {
            ecc,
            symbol: SymbolKind::Micro {
                min: MicroVersion::new(1).unwrap_or_else(|| unreachable!()),
                max: MicroVersion::new(4).unwrap_or_else(|| unreachable!()),
            },
            ..Options::default()
        }
    }
}

pub(crate) fn qr_costs(v: Version) -> HeaderCosts {
    HeaderCosts {
        mode_bits: 4,
        count_bits: [
            Some(char_count_bits(Mode::Numeric, v)),
            Some(char_count_bits(Mode::Alphanumeric, v)),
            Some(char_count_bits(Mode::Byte, v)),
            Some(char_count_bits(Mode::Kanji, v)),
        ],
    }
}

/// The first version of each count-indicator class: 1-9, 10-26, 27-40.
const CLASS_STARTS: [u8; 3] = [1, 10, 27];

fn class_of(v: Version) -> usize {
    match v.number() {
        1..=9 => 0,
        10..=26 => 1,
        _ => 2,
    }
}

pub(crate) fn mode_indicator(mode: Mode) -> u32 {
    match mode {
        Mode::Numeric => 0b0001,
        Mode::Alphanumeric => 0b0010,
        Mode::Byte => 0b0100,
        Mode::Kanji => 0b1000,
        Mode::Eci => 0b0111,
    }
}

fn validate(opts: &Options) -> Result<(), EncodeError> {
    match opts.symbol {
        SymbolKind::Qr { min, max } if min > max => Err(EncodeError::InvalidVersionRange {
            min: min.number(),
            max: max.number(),
        }),
        SymbolKind::Micro { min, max } if min > max => Err(EncodeError::InvalidVersionRange {
            min: min.number(),
            max: max.number(),
        }),
        SymbolKind::Micro { .. } if opts.mask.is_some_and(|m| m.number() > 3) => Err(
            EncodeError::InvalidMask(opts.mask.map_or(0, |m| m.number())),
        ),
        _ => Ok(()),
    }
}

/// The segments for `text` under `opts` for a given set of header costs: one forced mode,
/// or the optimal mix, with the ECI designator the policy asks for.
pub(crate) fn text_segments(
    text: &str,
    opts: &Options,
    costs: &HeaderCosts,
    allow_eci: bool,
) -> Result<Vec<Segment>, EncodeError> {
    let mut segs = match opts.mode {
        Some(mode) => {
            if text.is_empty() {
                Vec::new()
            } else {
                vec![Segment::in_mode(text, mode)?]
            }
        }
        None => {
            // With an explicit designator Kanji mode is never chosen: decoders would read
            // its Shift JIS bytes in that character set. Under `Auto` the UTF-8 carrier
            // pays for the ECI 26 designator it will get.
            let kanji_allowed = !matches!(opts.eci, EciPolicy::Always(_));
            let utf8_eci_bits = match opts.eci {
                EciPolicy::Auto if allow_eci => costs.total_bits(&[Segment::eci(26)?]).unwrap_or(0),
                _ => 0,
            };
            optimal_segments(text, costs, kanji_allowed, utf8_eci_bits)
        }
        .ok_or_else(|| {
            // Only Micro QR lacks byte mode; name the first character it cannot carry.
            let (position, ch) = text
                .chars()
                .enumerate()
                .find(|&(_, c)| {
                    ![Mode::Numeric, Mode::Alphanumeric, Mode::Byte, Mode::Kanji]
                        .iter()
                        .any(|&m| {
                            costs.count_bits(m).is_some()
                                && Segment::in_mode(&c.to_string(), m).is_ok()
                        })
                })
                .unwrap_or((0, ' '));
            EncodeError::InvalidCharacter {
                ch,
                position,
                mode: Mode::Numeric,
            }
        })?,
    };
    let eci = match opts.eci {
        EciPolicy::Never => None,
        EciPolicy::Always(n) => Some(n),
        EciPolicy::Auto => segs
            .iter()
            .any(|s| s.mode() == Mode::Byte && !s.data().is_ascii())
            .then_some(26),
    };
    if let Some(n) = eci {
        if !allow_eci {
            if matches!(opts.eci, EciPolicy::Always(_)) {
                return Err(EncodeError::UnsupportedInMicro("ECI"));
            }
        } else {
            segs.insert(0, Segment::eci(n)?);
        }
    }
    check_kanji_eci(&segs)?;
    Ok(segs)
}

impl QrCode {
    /// Encodes text at the given level with the defaults: optimal segmentation, the smallest
    /// QR version that fits, automatic mask, and ECI 26 (UTF-8) when the text is not ASCII.
    ///
    /// ```
    /// use qrlp_qr::{EcLevel, QrCode};
    /// let code = QrCode::encode_text("01234567", EcLevel::M)?;
    /// assert_eq!(code.width(), 21);
    /// # Ok::<(), qrlp_qr::EncodeError>(())
    /// ```
    pub fn encode_text(text: &str, ecc: EcLevel) -> Result<QrCode, EncodeError> {
        QrCode::encode_text_with(
            text,
            &Options {
                ecc,
                ..Options::default()
            },
        )
    }

    /// Encodes bytes in byte mode at the given level.
    ///
    /// ```
    /// use qrlp_qr::{EcLevel, QrCode};
    /// let code = QrCode::encode_bytes(&[0, 159, 255], EcLevel::L)?;
    /// assert_eq!(code.width(), 21);
    /// # Ok::<(), qrlp_qr::EncodeError>(())
    /// ```
    pub fn encode_bytes(data: &[u8], ecc: EcLevel) -> Result<QrCode, EncodeError> {
        QrCode::encode_segments(
            &[Segment::bytes(data)],
            &Options {
                ecc,
                ..Options::default()
            },
        )
    }

    /// Encodes text with full options. The segmentation is recomputed for each
    /// character-count class of versions in range, so the result is the smallest symbol over
    /// every segmentation.
    pub fn encode_text_with(text: &str, opts: &Options) -> Result<QrCode, EncodeError> {
        validate(opts)?;
        match opts.symbol {
            SymbolKind::Micro { min, max } => micro::encode_text(text, opts, min, max),
            SymbolKind::Qr { min, max } => {
                let (v, segs) = choose_text(text, opts, min, max, 0)?;
                Ok(finish(&segs, v, opts, &[]))
            }
        }
    }

    /// Encodes bytes (byte mode) with full options.
    pub fn encode_bytes_with(data: &[u8], opts: &Options) -> Result<QrCode, EncodeError> {
        QrCode::encode_segments(&[Segment::bytes(data)], opts)
    }

    /// Encodes the given segments as they are. `opts.mode` and `opts.eci` do not apply. A
    /// Kanji segment after an ECI designator other than 20 (Shift JIS) is refused with
    /// [`EncodeError::KanjiAfterEci`]: decoders would show it as garbage.
    ///
    /// ```
    /// use qrlp_qr::{EcLevel, Mask, Options, QrCode, Segment, SymbolKind, Version};
    /// let segs = [Segment::alphanumeric("ORDER ")?, Segment::numeric("2026112400")?];
    /// let v = Version::new(2).unwrap();
    /// let opts = Options { ecc: EcLevel::Q, symbol: SymbolKind::Qr { min: v, max: v },
    ///                      mask: Mask::new(6), ..Options::default() };
    /// let code = QrCode::encode_segments(&segs, &opts)?;
    /// assert_eq!(code.width(), 25);
    /// # Ok::<(), qrlp_qr::EncodeError>(())
    /// ```
    pub fn encode_segments(segs: &[Segment], opts: &Options) -> Result<QrCode, EncodeError> {
        validate(opts)?;
        check_kanji_eci(segs)?;
        match opts.symbol {
            SymbolKind::Micro { min, max } => micro::encode_segments(segs, opts, min, max),
            SymbolKind::Qr { min, max } => {
                let v = fit_version(segs, opts.ecc, min, max, 0)?;
                Ok(finish(segs, v, opts, &[]))
            }
        }
    }
}

/// The smallest version in `min..=max` whose data capacity at `ecc` holds `segs`.
pub(crate) fn fit_version(
    segs: &[Segment],
    ecc: EcLevel,
    min: Version,
    max: Version,
    extra_bits: usize,
) -> Result<Version, EncodeError> {
    let mut needed = 0;
    let mut class_cache: [Option<Option<usize>>; 3] = [None; 3];
    for n in min.number()..=max.number() {
        let v = Version::new(n).unwrap_or(Version::MAX);
        let bits = *class_cache[class_of(v)]
            .get_or_insert_with(|| qr_costs(v).total_bits(segs).map(|b| b + extra_bits));
        let cap = data_codewords(v, ecc) * 8;
        if let Some(b) = bits {
            needed = b;
            if b <= cap {
                return Ok(v);
            }
        }
    }
    Err(EncodeError::DataTooLong {
        needed_bits: needed,
        capacity_bits: data_codewords(max, ecc) * 8,
        symbol: format!("{max}-{ecc}"),
    })
}

/// Picks, over the segmentation of each count-indicator class, the smallest version in
/// `min..=max` that holds `text` plus `extra_bits` of header.
pub(crate) fn choose_text(
    text: &str,
    opts: &Options,
    min: Version,
    max: Version,
    extra_bits: usize,
) -> Result<(Version, Vec<Segment>), EncodeError> {
    let mut last_err = None;
    for (class, &start) in CLASS_STARTS.iter().enumerate() {
        let end = [9, 26, 40][class];
        let lo = start.max(min.number());
        let hi = end.min(max.number());
        let (Some(lo), Some(hi)) = (Version::new(lo), Version::new(hi)) else {
            continue;
        };
        if lo > hi {
            continue;
        }
        let segs = text_segments(text, opts, &qr_costs(lo), true)?;
        match fit_version(&segs, opts.ecc, lo, hi, extra_bits) {
            Ok(v) => return Ok((v, segs)),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or(EncodeError::InvalidVersionRange {
        min: min.number(),
        max: max.number(),
    }))
}

/// Builds the symbol: ECC boost, codewords, blocks, placement and mask.
pub(crate) fn finish(
    segs: &[Segment],
    v: Version,
    opts: &Options,
    prefix: &[(u32, u32)],
) -> QrCode {
    let prefix_bits: usize = prefix.iter().map(|&(_, n)| n as usize).sum();
    let bits = qr_costs(v).total_bits(segs).unwrap_or(0) + prefix_bits;
    let mut ecc = opts.ecc;
    if opts.boost_ecc {
        while let Some(next) = ecc.stronger() {
            if bits <= data_codewords(v, next) * 8 {
                ecc = next;
            } else {
                break;
            }
        }
    }
    let data = data_codewords_for(segs, v, ecc, prefix);
    let all = add_ecc_and_interleave(&data, v, ecc);
    matrix::build(v, ecc, &all, opts.mask)
}

/// The data codewords: optional `prefix` bits (structured append header), segments,
/// terminator, bit padding and pad codewords.
pub(crate) fn data_codewords_for(
    segs: &[Segment],
    v: Version,
    ecc: EcLevel,
    prefix: &[(u32, u32)],
) -> Vec<u8> {
    let capacity = data_codewords(v, ecc) * 8;
    let mut bb = BitBuffer::with_capacity(capacity);
    for &(value, n) in prefix {
        bb.push(value, n);
    }
    for s in segs {
        bb.push(mode_indicator(s.mode()), 4);
        if s.mode() != Mode::Eci {
            bb.push(s.char_count() as u32, char_count_bits(s.mode(), v) as u32);
        }
        s.write_data(&mut bb);
    }
    let term = (capacity - bb.len()).min(4);
    bb.push(0, term as u32);
    let mut bytes = bb.into_bytes();
    let target = capacity / 8;
    let mut pad = 0xEC;
    while bytes.len() < target {
        bytes.push(pad);
        pad ^= 0xEC ^ 0x11;
    }
    bytes
}

/// Splits data codewords into blocks, appends each block's Reed-Solomon codewords, and
/// interleaves them as section 7.6 lays down.
pub(crate) fn add_ecc_and_interleave(data: &[u8], v: Version, ecc: EcLevel) -> Vec<u8> {
    let blocks = num_blocks(v, ecc);
    let ecc_len = ecc_per_block(v, ecc);
    let total = total_codewords(v);
    let short_blocks = blocks - total % blocks;
    let short_len = total / blocks - ecc_len;
    let mut out = vec![0u8; total];
    let mut ecc_buf = [0u8; 30];
    let mut offset = 0;
    for b in 0..blocks {
        let len = short_len + usize::from(b >= short_blocks);
        let block = &data[offset..offset + len];
        offset += len;
        for (i, &byte) in block.iter().enumerate() {
            // Column i of the data part; short blocks have no column `short_len`.
            let pos = if i < short_len {
                i * blocks + b
            } else {
                short_len * blocks + (b - short_blocks)
            };
            out[pos] = byte;
        }
        crate::rs::remainder(block, &mut ecc_buf[..ecc_len]);
        for (i, &byte) in ecc_buf[..ecc_len].iter().enumerate() {
            out[data.len() + i * blocks + b] = byte;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::{bch_format, version_bits};

    fn v(n: u8) -> Version {
        Version::new(n).unwrap()
    }

    fn hex(bytes: &[u8]) -> String {
        bytes
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn standard_example_01234567_at_1_m() {
        // ISO/IEC 18004, the worked example "01234567" in version 1-M: 0001 0000001000
        // 0000001100 0101011001 1000011, terminator, padding, then the 10 RS codewords.
        let segs = [Segment::numeric("01234567").unwrap()];
        let data = data_codewords_for(&segs, v(1), EcLevel::M, &[]);
        assert_eq!(
            hex(&data),
            "10 20 0C 56 61 80 EC 11 EC 11 EC 11 EC 11 EC 11"
        );
        let all = add_ecc_and_interleave(&data, v(1), EcLevel::M);
        assert_eq!(hex(&all[16..]), "A5 24 D4 C1 ED 36 C7 87 2C 55");
    }

    #[test]
    fn hello_world_at_1_m() {
        // Alphanumeric "HELLO WORLD" in 1-M, a widely published walk-through.
        let segs = [Segment::alphanumeric("HELLO WORLD").unwrap()];
        let data = data_codewords_for(&segs, v(1), EcLevel::M, &[]);
        assert_eq!(
            hex(&data),
            "20 5B 0B 78 D1 72 DC 4D 43 40 EC 11 EC 11 EC 11"
        );
        let all = add_ecc_and_interleave(&data, v(1), EcLevel::M);
        assert_eq!(hex(&all[16..]), "C4 23 27 77 EB D7 E7 E2 5D 17");
    }

    #[test]
    fn format_and_version_information_examples() {
        // Annex C: level M (00), mask 101 -> 100000011001110 after masking.
        assert_eq!(bch_format(0b00101) ^ 0x5412, 0b100000011001110);
        // Annex D: version 7 -> 000111 110010010100.
        assert_eq!(version_bits(7), 0b000111_110010010100);
    }

    #[test]
    fn interleaving_follows_block_order() {
        // 5-Q: two blocks of 15 and two of 16 data codewords. Data 0..62 must come out as
        // columns across the four blocks, the 16th column from the long blocks only.
        let data: Vec<u8> = (0..62).collect();
        let all = add_ecc_and_interleave(&data, v(5), EcLevel::Q);
        assert_eq!(&all[..8], &[0, 15, 30, 46, 1, 16, 31, 47]);
        assert_eq!(&all[60..62], &[45, 61]);
    }

    #[test]
    fn capacity_errors_name_the_limit() {
        let err = QrCode::encode_bytes(&[0u8; 3000], EcLevel::H).unwrap_err();
        assert_eq!(
            err.to_string(),
            "data too long: needs 24020 bits but the largest allowed symbol (40-H) holds 10208 data bits"
        );
        let err = QrCode::encode_text_with(
            "12a4",
            &Options {
                mode: Some(Mode::Numeric),
                ..Options::default()
            },
        )
        .unwrap_err();
        assert_eq!(
            err,
            EncodeError::InvalidCharacter {
                ch: 'a',
                position: 2,
                mode: Mode::Numeric
            }
        );
    }

    #[cfg(feature = "kanji")]
    #[test]
    fn kanji_under_a_utf8_eci_is_an_error_that_says_why() {
        let forced = Options {
            mode: Some(Mode::Kanji),
            eci: EciPolicy::Always(26),
            ..Options::default()
        };
        let err = QrCode::encode_text_with("日本", &forced).unwrap_err();
        assert_eq!(err, EncodeError::KanjiAfterEci(26));
        assert!(err.to_string().contains("Shift JIS bytes"), "{err}");
        let segs = [Segment::eci(26).unwrap(), Segment::kanji("日本").unwrap()];
        assert_eq!(
            QrCode::encode_segments(&segs, &Options::default()).unwrap_err(),
            EncodeError::KanjiAfterEci(26)
        );
        // Forced Kanji under the default policy needs no designator and is fine.
        let kanji = Options {
            mode: Some(Mode::Kanji),
            ..Options::default()
        };
        assert!(QrCode::encode_text_with("日本", &kanji).is_ok());
        // An explicit designator: the optimal mix leaves Kanji mode out.
        let utf8 = Options {
            eci: EciPolicy::Always(26),
            ..Options::default()
        };
        let segs = text_segments("日本γ", &utf8, &qr_costs(v(1)), true).unwrap();
        assert!(segs.iter().all(|s| s.mode() != Mode::Kanji), "{segs:?}");
    }

    #[test]
    fn version_range_and_boost() {
        let min5 = Options {
            symbol: SymbolKind::Qr {
                min: v(5),
                max: v(40),
            },
            ..Options::default()
        };
        assert_eq!(QrCode::encode_text_with("A", &min5).unwrap().width(), 37);
        let boost = Options {
            ecc: EcLevel::L,
            boost_ecc: true,
            ..Options::default()
        };
        assert_eq!(
            QrCode::encode_text_with("A", &boost).unwrap().ec_level(),
            EcLevel::H
        );
        let tight = Options {
            symbol: SymbolKind::Qr {
                min: v(1),
                max: v(1),
            },
            ..Options::default()
        };
        assert!(matches!(
            QrCode::encode_text_with(&"x".repeat(20), &tight),
            Err(EncodeError::DataTooLong { .. })
        ));
    }
}
