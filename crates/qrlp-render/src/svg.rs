//! SVG output: one background rectangle and one path for all dark modules.
//!
//! The `viewBox` is measured in modules (border included), so every coordinate in the path is
//! a small integer. Each horizontal run of dark modules is a unit-high rectangle
//! `M{x} {y}h{len}v1h-{len}z`; because all of them belong to one `<path>`, the renderer fills
//! them as one shape and no hairline seams appear between neighbouring modules at any zoom.

use qrlp_qr::QrCode;

use crate::fmt::{digits, push_u64, push_xml_escaped, AsciiBuf};
use crate::grid::{dark_runs, Modules};
use crate::Color;

/// Which size attributes the `<svg>` element carries.
///
/// ```
/// use qrlp_render::SvgDimensions;
/// assert_eq!(SvgDimensions::default(), SvgDimensions::WidthHeight);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SvgDimensions {
    /// `width` and `height` in pixels, plus the `viewBox`: a fixed-size image.
    #[default]
    WidthHeight,
    /// Only the `viewBox`: the image scales to fill its container.
    ViewBoxOnly,
}

/// Options for [`render_svg`].
///
/// ```
/// use qrlp_render::{SvgDimensions, SvgOptions};
/// let opts = SvgOptions {
///     dimensions: SvgDimensions::ViewBoxOnly,
///     title: Some("Scan me".into()),
///     ..SvgOptions::default()
/// };
/// assert_eq!((opts.module_size, opts.border), (10, 4));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SvgOptions {
    /// Quiet zone around the symbol, in modules. Default 4.
    pub border: u32,
    /// Pixels per module for the `width` and `height` attributes when `size` is `None`.
    /// Default 10. The drawing itself is in module units, so any value gives crisp modules;
    /// 0 gives `width="0"`, which is well-formed but invisible.
    pub module_size: u32,
    /// Exact `width` and `height` in pixels; overrides `module_size`. Neither is used with
    /// [`SvgDimensions::ViewBoxOnly`].
    pub size: Option<u32>,
    /// Whether to write `width`/`height` or only the `viewBox`. Default
    /// [`SvgDimensions::WidthHeight`].
    pub dimensions: SvgDimensions,
    /// Colour of dark modules. Default black. Alpha below 255 becomes `fill-opacity`.
    pub fg: Color,
    /// Background colour. Default white. Fully transparent means no background rectangle;
    /// other alpha below 255 becomes `fill-opacity`.
    pub bg: Color,
    /// Optional `<title>` (accessible name), XML-escaped.
    pub title: Option<String>,
}

impl Default for SvgOptions {
    /// Border 4, 10 px per module, width/height and viewBox, black on white, no title.
    ///
    /// ```
    /// let o = qrlp_render::SvgOptions::default();
    /// assert_eq!(o.size, None);
    /// assert_eq!(o.title, None);
    /// ```
    fn default() -> Self {
        SvgOptions {
            border: 4,
            module_size: 10,
            size: None,
            dimensions: SvgDimensions::WidthHeight,
            fg: Color::BLACK,
            bg: Color::WHITE,
            title: None,
        }
    }
}

/// Renders `code` as a standalone SVG document (no XML declaration, which is optional).
///
/// Any options are accepted; the output is always well-formed.
///
/// ```
/// use qrlp_qr::{EcLevel, QrCode};
/// use qrlp_render::{render_svg, SvgOptions};
/// let code = QrCode::encode_text("hello", EcLevel::M)?;
/// let svg = render_svg(&code, &SvgOptions::default());
/// assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
/// assert!(svg.contains("viewBox=\"0 0 29 29\""));
/// assert!(svg.contains("<path fill=\"#000000\" d=\"M4 4h7v1h-7z"));
/// # Ok::<(), qrlp_qr::EncodeError>(())
/// ```
pub fn render_svg(code: &QrCode, opts: &SvgOptions) -> String {
    let mut out = String::new();
    write_svg(code, opts, &mut out);
    out
}

/// Like [`render_svg`], but appends to `out`, so that a buffer can be reused.
///
/// ```
/// use qrlp_qr::{EcLevel, QrCode};
/// use qrlp_render::{render_svg_into, SvgOptions};
/// let code = QrCode::encode_text("hello", EcLevel::M)?;
/// let mut page = String::from("<div>");
/// render_svg_into(&code, &SvgOptions::default(), &mut page);
/// page.push_str("</div>");
/// assert!(page.ends_with("</svg>\n</div>"));
/// # Ok::<(), qrlp_qr::EncodeError>(())
/// ```
pub fn render_svg_into(code: &QrCode, opts: &SvgOptions, out: &mut String) {
    write_svg(code, opts, out);
}

