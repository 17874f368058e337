//! PNG output, written by hand for speed.
//!
//! A QR image is made of long runs of identical rows: each module row becomes `module_px`
//! identical scanlines. So each distinct scanline is built from the symbol's row a word at
//! a time and written once as literals (filter type None; the light margins left and right
//! of the symbol as distance-1 copies), and its repeats are DEFLATE copies at a distance of
//! one scanline, a few bits per 258 bytes. The Adler-32 of the repeats is folded in
//! algebraically rather than summed byte by byte. The result is a 1-bit greyscale (black
//! on white) or 1-bit, 2-entry palette image in a single IDAT chunk.

mod adler;
mod deflate;
pub(crate) mod indexed;
mod matcher;

use qrlp_qr::QrCode;

use self::adler::Adler32;
use self::deflate::{find_runs, BitWriter, ByteRun, CopyCodes, Distance};
use crate::grid::Modules;
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
    // Everything at once: the chunks around the image data (at most 90 bytes) and the
    // zlib stream's bound, so that the vector never moves.
    out.reserve(90 + zlib_bound(code.width(), &layout));
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

/// The module size from which scanlines of module rows are Huffman-coded with runs of equal
/// bytes as copies rather than stored: from two bytes a module, runs are long and many.
const RUNS_FROM_MODULE_PX: usize = 16;

/// The widest module whose group of four fits one 64-bit word (see `Scanline::quads`).
const MAX_QUAD_MODULE_PX: usize = 16;

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
        // Word by word: a row is one or a few words, less than a `memcmp` call costs.
        (Band::Row(y1), Band::Row(y2)) => {
            let (a, b) = (code.row(y1), code.row(y2));
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
        }
        (Band::Row(y), Band::Blank) | (Band::Blank, Band::Row(y)) => {
            code.row(y).iter().all(|&w| w == 0)
        }
    }
}

/// An upper bound of the zlib stream's length for a symbol `width` modules wide.
fn zlib_bound(width: usize, layout: &Layout) -> usize {
    let side = layout.image_px as usize;
    let line_len = 1 + side.div_ceil(8);
    // At most width + 2 distinct groups; every other scanline is a copy. Each group also
    // ends a block, stores and starts another: under 8 bytes more. Then the zlib header and
    // the Adler-32.
    let groups = width + 2;
    deflate::bound(groups * line_len, side * line_len, groups) + groups * 8 + 2 + 4
}

/// The zlib stream (header, fixed-Huffman and stored DEFLATE blocks, Adler-32) of the
/// filtered image.
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

    let bound = zlib_bound(width, layout);
    out.reserve(bound);
    out.extend_from_slice(&[0x78, 0x01]); // deflate, 32 KiB window, no dictionary

    let mut scanline = Scanline::new(layout, width, light_is_one);
    let blank_runs = scanline.blank;
    let margins = scanline.margins;
    let mut runs = Vec::new();
    let mut copy_codes = CopyCodes::default();
    let mut adler = Adler32::new();
    let mut bits = BitWriter::new(out, bound);
    bits.begin_open_fixed_block();

    let bands = std::iter::once((Band::Blank, top))
        .chain((0..width).map(|y| (Band::Row(y), module_px)))
        .chain(std::iter::once((Band::Blank, bottom)));
    let mut current: Option<(Band, usize)> = None;
    let mut emit = |band: Band, rows: usize, bits: &mut BitWriter<'_>| {
        let line = scanline.build(code, band);
        match band {
            // All light: a literal filter byte, one light byte and a copy of it.
            Band::Blank => bits.literals_with_runs(line, line_len, blank_runs.as_slice()),
            // Modules of two bytes or more make runs of equal bytes worth finding: literals
            // and distance-1 copies.
            Band::Row(_) if module_px >= RUNS_FROM_MODULE_PX => {
                find_runs(&line[..line_len], &mut runs);
                bits.literals_with_runs(line, line_len, &runs);
            }
            // Smaller ones: the light margins as literals and copies around the symbol's
            // bytes, stored.
            Band::Row(_) => {
                let m = margins;
                if let Some(run) = m.left_run {
                    bits.literals_with_runs(line, m.left_end, &[run]);
                }
                bits.stored(&line[m.left_end..m.right_from]);
                if let Some(run) = m.right_run {
                    bits.literals_with_runs_from(line, m.right_from, line_len, &[run]);
                }
            }
        }
        let line = &line[..line_len];
        let copied = (rows - 1) * line_len;
        if copied >= deflate::MIN_MATCH {
            bits.copy_cached(copied, dist, &mut copy_codes);
        } else {
            // Only a 2-byte scanline (images up to 8 px wide) repeated once gets here.
            for &b in line.iter().cycle().take(copied) {
                bits.literal(b);
            }
        }
        adler = adler.append_repeated(line, rows as u64);
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
    bits.finish_open();
    out.extend_from_slice(&adler.value().to_be_bytes());
}

