//! Seeded random text mixing writing systems, the payloads that broke real decoders: ASCII,
//! Latin-1, Greek, Cyrillic, CJK ideographs, Hangul, kana and emoji in runs, and pure
//! Japanese text. The zxing-cpp round-trip test and `scripts/decode-corpus.sh` (zbarimg and
//! zxing-cpp, through the `qrlp-mixed-sample` binary) draw from the same generator.

use qrlp_qr::{EcLevel, Options, QrCode, Segment};

use crate::Rng;

/// A writing system, as a pool of characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Script {
    /// Printable ASCII, space to `~` (with `\` and `~`, which Shift JIS reads otherwise).
    Ascii,
    /// The upper half of Latin-1, U+00A0 to U+00FF.
    Latin1,
    /// Greek capitals and small letters.
    Greek,
    /// Russian Cyrillic, with Ё and ё.
    Cyrillic,
    /// Any CJK Unified Ideograph, U+4E00 to U+9FFF (many are not in Shift JIS).
    Cjk,
    /// Hangul syllables.
    Hangul,
    /// Hiragana and katakana.
    Kana,
    /// Emoji from the pictograph, emoticon and transport blocks (4 bytes in UTF-8).
    Emoji,
    /// Japanese: Kanji and kana that Shift JIS has, and Japanese punctuation.
    Japanese,
}

impl Script {
    /// One character of this script.
    pub fn pick(self, rng: &mut Rng) -> char {
        let from = |rng: &mut Rng, ranges: &[(u32, u32)]| {
            let (lo, hi) = *rng.pick(ranges);
            char::from_u32(lo + rng.below((hi - lo + 1) as usize) as u32).unwrap_or('?')
        };
        match self {
            Script::Ascii => from(rng, &[(0x20, 0x7E)]),
            Script::Latin1 => from(rng, &[(0xA0, 0xFF)]),
            Script::Greek => from(rng, &[(0x391, 0x3A1), (0x3A3, 0x3A9), (0x3B1, 0x3C9)]),
            Script::Cyrillic => from(rng, &[(0x410, 0x44F), (0x401, 0x401), (0x451, 0x451)]),
            Script::Cjk => from(rng, &[(0x4E00, 0x9FFF)]),
            Script::Hangul => from(rng, &[(0xAC00, 0xD7A3)]),
            Script::Kana => from(rng, &[(0x3041, 0x3096), (0x30A1, 0x30FA)]),
            Script::Emoji => from(
                rng,
                &[(0x1F300, 0x1F5FF), (0x1F600, 0x1F64F), (0x1F680, 0x1F6FF)],
            ),
            Script::Japanese => loop {
                let c = match rng.below(10) {
                    0..=4 => from(rng, &[(0x4E00, 0x9FA0)]),
                    5..=8 => Script::Kana.pick(rng),
                    _ => *rng.pick(&['、', '。', 'ー', '「', '」', '・']),
                };
                // Only what Shift JIS has (not every ideograph, nor `ゔ` or `ヷ`).
                if Segment::kanji(c.encode_utf8(&mut [0; 4])).is_ok() {
                    break c;
                }
            },
        }
    }
}

/// A named mix of scripts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mixture {
    /// Short name for reports.
    pub name: &'static str,
    /// The scripts its runs are drawn from.
    pub scripts: &'static [Script],
}

/// The mixtures tested, in order. All but `japanese` carry some ASCII.
pub const MIXTURES: [Mixture; 8] = {
    use Script::*;
    [
        Mixture {
            name: "all-eight",
            scripts: &[Ascii, Latin1, Greek, Cyrillic, Cjk, Hangul, Kana, Emoji],
        },
        Mixture {
            name: "ascii+latin1",
            scripts: &[Ascii, Latin1],
        },
        Mixture {
            name: "greek+cyrillic",
            scripts: &[Ascii, Greek, Cyrillic],
        },
        Mixture {
            // Every non-ASCII character here has a Kanji-mode value: the case that failed.
            name: "kana+greek+cyrillic",
            scripts: &[Ascii, Kana, Greek, Cyrillic],
        },
        Mixture {
            name: "cjk+kana",
            scripts: &[Ascii, Cjk, Kana],
        },
        Mixture {
            name: "cjk+hangul",
            scripts: &[Ascii, Cjk, Hangul],
        },
        Mixture {
            name: "emoji+latin1",
            scripts: &[Ascii, Emoji, Latin1],
        },
        Mixture {
            name: "japanese",
            scripts: &[Japanese],
        },
    ]
};

/// `chars` characters of `mixture`, in runs of 1 to 8 from one script at a time.
pub fn mixed_text(rng: &mut Rng, mixture: &Mixture, chars: usize) -> String {
    let mut out = String::new();
    let mut left = chars;
    while left > 0 {
        let script = *rng.pick(mixture.scripts);
        let run = (1 + rng.below(8)).min(left);
        for _ in 0..run {
            out.push(script.pick(rng));
        }
        left -= run;
    }
    out
}

/// One sample: a text, its mixture and the level to encode it at.
#[derive(Clone, Debug)]
pub struct Sample {
    /// The mixture's name.
    pub mixture: &'static str,
    /// Error correction level.
    pub ecc: EcLevel,
    /// The text.
    pub text: String,
}

/// `n` samples from `seed`: the mixtures in turn, the four levels in turn, lengths from one
/// character up (mostly short, some hundreds of characters) and one in ten as long as a
/// version-40 symbol at its level holds, less a few characters.
pub fn samples(seed: u64, n: usize) -> Vec<Sample> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let mixture = &MIXTURES[i % MIXTURES.len()];
            let ecc = EcLevel::ALL[(i / MIXTURES.len()) % 4];
            let text = match rng.below(10) {
                0 => near_capacity(&mut rng, mixture, ecc),
                1..=2 => {
                    let chars = 41 + rng.below(360);
                    mixed_text(&mut rng, mixture, chars)
                }
                _ => {
                    let chars = 1 + rng.below(40);
                    mixed_text(&mut rng, mixture, chars)
                }
            };
            Sample {
                mixture: mixture.name,
                ecc,
                text,
            }
        })
        .collect()
}

/// The longest prefix of a long random text that fits version 40 at `ecc`, less up to 3% so
/// the sizes vary near the limit.
fn near_capacity(rng: &mut Rng, mixture: &Mixture, ecc: EcLevel) -> String {
    let long = mixed_text(rng, mixture, 4000);
    let chars: Vec<char> = long.chars().collect();
    let fits = |k: usize| {
        let s: String = chars[..k].iter().collect();
        QrCode::encode_text_with(
            &s,
            &Options {
                ecc,
                ..Options::default()
            },
        )
        .is_ok()
    };
    let (mut lo, mut hi) = (1, chars.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let keep = lo - rng.below(lo * 3 / 100 + 1);
    chars[..keep.max(1)].iter().collect()
}