/// Appends ` {name}="#rrggbb"` and, when translucent, ` {name}-opacity="0.xyz"`.
fn push_paint(out: &mut String, attr: &str, c: Color) {
    out.push(' ');
    out.push_str(attr);
    out.push_str("=\"");
    c.push_hex(out, false);
    out.push('"');
    if !c.is_opaque() {
        out.push(' ');
        out.push_str(attr);
        out.push_str("-opacity=\"");
        // Thousandths, rounded; a = 0 → 0, a = 254 → 0.996.
        let milli = (u32::from(c.a) * 1000 + 127) / 255;
        if milli == 0 {
            out.push('0');
        } else {
            out.push_str("0.");
            let mut d = [milli / 100, milli / 10 % 10, milli % 10];
            let mut n = 3;
            while d[n - 1] == 0 {
                n -= 1;
            }
            for digit in &mut d[..n] {
                out.push(char::from(b'0' + *digit as u8));
            }
        }
        out.push('"');
    }
}

/// Number of maximal dark runs in a row.
fn count_runs(row: &[u64]) -> u32 {
    let mut carry = 0;
    let mut n = 0;
    for &w in row {
        // A run starts where a dark module follows a light one.
        n += (w & !((w << 1) | carry)).count_ones();
        carry = w >> 63;
    }
    n
}

pub(crate) fn write_svg<M: Modules + ?Sized>(code: &M, opts: &SvgOptions, out: &mut String) {
    let width = code.width();
    let border = u64::from(opts.border);
    let total = width as u64 + 2 * border;
    let runs: u64 = (0..width).map(|y| u64::from(count_runs(code.row(y)))).sum();
    let coord = digits(total) as u64;
    // Escaping may lengthen the title; the string grows further if it does.
    let title_len = opts.title.as_ref().map_or(0, String::len);
    // Per run: "M" x " " y "h" len "v1h-" len "z".
    let estimate = runs * (4 * coord + 8) + 400 + title_len as u64;
    out.reserve(usize::try_from(estimate).unwrap_or(0));

    out.push_str("<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\"");
    if opts.dimensions == SvgDimensions::WidthHeight {
        let px = match opts.size {
            Some(s) => u64::from(s),
            // Saturates rather than overflows for absurd options; the viewBox stays exact.
            None => total.saturating_mul(u64::from(opts.module_size)),
        };
        out.push_str(" width=\"");
        push_u64(out, px);
        out.push_str("\" height=\"");
        push_u64(out, px);
        out.push('"');
    }
    out.push_str(" viewBox=\"0 0 ");
    push_u64(out, total);
    out.push(' ');
    push_u64(out, total);
    out.push_str("\" shape-rendering=\"crispEdges\">\n");
    if let Some(title) = &opts.title {
        out.push_str("<title>");
        push_xml_escaped(out, title);
        out.push_str("</title>\n");
    }
    if opts.bg.a != 0 {
        out.push_str("<rect width=\"");
        push_u64(out, total);
        out.push_str("\" height=\"");
        push_u64(out, total);
        out.push('"');
        push_paint(out, "fill", opts.bg);
        out.push_str("/>\n");
    }
    if runs > 0 {
        out.push_str("<path");
        push_paint(out, "fill", opts.fg);
        out.push_str(" d=\"");
        let mut buf = AsciiBuf::new();
        for y in 0..width {
            let py = y as u64 + border;
            dark_runs(code.row(y), width, |start, end| {
                // At most 1 + 20 + 1 + 20 + 1 + 20 + 4 + 20 + 1 bytes.
                buf.reserve(88, out);
                let len = (end - start) as u64;
                buf.byte(b'M');
                buf.num(start as u64 + border);
                buf.byte(b' ');
                buf.num(py);
                buf.byte(b'h');
                buf.num(len);
                buf.bytes(b"v1h-");
                buf.num(len);
                buf.byte(b'z');
            });
        }
        buf.flush(out);
        out.push_str("\"/>\n");
    }
    out.push_str("</svg>\n");
}

#[cfg(test)]
mod tests;