/// Builds filtered scanlines (filter type None, then the pixels 8 per byte, leftmost in the
/// high bit) of one image.
///
/// The pixels are set in 64-bit words, pixel `p` at bit `63 - p % 64` of word `p / 64`, so
/// that each word's big-endian bytes are the scanline's bytes: a dark module is one or two
/// masked ORs, whatever the module size, and the words become bytes eight at a time.
struct Scanline {
    /// Dark pixels of the scanline being built, and one more word of slack that a group of
    /// four modules may spill into (always left clear).
    words: Vec<u64>,
    /// For modules of at most 16 px: the pixels of four modules (bit `k` of the index is
    /// module `k`), left-aligned, so that a row is set four modules at a time without a
    /// branch on its content. `None` for wider modules, which are set run by run.
    quads: Option<[u64; 16]>,
    /// Filter byte, then the words' bytes (the last word may run past the scanline).
    line: Vec<u8>,
    /// XOR turning dark bits into stored bits: all ones when light is stored as 1.
    flip: u64,
    module_px: usize,
    offset_px: usize,
    /// The run of equal bytes of a blank (quiet zone only) scanline, when long enough.
    blank: Option<ByteRun>,
    /// The whole light bytes left and right of the symbol in a scanline of a module row.
    margins: Margins,
}

/// The light margins of a module row's scanline that are long enough to be worth a copy:
/// bytes `..left_end` (the filter byte, then whole light bytes) and `right_from..`, each
/// with its run of equal bytes; without a run, `left_end` is 0 and `right_from` the end.
/// Offsets count the filter byte.
#[derive(Clone, Copy)]
struct Margins {
    left_end: usize,
    left_run: Option<ByteRun>,
    right_from: usize,
    right_run: Option<ByteRun>,
}

fn long_enough(run: ByteRun) -> Option<ByteRun> {
    (run.len >= ByteRun::MIN).then_some(run)
}

impl Scanline {
    fn new(layout: &Layout, width: usize, light_is_one: bool) -> Scanline {
        let side = layout.image_px as usize;
        let nwords = side.div_ceil(64);
        let bytes = side.div_ceil(8);
        let blank = ByteRun {
            start: 1,
            len: bytes as u32,
        };
        let offset_px = layout.offset_px as usize;
        let left_bytes = offset_px / 8;
        // The byte holding the symbol's last pixel, then the light ones (with the padding
        // bits of the last byte, which are light too).
        let symbol_end = offset_px + width * layout.module_px as usize;
        let right_from = 1 + symbol_end.div_ceil(8);
        // A margin too short for a copy is stored with the symbol's bytes: 8 bits a byte
        // rather than 8 or 9 as a literal, and no literal to code.
        let left_run = long_enough(ByteRun {
            start: 1,
            len: left_bytes as u32,
        });
        let right_run = long_enough(ByteRun {
            start: right_from as u32,
            len: (1 + bytes - right_from) as u32,
        });
        let margins = Margins {
            left_end: if left_run.is_some() {
                1 + left_bytes
            } else {
                0
            },
            left_run,
            right_from: if right_run.is_some() {
                right_from
            } else {
                1 + bytes
            },
            right_run,
        };
        let module_px = layout.module_px as usize;
        let quads = (module_px <= MAX_QUAD_MODULE_PX).then(|| {
            let module = u64::MAX << (64 - module_px);
            std::array::from_fn(|v| {
                (0..4)
                    .filter(|k| v >> k & 1 != 0)
                    .fold(0, |acc, k| acc | module >> (k * module_px))
            })
        });
        Scanline {
            words: vec![0; nwords + 1],
            quads,
            line: vec![0; 1 + nwords * 8],
            flip: 0u64.wrapping_sub(u64::from(light_is_one)),
            module_px: layout.module_px as usize,
            offset_px: layout.offset_px as usize,
            blank: long_enough(blank),
            margins,
        }
    }

