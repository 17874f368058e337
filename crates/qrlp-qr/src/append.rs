//! Structured append: one message over up to 16 linked symbols (section 8).

use crate::encode::{choose_text, finish, Options, SymbolKind};
use crate::{EncodeError, Mode, QrCode};

/// Header bits of structured append: mode indicator, position, total, parity.
const HEADER_BITS: usize = 4 + 4 + 4 + 8;

/// Encodes `text` as the fewest structured-append symbols (1 to 16) that hold it within the
/// version range of `opts`. Each symbol carries its position, the total and the parity byte
/// (XOR of every byte of the message), and its own ECI designator when one is needed, so
/// each can also be read alone.
///
/// ```
/// use qrlp_qr::{structured_append, EcLevel, Options, SymbolKind, Version};
/// let v2 = Version::new(2).unwrap();
/// let opts = Options { ecc: EcLevel::L, symbol: SymbolKind::Qr { min: Version::MIN, max: v2 },
///                      ..Options::default() };
/// let text = "a message that is far too long for one small version 2 symbol at level L";
/// let parts = structured_append(text, &opts)?;
/// assert_eq!(parts.len(), 3);
/// # Ok::<(), qrlp_qr::EncodeError>(())
/// ```
pub fn structured_append(text: &str, opts: &Options) -> Result<Vec<QrCode>, EncodeError> {
    let SymbolKind::Qr { min, max } = opts.symbol else {
        return Err(EncodeError::UnsupportedInMicro("structured append"));
    };
    if min > max {
        return Err(EncodeError::InvalidVersionRange {
            min: min.number(),
            max: max.number(),
        });
    }
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut last_err = None;
    for n in 1..=16usize {
        if n > chars.len().max(1) {
            break;
        }
        let per = chars.len().div_ceil(n);
        let pieces: Vec<&str> = (0..n)
            .map(|i| {
                let a = (i * per).min(chars.len());
                let b = ((i + 1) * per).min(chars.len());
                let start = chars.get(a).map_or(text.len(), |c| c.0);
                let end = chars.get(b).map_or(text.len(), |c| c.0);
                &text[start..end]
            })
            .collect();
        let chosen: Result<Vec<_>, EncodeError> = pieces
            .iter()
            .map(|p| choose_text(p, opts, min, max, HEADER_BITS))
            .collect();
        match chosen {
            Ok(parts) => {
                let parity = parts
                    .iter()
                    .flat_map(|(_, segs)| segs.iter())
                    .filter(|s| s.mode() != Mode::Eci)
                    .flat_map(|s| s.message_bytes())
                    .fold(0u8, |a, b| a ^ b);
                let total = parts.len();
                return Ok(parts
                    .iter()
                    .enumerate()
                    .map(|(i, (v, segs))| {
                        let header = [
                            (0b0011, 4),
                            (i as u32, 4),
                            (total as u32 - 1, 4),
                            (parity as u32, 8),
                        ];
                        finish(segs, *v, opts, &header)
                    })
                    .collect());
            }
            Err(e @ EncodeError::DataTooLong { .. }) => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(match last_err {
        Some(EncodeError::DataTooLong { .. }) | None => EncodeError::StructuredAppendCount(17),
        Some(e) => e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EcLevel, Version};

    #[test]
    fn header_carries_position_total_and_parity() {
        let v = Version::new(2).unwrap();
        let opts = Options {
            ecc: EcLevel::L,
            symbol: SymbolKind::Qr {
                min: Version::MIN,
                max: v,
            },
            ..Options::default()
        };
        let text = "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz";
        let parts = structured_append(text, &opts).unwrap();
        let parity = text.bytes().fold(0u8, |a, b| a ^ b);
        assert_eq!(parts.len(), 2);
        for (i, _) in parts.iter().enumerate() {
            // Rebuild the data codewords the way `finish` does and read the first 20 bits.
            let per = text.len().div_ceil(parts.len());
            let piece = &text[i * per..((i + 1) * per).min(text.len())];
            let (ver, segs) = choose_text(piece, &opts, Version::MIN, v, HEADER_BITS).unwrap();
            let header = [(0b0011, 4), (i as u32, 4), (1, 4), (parity as u32, 8)];
            let data = crate::encode::data_codewords_for(&segs, ver, EcLevel::L, &header);
            let bits = u32::from_be_bytes([0, data[0], data[1], data[2]]) >> 4;
            assert_eq!(bits >> 16, 0b0011, "mode indicator");
            assert_eq!((bits >> 12) & 0xF, i as u32, "position");
            assert_eq!((bits >> 8) & 0xF, 1, "total - 1");
            assert_eq!(bits & 0xFF, parity as u32, "parity");
        }
        assert!(matches!(
            structured_append(&"x".repeat(5000), &opts),
            Err(EncodeError::StructuredAppendCount(_))
        ));
    }
}
