//! Styled PNG of a code: the seed's live code styles, with an optional caption drawn in
//! the built-in bitmap font. The one PNG path for live frames (the CLI's `generate`, the
//! protocol object's frames and the live server all come here).

use qrlp_qr::QrCode;

use crate::font::{text_width, wrap, ADVANCE_H, ADVANCE_W};
use crate::raster::Raster;
use crate::{render_png, Color, RenderError, RenderOptions, MAX_IMAGE_SIDE};

/// The seed's QR styles for live codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Style {
    /// The configured colours in a thin accent-coloured frame, 4-module quiet zone; the
    /// caption in the accent colour.
    Live,
    /// Plain, with a wider 6-module quiet zone (print and slides); caption in the dark
    /// colour.
    Professional,
    /// The smallest legal quiet zone (4 modules), no decoration; caption in the dark colour.
    Minimal,
}

impl Style {
    /// The quiet zone of the style, in modules.
    pub const fn quiet_zone(self) -> u32 {
        match self {
            Style::Professional => 6,
            Style::Live | Style::Minimal => 4,
        }
    }
}

/// The accent of the live style: dark teal, #0F766E.
pub const LIVE_ACCENT: Color = Color::rgba(0x0F, 0x76, 0x6E, 0xFF);

/// Options of [`render_styled_png`].
///
/// ```
/// use qrlp_qr::{EcLevel, QrCode};
/// use qrlp_render::{render_styled_png, Style, StyledOptions};
/// let code = QrCode::encode_text("QL2:EXAMPLE", EcLevel::M)?;
/// let caption = ["QRLP LIVE #12".to_owned()];
/// let png = render_styled_png(&code, &StyledOptions { caption: &caption, ..StyledOptions::new(Style::Live) })?;
/// assert!(png.starts_with(b"\x89PNG"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StyledOptions<'a> {
    /// The style.
    pub style: Style,
    /// Pixels per module (at least 1).
    pub module_size: u32,
    /// Dark modules (and the caption, except in the live style).
    pub fg: Color,
    /// Light modules, quiet zone and caption background.
    pub bg: Color,
    /// The live style's frame and caption colour.
    pub accent: Color,
    /// Caption lines under the code (printable ASCII; others are drawn as `?`). Lines too
    /// long for the image's width are wrapped at spaces.
    pub caption: &'a [String],
}

impl StyledOptions<'_> {
    /// `style` with 10 px modules, black on white, the live accent, no caption.
    pub const fn new(style: Style) -> StyledOptions<'static> {
        StyledOptions {
            style,
            module_size: 10,
            fg: Color::BLACK,
            bg: Color::WHITE,
            accent: LIVE_ACCENT,
            caption: &[],
        }
    }
}

const BG: u8 = 0;
const FG: u8 = 1;
const ACCENT: u8 = 2;

/// Renders `code` in a style, with its caption, as PNG. Without a frame or caption this is
/// [`render_png`] with the style's quiet zone (1-bit); otherwise a 2-bit indexed image.
///
/// # Errors
/// [`RenderError::InvalidModuleSize`] for 0; [`RenderError::ImageTooLarge`] past
/// [`MAX_IMAGE_SIDE`].
pub fn render_styled_png(code: &QrCode, opts: &StyledOptions<'_>) -> Result<Vec<u8>, RenderError> {
    let q = opts.style.quiet_zone().max(code.quiet_zone() as u32);
    let framed = opts.style == Style::Live;
    if !framed && opts.caption.is_empty() {
        return render_png(
            code,
            &RenderOptions {
                module_size: opts.module_size,
                border: q,
                fg: opts.fg,
                bg: opts.bg,
                ..RenderOptions::default()
            },
        );
    }
    if opts.module_size == 0 {
        return Err(RenderError::InvalidModuleSize);
    }
    let m = opts.module_size as usize;
    let q = q as usize;
    let side = (code.width() + 2 * q).saturating_mul(m);
    if side > MAX_IMAGE_SIDE as usize {
        return Err(RenderError::ImageTooLarge { side: side as u64 });
    }
    let frame = if framed { (m / 2).max(2) } else { 0 };
    // The largest font scale at which the longest line fits, at most half a module per
    // font pixel; lines that still do not fit at scale 1 are wrapped.
    let room = side.saturating_sub(2 * m).max(ADVANCE_W);
    let longest = opts
        .caption
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(1);
    let scale = (room / (longest * ADVANCE_W).max(1)).clamp(1, (m / 2).max(1));
    let lines: Vec<String> = opts
        .caption
        .iter()
        .flat_map(|l| wrap(l, room / (ADVANCE_W * scale)))
        .collect();
    // The caption starts below the full quiet zone, so it never touches it.
    let caption_h = if lines.is_empty() {
        0
    } else {
        lines.len() * ADVANCE_H * scale + m
    };
    let width = side + 2 * frame;
    let height = side + caption_h + 2 * frame;
    if width.max(height) > MAX_IMAGE_SIDE as usize {
        return Err(RenderError::ImageTooLarge {
            side: width.max(height) as u64,
        });
    }
    let mut r = Raster::new(width, height, BG);
    if framed {
        r.fill(0, 0, width, frame, ACCENT);
        r.fill(0, height - frame, width, frame, ACCENT);
        r.fill(0, 0, frame, height, ACCENT);
        r.fill(width - frame, 0, frame, height, ACCENT);
    }
    let origin = frame + q * m;
    for y in 0..code.width() {
        crate::grid::dark_runs(code.row(y), code.width(), |x0, x1| {
            r.fill(origin + x0 * m, origin + y * m, (x1 - x0) * m, m, FG);
        });
    }
    let text = if framed { ACCENT } else { FG };
    let mut y = frame + side;
    for line in &lines {
        let w = text_width(line.chars().count(), scale);
        let x = frame + side.saturating_sub(w) / 2;
        r.draw_text(x, y, scale, line, text);
        y += ADVANCE_H * scale;
    }
    let mut out = Vec::new();
    crate::png::indexed::write_indexed(&r, &[opts.bg, opts.fg, opts.accent], &mut out)?;
    Ok(out)
}
