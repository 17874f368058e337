//! Colours: an 8-bit RGBA value parsed from and printed as CSS-style hex.

use std::fmt;
use std::str::FromStr;

/// An sRGB colour with 8-bit channels and straight (not premultiplied) alpha.
///
/// ```
/// use qrlp_render::Color;
/// let c: Color = "#1e90ff".parse()?;
/// assert_eq!(c, Color { r: 0x1e, g: 0x90, b: 0xff, a: 255 });
/// assert_eq!(c.to_hex(), "#1e90ff");
/// # Ok::<(), qrlp_render::ColorError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Color {
    /// Red, 0..=255.
    pub r: u8,
    /// Green, 0..=255.
    pub g: u8,
    /// Blue, 0..=255.
    pub b: u8,
    /// Alpha: 0 is fully transparent, 255 fully opaque.
    pub a: u8,
}

impl Color {
    /// Opaque black, `#000000`.
    ///
    /// ```
    /// assert_eq!(qrlp_render::Color::BLACK.to_hex(), "#000000");
    /// ```
    pub const BLACK: Color = Color::rgb(0, 0, 0);
    /// Opaque white, `#ffffff`.
    ///
    /// ```
    /// assert_eq!(qrlp_render::Color::WHITE.to_hex(), "#ffffff");
    /// ```
    pub const WHITE: Color = Color::rgb(255, 255, 255);
    /// Fully transparent (black with alpha 0), `#00000000`.
    ///
    /// ```
    /// assert_eq!(qrlp_render::Color::TRANSPARENT.a, 0);
    /// ```
    pub const TRANSPARENT: Color = Color::rgba(0, 0, 0, 0);

    /// An opaque colour.
    ///
    /// ```
    /// use qrlp_render::Color;
    /// assert_eq!(Color::rgb(255, 0, 0).to_hex(), "#ff0000");
    /// ```
    pub const fn rgb(r: u8, g: u8, b: u8) -> Color {
        Color { r, g, b, a: 255 }
    }

    /// A colour with alpha.
    ///
    /// ```
    /// use qrlp_render::Color;
    /// assert_eq!(Color::rgba(255, 0, 0, 128).to_hex(), "#ff000080");
    /// ```
    pub const fn rgba(r: u8, g: u8, b: u8, a: u8) -> Color {
        Color { r, g, b, a }
    }

    /// Whether the colour is fully opaque (alpha 255).
    ///
    /// ```
    /// use qrlp_render::Color;
    /// assert!(Color::BLACK.is_opaque());
    /// assert!(!Color::TRANSPARENT.is_opaque());
    /// ```
    pub const fn is_opaque(self) -> bool {
        self.a == 255
    }

    /// Canonical lower-case hex: `#rrggbb` when opaque, `#rrggbbaa` otherwise.
    ///
    /// ```
    /// use qrlp_render::Color;
    /// assert_eq!("#ABC".parse::<Color>().unwrap().to_hex(), "#aabbcc");
    /// assert_eq!(Color::TRANSPARENT.to_hex(), "#00000000");
    /// ```
    pub fn to_hex(self) -> String {
        let mut s = String::with_capacity(9);
        self.push_hex(&mut s, !self.is_opaque());
        s
    }

    /// Appends `#rrggbb`, plus `aa` when `with_alpha`.
    pub(crate) fn push_hex(self, out: &mut String, with_alpha: bool) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        out.push('#');
        let channels = [self.r, self.g, self.b, self.a];
        let n = if with_alpha { 4 } else { 3 };
        for &c in &channels[..n] {
            out.push(HEX[usize::from(c >> 4)] as char);
            out.push(HEX[usize::from(c & 15)] as char);
        }
    }
}

impl fmt::Display for Color {
    /// Same as [`Color::to_hex`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// How much of a bad input a [`ColorError`] repeats, in characters.
const ECHO_CHARS: usize = 32;

/// A string that is not `#RGB`, `#RRGGBB` or `#RRGGBBAA`.
///
/// ```
/// use qrlp_render::Color;
/// let err = "red".parse::<Color>().unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "invalid colour \"red\": expected #RGB, #RRGGBB or #RRGGBBAA with hex digits 0-9, a-f, A-F"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid colour \"{input}\": expected #RGB, #RRGGBB or #RRGGBBAA with hex digits 0-9, a-f, A-F"
)]
pub struct ColorError {
    /// The rejected input, cut to its first 32 characters (then ending in `…`), with control
    /// characters and quotes escaped so that the message stays on one line.
    pub input: String,
}

