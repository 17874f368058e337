//! # qrlp-render: draw [`QrCode`](qrlp_qr::QrCode) symbols as PNG, SVG or terminal text
//!
//! Pure functions from a symbol and options to bytes or text: no I/O, no async, no
//! `unsafe`.
//!
//! * [`render_png`]: a hand-written PNG encoder specialised for QR images (1-bit pixels,
//!   repeated rows as DEFLATE copies, checksums folded in algebraically), a few microseconds
//!   for a typical symbol.
//! * [`render_svg`]: one `<path>` of module-unit rectangles on an optional background.
//! * [`render_terminal`]: Unicode half blocks, two module rows per line.
//! * [`render_styled_png`]: the live code styles (live, professional, minimal) with an
//!   optional caption in a built-in 5×7 bitmap font ([`font`]), as an indexed PNG.
//!
//! ```
//! use qrlp_qr::{EcLevel, QrCode};
//! use qrlp_render::{render_png, render_svg, Color, RenderOptions, SvgOptions};
//!
//! let code = QrCode::encode_text("https://example.com/product/12345?ref=qr", EcLevel::M)?;
//! let png = render_png(&code, &RenderOptions::default())?; // 370 × 370 px
//! let svg = render_svg(&code, &SvgOptions { fg: "#1e3a8a".parse()?, ..SvgOptions::default() });
//! assert!(png.starts_with(b"\x89PNG"));
//! assert!(svg.contains("fill=\"#1e3a8a\""));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod color;
mod error;
mod fmt;
pub mod font;
mod grid;
mod layout;
pub mod png;
mod raster;
mod styled;
pub mod svg;
pub mod terminal;

pub use color::{Color, ColorError};
pub use error::RenderError;
pub use layout::{layout, Layout, RenderOptions, MAX_IMAGE_SIDE};
pub use png::{render_png, render_png_into};
pub use styled::{render_styled_png, Style, StyledOptions, LIVE_ACCENT};
pub use svg::{render_svg, render_svg_into, SvgDimensions, SvgOptions};
pub use terminal::{render_terminal, TerminalOptions};

#[cfg(test)]
mod robustness {
    //! Random options on random symbols: every renderer returns, without panicking, either
    //! output or a [`RenderError`].
    use super::*;
    use crate::grid::test_grid::Grid;
    use crate::grid::test_rng::Rng;

    fn pick(rng: &mut Rng, small: u64, special: &[u32]) -> u32 {
        match rng.below(8) {
            0 => special[rng.below(special.len() as u64) as usize],
            1 => rng.next() as u32,
            _ => rng.below(small) as u32,
        }
    }

    fn colour(rng: &mut Rng) -> Color {
        match rng.below(4) {
            0 => Color::BLACK,
            1 => Color::WHITE,
            _ => {
                let v = rng.next();
                Color::rgba(v as u8, (v >> 8) as u8, (v >> 16) as u8, (v >> 24) as u8)
            }
        }
    }

    #[test]
    fn random_options_never_panic() {
        let mut rng = Rng::new(0x5eed);
        let edges = [
            0,
            1,
            2,
            255,
            256,
            32767,
            32768,
            32769,
            u32::MAX / 2,
            u32::MAX,
        ];
        let mut ok = 0;
        for case in 0..256 {
            let width = [1usize, 11, 21, 29, 64, 65, 177][rng.below(7) as usize];
            let g = Grid::random(width, rng.next());
            let opts = RenderOptions {
                module_size: pick(&mut rng, 40, &edges),
                border: pick(&mut rng, 12, &edges),
                size: rng.below(2).eq(&0).then(|| pick(&mut rng, 3000, &edges)),
                fg: colour(&mut rng),
                bg: colour(&mut rng),
                dpi: rng
                    .below(2)
                    .eq(&0)
                    .then(|| pick(&mut rng, 2000, &[0, 1, png::MAX_DPI, png::MAX_DPI + 1])),
            };
            let mut out = Vec::new();
            match png::write_png(&g, &opts, &mut out) {
                Ok(()) => {
                    ok += 1;
                    let l = layout::layout_of(&g, &opts).unwrap();
                    assert!(l.image_px <= MAX_IMAGE_SIDE);
                    // Decode and check every pixel when it is cheap enough.
                    if l.image_px <= 600 {
                        png::tests::check_image(&g, &opts, &out);
                    }
                }
                Err(e) => {
                    assert!(out.is_empty(), "case {case}: output on error");
                    assert!(!e.to_string().is_empty());
                }
            }
            let svg_opts = SvgOptions {
                border: opts.border,
                module_size: opts.module_size,
                size: opts.size,
                dimensions: if rng.below(2) == 0 {
                    SvgDimensions::WidthHeight
                } else {
                    SvgDimensions::ViewBoxOnly
                },
                fg: opts.fg,
                bg: opts.bg,
                title: None,
            };
            if opts.border < 1000 {
                let mut s = String::new();
                svg::write_svg(&g, &svg_opts, &mut s);
                assert!(s.ends_with("</svg>\n"));
            }
            let t = terminal::write_terminal(&g, opts.border, rng.below(2) == 0);
            assert!(t.ends_with('\n'));
        }
        assert!(ok > 40, "too few successful cases ({ok}) to mean much");
    }
}
