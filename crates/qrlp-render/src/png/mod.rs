//! PNG output, written by hand for speed.
//!
//! A QR image is made of long runs of identical rows: each module row becomes `module_px`
//! identical scanlines. So each distinct scanline is written once as literals (filter type
//! None, runs of equal bytes as distance-1 copies), and its repeats are DEFLATE copies at a
//! distance of one scanline, a few bits per 258 bytes. The Adler-32 of the repeats is folded
//! in algebraically rather than summed byte by byte. The result is a 1-bit greyscale (black
//! on white) or 1-bit, 2-entry palette image in a single IDAT chunk.

mod adler;
mod deflate;
pub(crate) mod indexed;

use qrlp_qr::QrCode;

use self::adler::Adler32;
use self::deflate::{BitWriter, ByteRun, Distance};
use crate::grid::{next_module, Modules};
use crate::layout::{layout_of, Layout};
use crate::{Color, RenderError, RenderOptions};

/// The largest DPI [`render_png`] records.
///
/// ```
/// assert_eq!(qrlp_render::png::MAX_DPI, 1_000_000);
/// ```
pub const MAX_DPI: u32 = 1_000_000;

pub(crate) const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

/// Renders `code` as a PNG file.
///
/// Black on opaque white gives a 1-bit greyscale image; any other colours a 1-bit palette
/// image (index 0 = `bg`, 1 = `fg`) with a `tRNS` chunk when either colour has alpha below
/// 255. `dpi` adds a `pHYs` chunk.
///
/// # Errors
/// See [`layout`](crate::layout()) for the size errors, and [`RenderError::InvalidDpi`] for a
/// DPI of 0 or over [`MAX_DPI`].
///
/// ```
/// use qrlp_qr::{EcLevel, QrCode};
/// use qrlp_render::{render_png, RenderOptions};
/// let code = QrCode::encode_text("https://example.com", EcLevel::M)?;
/// let png = render_png(&code, &RenderOptions::default())?;
/// assert_eq!(&png[1..4], b"PNG");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn render_png(code: &QrCode, opts: &RenderOptions) -> Result<Vec<u8>, RenderError> {
    let mut out = Vec::new();
    write_png(code, opts, &mut out)?;
    Ok(out)
}

/// Like [`render_png`], but appends the file to `out`, so that a caller can reuse one buffer
/// for many images. On error `out` is left unchanged.
///
/// ```
/// use qrlp_qr::{EcLevel, QrCode};
/// use qrlp_render::{render_png_into, RenderOptions};
/// let mut buf = Vec::new();
/// for text in ["one", "two"] {
///     buf.clear();
///     let code = QrCode::encode_text(text, EcLevel::L)?;
///     render_png_into(&code, &RenderOptions::default(), &mut buf)?;
///     assert!(buf.starts_with(b"\x89PNG\r\n\x1a\n"));
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn render_png_into(
    code: &QrCode,
    opts: &RenderOptions,
    out: &mut Vec<u8>,
) -> Result<(), RenderError> {
    write_png(code, opts, out)
}

/// Pixels per metre for a DPI, rounded to nearest (`dpi / 0.0254`; never a tie, as 127
/// does not divide 10000).
fn pixels_per_metre(dpi: u32) -> u32 {
    ((u64::from(dpi) * 10_000 + 127) / 254) as u32
}

/// Pixel bit values of the image: `light` for background, `!light` for dark modules.
#[derive(Clone, Copy)]
enum Format {
    /// Colour type 0, 1 bit: 0 = black (dark), 1 = white (light).
    Grey,
    /// Colour type 3, 1 bit: index 0 = bg (light), 1 = fg (dark).
    Palette { fg: Color, bg: Color },
}