    /// The scanline of `band`, with slack past its end.
    fn build<M: Modules + ?Sized>(&mut self, code: &M, band: Band) -> &[u8] {
        if let Band::Row(y) = band {
            let m = self.module_px;
            let width = code.width();
            if let Some(quads) = &self.quads {
                // Four modules at a time: each group's pixels (at most 64) land in one word
                // or straddle two. The two words being filled are kept in a register and
                // stored as the position moves on, never read back from memory.
                let quad_px = 4 * m;
                let mut from = self.offset_px;
                let mut at = from / 64;
                let mut pending = 0u128;
                for (i, &word) in code.row(y).iter().enumerate() {
                    let groups = (width - i * 64).min(64).div_ceil(4);
                    for g in 0..groups {
                        let next = from / 64;
                        self.words[at] = (pending >> 64) as u64;
                        // Moved on by one word or not at all: shift by 64 or 0 bits.
                        pending <<= (next - at) * 64;
                        at = next;
                        let pixels = quads[(word >> (4 * g) & 15) as usize];
                        pending |= (u128::from(pixels) << 64) >> (from % 64);
                        from += quad_px;
                    }
                }
                self.words[at] = (pending >> 64) as u64;
                self.words[at + 1] = pending as u64;
            } else {
                self.set_runs(code, y, m);
            }
        }
        // line[0] stays 0: filter type None. The words are left clear for the next line.
        for (bytes, word) in self.line[1..].chunks_exact_mut(8).zip(&mut self.words) {
            bytes.copy_from_slice(&(*word ^ self.flip).to_be_bytes());
            *word = 0;
        }
        // The slack word past the line (a group of four spilling past the image).
        if let Some(last) = self.words.last_mut() {
            *last = 0;
        }
        &self.line
    }

    /// Sets the dark pixels of module row `y` run by run (modules wider than
    /// [`MAX_QUAD_MODULE_PX`]).
    fn set_runs<M: Modules + ?Sized>(&mut self, code: &M, y: usize, m: usize) {
        for (i, &word) in code.row(y).iter().enumerate() {
            // Each run of dark modules in the word at once (a run across two words is set
            // in two parts).
            let mut dark = word;
            while dark != 0 {
                let start = dark.trailing_zeros();
                let len = (!(dark >> start)).trailing_zeros();
                dark &= u64::MAX.checked_shl(start + len).unwrap_or(0);
                let x = i * 64 + start as usize;
                let from = self.offset_px + x * m;
                set_pixels(&mut self.words, from, from + len as usize * m);
            }
        }
    }
}

/// Sets pixels `from..to` (`from < to`) of a scanline held as big-endian bit words.
#[inline(always)]
fn set_pixels(words: &mut [u64], from: usize, to: usize) {
    let (first, last) = (from / 64, (to - 1) / 64);
    let head = u64::MAX >> (from % 64);
    let tail = u64::MAX << (63 - (to - 1) % 64);
    if first == last {
        words[first] |= head & tail;
    } else {
        words[first] |= head;
        words[first + 1..last].fill(u64::MAX);
        words[last] |= tail;
    }
}

#[cfg(test)]
pub(crate) mod tests;