impl ColorError {
    fn new(input: &str) -> ColorError {
        let mut echo = String::new();
        for (i, c) in input.chars().enumerate() {
            if i == ECHO_CHARS {
                echo.push('…');
                break;
            }
            if c.is_control() || c == '"' || c == '\\' {
                echo.extend(c.escape_default());
            } else {
                echo.push(c);
            }
        }
        ColorError { input: echo }
    }
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

impl FromStr for Color {
    type Err = ColorError;

    /// Parses exactly `#RGB`, `#RRGGBB` or `#RRGGBBAA` (hex digits in either case, no
    /// surrounding spaces). `#RGB` doubles each digit; a missing alpha means opaque.
    ///
    /// ```
    /// use qrlp_render::Color;
    /// assert_eq!("#fff".parse::<Color>().unwrap(), Color::WHITE);
    /// assert_eq!("#00000000".parse::<Color>().unwrap(), Color::TRANSPARENT);
    /// assert!(" #fff".parse::<Color>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Color, ColorError> {
        let err = || ColorError::new(s);
        let bytes = s.as_bytes();
        let digits = match bytes.split_first() {
            Some((b'#', rest)) if matches!(rest.len(), 3 | 6 | 8) => rest,
            _ => return Err(err()),
        };
        let mut nibbles = [0u8; 8];
        for (n, &b) in nibbles.iter_mut().zip(digits) {
            *n = hex_digit(b).ok_or_else(err)?;
        }
        Ok(match digits.len() {
            3 => Color::rgb(nibbles[0] * 17, nibbles[1] * 17, nibbles[2] * 17),
            _ => {
                let byte = |i: usize| (nibbles[2 * i] << 4) | nibbles[2 * i + 1];
                let a = if digits.len() == 8 { byte(3) } else { 255 };
                Color::rgba(byte(0), byte(1), byte(2), a)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_three_forms_in_either_case() {
        assert_eq!("#000".parse(), Ok(Color::BLACK));
        assert_eq!("#FfF".parse(), Ok(Color::WHITE));
        assert_eq!("#1a2".parse(), Ok(Color::rgb(0x11, 0xaa, 0x22)));
        assert_eq!("#0A0b0C".parse(), Ok(Color::rgb(10, 11, 12)));
        assert_eq!("#12345678".parse(), Ok(Color::rgba(0x12, 0x34, 0x56, 0x78)));
        assert_eq!("#ffffff00".parse::<Color>().unwrap().a, 0);
        assert_eq!("#ABCDEFFF".parse(), Ok(Color::rgb(0xab, 0xcd, 0xef)));
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "#",
            "#f",
            "#ff",
            "#ffff",
            "#fffff",
            "#fffffff",
            "#fffffffff",
            "fff",
            "ffffff",
            "#ggg",
            "# fff",
            "#fff ",
            " #fff",
            "#ff\u{e9}",
            "##fff",
            "#+1f",
            "rgb(0,0,0)",
            "#ffé",
            "#éé",
        ] {
            let e = bad.parse::<Color>().unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains("#RGB, #RRGGBB or #RRGGBBAA"), "{msg}");
        }
    }

    #[test]
    fn error_echo_is_bounded_and_escaped() {
        let long = "x".repeat(10_000);
        let e = long.parse::<Color>().unwrap_err();
        assert_eq!(e.input, format!("{}…", "x".repeat(32)));
        let e = "a\"b\nc".parse::<Color>().unwrap_err();
        assert_eq!(e.input, "a\\\"b\\nc");
        assert!(!e.to_string().contains('\n'));
        // Multi-byte characters are never split.
        let e = "é".repeat(40).parse::<Color>().unwrap_err();
        assert_eq!(e.input.chars().count(), 33);
    }

    #[test]
    fn hex_round_trips() {
        for c in [
            Color::BLACK,
            Color::WHITE,
            Color::TRANSPARENT,
            Color::rgba(1, 2, 3, 4),
            Color::rgb(0xfe, 0xdc, 0xba),
        ] {
            assert_eq!(c.to_hex().parse(), Ok(c));
            assert_eq!(c.to_string(), c.to_hex());
        }
        assert_eq!(Color::rgba(0xab, 0xcd, 0xef, 0x01).to_hex(), "#abcdef01");
    }
}
