//! Text output for terminals: Unicode half blocks, two module rows per line.

use qrlp_qr::QrCode;

use crate::grid::Modules;

/// The largest border [`render_terminal`] draws; larger values are capped to it, so that
/// absurd options cannot make an absurdly large string.
///
/// ```
/// assert_eq!(qrlp_render::terminal::MAX_TERMINAL_BORDER, 64);
/// ```
pub const MAX_TERMINAL_BORDER: u32 = 64;

/// Options for [`render_terminal`].
///
/// ```
/// use qrlp_render::TerminalOptions;
/// let o = TerminalOptions { invert: true, ..TerminalOptions::default() };
/// assert_eq!(o.border, None);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TerminalOptions {
    /// Quiet zone in modules; `None` (the default) uses the symbol's own,
    /// [`QrCode::quiet_zone`] (4 for QR Code, 2 for Micro QR). Capped at
    /// [`MAX_TERMINAL_BORDER`].
    pub border: Option<u32>,
    /// Draw the light modules instead of the dark ones, for light-on-dark terminals.
    pub invert: bool,
}

/// Renders `code` with the half blocks `▀`, `▄`, `█` and spaces: each character cell holds two
/// module rows (the upper and the lower half), so modules come out roughly square in most
/// fonts. The drawn (foreground-coloured) halves are the dark modules, or with `invert` the
/// light ones including the quiet zone. Every line ends in `\n`; when the total number of
/// rows is odd, the lower half of the last line is left undrawn.
///
/// ```
/// use qrlp_qr::{EcLevel, QrCode};
/// use qrlp_render::{render_terminal, TerminalOptions};
/// let code = QrCode::encode_text("hi", EcLevel::L)?;
/// let text = render_terminal(&code, &TerminalOptions { border: Some(1), invert: false });
/// let lines: Vec<&str> = text.lines().collect();
/// assert_eq!(lines.len(), (21 + 2 + 1) / 2);
/// assert_eq!(lines[0].chars().count(), 23);
/// assert!(lines[0].starts_with(" ▄▄▄▄▄▄▄ ")); // top of the finder pattern
/// # Ok::<(), qrlp_qr::EncodeError>(())
/// ```
pub fn render_terminal(code: &QrCode, opts: &TerminalOptions) -> String {
    let border = opts
        .border
        .unwrap_or(code.quiet_zone().try_into().unwrap_or(MAX_TERMINAL_BORDER));
    write_terminal(code, border, opts.invert)
}

pub(crate) fn write_terminal<M: Modules + ?Sized>(code: &M, border: u32, invert: bool) -> String {
    let b = border.min(MAX_TERMINAL_BORDER) as usize;
    let width = code.width();
    let total = width + 2 * b;
    let lines = total.div_ceil(2);
    // Up to 3 bytes per cell plus the newline.
    let mut out = String::with_capacity(lines * (3 * total + 1));
    let drawn = |x: usize, y: usize| -> bool {
        if y >= total {
            return false;
        }
        let dark = x >= b && y >= b && code.is_dark(x - b, y - b);
        dark != invert
    };
    for line in 0..lines {
        let (top, bottom) = (2 * line, 2 * line + 1);
        for x in 0..total {
            out.push(match (drawn(x, top), drawn(x, bottom)) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::test_grid::Grid;

    #[test]
    fn exact_output_small_symbol() {
        let g = Grid::parse(&["#.#", ".#.", "##."]);
        assert_eq!(write_terminal(&g, 0, false), concat!("▀▄▀\n", "▀▀ \n"));
        assert_eq!(
            write_terminal(&g, 1, false),
            concat!(" ▄ ▄ \n", " ▄█  \n", "     \n")
        );
        // Inverted: light modules and the quiet zone are drawn; the half row below the
        // image stays empty.
        assert_eq!(
            write_terminal(&g, 1, true),
            concat!("█▀█▀█\n", "█▀ ██\n", "▀▀▀▀▀\n")
        );
        assert_eq!(write_terminal(&g, 0, true), concat!("▄▀▄\n", "  ▀\n"));
    }

    #[test]
    fn even_height_and_border_cap() {
        let g = Grid::parse(&["#.", ".#"]);
        assert_eq!(write_terminal(&g, 0, false), "▀▄\n");
        assert_eq!(write_terminal(&g, 1, false), " ▄  \n  ▀ \n");
        let capped = write_terminal(&g, u32::MAX, false);
        let total = 2 + 2 * MAX_TERMINAL_BORDER as usize;
        assert_eq!(capped.lines().count(), total / 2);
        assert!(capped.lines().all(|l| l.chars().count() == total));
    }

    #[test]
    fn every_module_is_represented() {
        let g = Grid::random(25, 9);
        for invert in [false, true] {
            let text = write_terminal(&g, 2, invert);
            let lines: Vec<Vec<char>> = text.lines().map(|l| l.chars().collect()).collect();
            assert_eq!(lines.len(), 15);
            for y in 0..29 {
                for (x, &c) in lines[y / 2].iter().enumerate() {
                    let upper = y % 2 == 0;
                    let drawn = match c {
                        '█' => true,
                        '▀' => upper,
                        '▄' => !upper,
                        ' ' => false,
                        _ => panic!("unexpected {c:?}"),
                    };
                    let dark =
                        (2..27).contains(&x) && (2..27).contains(&y) && g.is_dark(x - 2, y - 2);
                    assert_eq!(drawn, dark != invert, "({x}, {y})");
                }
            }
        }
    }
}