pub(crate) fn write_png<M: Modules + ?Sized>(
    code: &M,
    opts: &RenderOptions,
    out: &mut Vec<u8>,
) -> Result<(), RenderError> {
    let layout = layout_of(code, opts)?;
    let ppm = match opts.dpi {
        None => None,
        Some(dpi) if (1..=MAX_DPI).contains(&dpi) => Some(pixels_per_metre(dpi)),
        Some(dpi) => return Err(RenderError::InvalidDpi { dpi }),
    };
    let format = if opts.fg == Color::BLACK && opts.bg == Color::WHITE {
        Format::Grey
    } else {
        Format::Palette {
            fg: opts.fg,
            bg: opts.bg,
        }
    };

    let side = layout.image_px;
    out.extend_from_slice(&SIGNATURE);

    let mut ihdr = [0u8; 13];
    ihdr[0..4].copy_from_slice(&side.to_be_bytes());
    ihdr[4..8].copy_from_slice(&side.to_be_bytes());
    ihdr[8] = 1; // bit depth
    ihdr[9] = match format {
        Format::Grey => 0,
        Format::Palette { .. } => 3,
    };
    // compression 0, filter method 0, no interlace
    chunk(out, b"IHDR", &ihdr);

    if let Format::Palette { fg, bg } = format {
        chunk(out, b"PLTE", &[bg.r, bg.g, bg.b, fg.r, fg.g, fg.b]);
        if !fg.is_opaque() || !bg.is_opaque() {
            chunk(out, b"tRNS", &[bg.a, fg.a]);
        }
    }
    if let Some(ppm) = ppm {
        let mut phys = [0u8; 9];
        phys[0..4].copy_from_slice(&ppm.to_be_bytes());
        phys[4..8].copy_from_slice(&ppm.to_be_bytes());
        phys[8] = 1; // unit: metre
        chunk(out, b"pHYs", &phys);
    }

    let start = begin_idat(out);
    let light_is_one = matches!(format, Format::Grey);
    write_zlib(code, &layout, light_is_one, out);
    end_image(out, start);
    Ok(())
}

/// Starts the one IDAT chunk (its length is filled in by [`end_image`]); returns where.
pub(crate) fn begin_idat(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(b"IDAT");
    start
}

/// Completes the IDAT chunk begun at `start` (length, CRC) and appends IEND.
pub(crate) fn end_image(out: &mut Vec<u8>, start: usize) {
    let len = (out.len() - start - 8) as u32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    let crc = crc32fast::hash(&out[start + 4..]);
    out.extend_from_slice(&crc.to_be_bytes());
    chunk(out, b"IEND", &[]);
}

/// Appends one chunk: length, type, data, CRC-32 of type and data.
pub(crate) fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let at = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32fast::hash(&out[at..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// Which rows a group of identical scanlines shows.
#[derive(Clone, Copy)]
enum Band {
    /// Quiet zone only.
    Blank,
    /// Module row `y`.
    Row(usize),
}

fn same_band<M: Modules + ?Sized>(code: &M, a: Band, b: Band) -> bool {
    match (a, b) {
        (Band::Blank, Band::Blank) => true,
        (Band::Row(y1), Band::Row(y2)) => code.row(y1) == code.row(y2),
        (Band::Row(y), Band::Blank) | (Band::Blank, Band::Row(y)) => {
            code.row(y).iter().all(|&w| w == 0)
        }
    }
}

/// The zlib stream (header, one fixed-Huffman DEFLATE block, Adler-32) of the filtered image.
fn write_zlib<M: Modules + ?Sized>(
    code: &M,
    layout: &Layout,
    light_is_one: bool,
    out: &mut Vec<u8>,
) {
    let width = code.width();
    let side = layout.image_px as usize;
    let module_px = layout.module_px as usize;
    let top = layout.offset_px as usize;
    let bottom = side - top - width * module_px;
    // Filter byte + packed pixels; at most 1 + 32768 / 8 = 4097 ≤ the 32768 window.
    let line_len = 1 + side.div_ceil(8);
    let dist = Distance::new(line_len);

    // At most width + 2 distinct groups; every other scanline is a copy.
    let groups = width + 2;
    let bound = deflate::bound(groups * line_len, side * line_len, groups);
    out.reserve(2 + bound + 8 + 4 + 12);
    out.extend_from_slice(&[0x78, 0x01]); // deflate, 32 KiB window, no dictionary

    // The scanline, plus slack for the packer's 8-byte stores.
    let mut line = vec![0u8; line_len + 8];
    // Byte runs found while packing: at most one per pixel run, and a scanline has at most
    // width + 1 of those (alternating colours, the margins merged into light runs).
    let mut runs = vec![ByteRun::default(); width + 2];
    let mut adler = Adler32::new();
    let mut bits = BitWriter::new(out, bound);
    bits.begin_fixed_block();

    let bands = std::iter::once((Band::Blank, top))
        .chain((0..width).map(|y| (Band::Row(y), module_px)))
        .chain(std::iter::once((Band::Blank, bottom)));
    let mut current: Option<(Band, usize)> = None;
    let mut emit = |band: Band, rows: usize, bits: &mut BitWriter<'_>| {
        // line[0] stays 0: filter type None.
        let nruns = pack_scanline(code, band, layout, light_is_one, &mut line[1..], &mut runs);
        bits.literals_with_runs(&line, line_len, &runs[..nruns]);
        let line = &line[..line_len];
        let copied = (rows - 1) * line_len;
        if copied >= deflate::MIN_MATCH {
            bits.copy(copied, dist);
        } else {
            // Only a 2-byte scanline (images up to 8 px wide) repeated once gets here.
            for &b in line.iter().cycle().take(copied) {
                bits.literal(b);
            }
        }
        adler = adler.repeat(Adler32::of(line), line_len as u64, rows as u64);
    };
    for (band, rows) in bands {
        if rows == 0 {
            continue;
        }
        current = match current {
            Some((b, n)) if same_band(code, b, band) => Some((b, n + rows)),
            Some((b, n)) => {
                emit(b, n, &mut bits);
                Some((band, rows))
            }
            None => Some((band, rows)),
        };
    }
    if let Some((b, n)) = current {
        emit(b, n, &mut bits);
    }
    bits.finish();
    out.extend_from_slice(&adler.value().to_be_bytes());
}

/// Writes the packed pixels (8 per byte, leftmost in the high bit) of one scanline to the
/// start of `line`, which has 8 bytes of slack past the scanline. Records in `runs` the runs
/// of at least [`ByteRun::MIN`] equal bytes that the pixel runs make (byte offsets counted
/// with the filter byte, i.e. one more than in `line`); returns how many.
fn pack_scanline<M: Modules + ?Sized>(
    code: &M,
    band: Band,
    layout: &Layout,
    light_is_one: bool,
    line: &mut [u8],
    runs: &mut [ByteRun],
) -> usize {
    let width = code.width();
    let side = layout.image_px;
    let m = layout.module_px;
    let off = layout.offset_px;
    let light = 0u64.wrapping_sub(u64::from(light_is_one));
    let mut packer = Packer {
        out: line,
        pos: 0,
        acc: 0,
        nbits: 0,
        runs,
        nruns: 0,
    };
    match band {
        Band::Blank => packer.push(light, side),
        Band::Row(y) => {
            // Maximal runs, alternately light and dark, with the margins merged into the
            // first and last light runs.
            let row = code.row(y);
            let mut light_from = 0;
            let mut x = 0;
            loop {
                let dark = next_module(row, x, width, true);
                if dark >= width {
                    packer.push(light, side - light_from);
                    break;
                }
                let dark_from = off + dark as u32 * m;
                packer.push(light, dark_from - light_from);
                x = next_module(row, dark, width, false);
                light_from = off + x as u32 * m;
                packer.push(!light, light_from - dark_from);
            }
        }
    }
    packer.finish(light)
}

/// Packs runs of equal bits, most significant first, into bytes. Like the DEFLATE bit
/// writer, it stores its whole accumulator at every step and advances past complete bytes.
struct Packer<'a> {
    out: &'a mut [u8],
    /// Next byte to complete.
    pos: usize,
    /// Pending bits, left-aligned; fewer than 8 between calls.
    acc: u64,
    nbits: u32,
    runs: &'a mut [ByteRun],
    nruns: usize,
}

impl Packer<'_> {
    /// Appends `count` bits, each equal to the bits of `fill` (all ones or all zeros), and
    /// notes the whole bytes they cover if there are enough for a run.
    #[inline(always)]
    fn push(&mut self, fill: u64, mut count: u32) {
        let at = self.pos as u32 * 8 + self.nbits;
        let first = at.div_ceil(8);
        let end = (at + count) / 8;
        if let Some(slot) = self.runs.get_mut(self.nruns) {
            // Written every time, kept only when long enough: no branch on the data.
            *slot = ByteRun {
                start: first + 1,
                len: end.saturating_sub(first),
            };
            self.nruns += usize::from(end >= first + ByteRun::MIN);
        }
        while count > 56 {
            self.push_short(fill, 56);
            count -= 56;
        }
        self.push_short(fill, count);
    }

    /// `count ≤ 56`, so with fewer than 8 pending bits everything fits in 63 bits.
    #[inline(always)]
    fn push_short(&mut self, fill: u64, count: u32) {
        let end = self.nbits + count;
        let mask = (u64::MAX >> self.nbits) & !(u64::MAX >> end);
        self.acc |= fill & mask;
        self.out[self.pos..self.pos + 8].copy_from_slice(&self.acc.to_be_bytes());
        let bytes = end / 8;
        self.pos += bytes as usize;
        self.acc <<= bytes * 8;
        self.nbits = end - bytes * 8;
    }

    /// Completes the last byte, padding with the bits of `fill`; returns the number of runs.
    fn finish(mut self, fill: u64) -> usize {
        if self.nbits > 0 {
            self.push_short(fill, 8 - self.nbits);
        }
        self.nruns
    }
}

#[cfg(test)]
pub(crate) mod tests;
