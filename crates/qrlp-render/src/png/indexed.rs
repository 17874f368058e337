//! PNG of a small-palette raster (up to four colours, 2 bits per pixel), for styled codes
//! with a frame and a caption. Same DEFLATE writer as the symbol path: each scanline that
//! differs from the one before is written as literals (runs of equal bytes as distance-1
//! copies), each repeat as one copy at a distance of one scanline.

use super::adler::Adler32;
use super::chunk;
use super::deflate::{self, find_runs, BitWriter, ByteRun, Distance};
use crate::raster::Raster;
use crate::{Color, RenderError, MAX_IMAGE_SIDE};

/// Writes `raster` (indices into `palette`, at most 4 entries) as a 2-bit indexed PNG.
pub(crate) fn write_indexed(
    raster: &Raster,
    palette: &[Color],
    out: &mut Vec<u8>,
) -> Result<(), RenderError> {
    let (w, h) = (raster.width, raster.height);
    if w == 0 || h == 0 {
        return Err(RenderError::EmptyImage);
    }
    let side = w.max(h) as u64;
    if side > u64::from(MAX_IMAGE_SIDE) {
        return Err(RenderError::ImageTooLarge { side });
    }
    debug_assert!(!palette.is_empty() && palette.len() <= 4);
    out.extend_from_slice(&super::SIGNATURE);
    let mut ihdr = [0u8; 13];
    ihdr[0..4].copy_from_slice(&(w as u32).to_be_bytes());
    ihdr[4..8].copy_from_slice(&(h as u32).to_be_bytes());
    ihdr[8] = 2; // bit depth
    ihdr[9] = 3; // indexed colour
    chunk(out, b"IHDR", &ihdr);
    let plte: Vec<u8> = palette.iter().flat_map(|c| [c.r, c.g, c.b]).collect();
    chunk(out, b"PLTE", &plte);
    if palette.iter().any(|c| !c.is_opaque()) {
        let alpha: Vec<u8> = palette.iter().map(|c| c.a).collect();
        chunk(out, b"tRNS", &alpha);
    }

    let line_len = 1 + w.div_ceil(4);
    let dist = Distance::new(line_len);
    let start = super::begin_idat(out);
    out.extend_from_slice(&[0x78, 0x01]);
    let mut adler = Adler32::new();
    let mut line = vec![0u8; line_len];
    let mut prev: Option<&[u8]> = None;
    let mut repeats = 0usize;
    let mut runs: Vec<ByteRun> = Vec::new();
    {
        let bound = deflate::bound(h * line_len, h * line_len, h);
        let mut bits = BitWriter::new(out, bound);
        bits.begin_fixed_block();
        let flush = |bits: &mut BitWriter<'_>, repeats: usize| {
            if repeats == 0 {
                return;
            }
            let copied = repeats * line_len;
            if copied >= deflate::MIN_MATCH {
                bits.copy(copied, dist);
            }
        };
        for y in 0..h {
            let row = &raster.pixels[y * w..(y + 1) * w];
            if prev == Some(row) && line_len >= deflate::MIN_MATCH {
                repeats += 1;
                adler = adler.repeat(Adler32::of(&line), line_len as u64, 1);
                continue;
            }
            flush(&mut bits, repeats);
            repeats = 0;
            pack(row, &mut line);
            find_runs(&line, &mut runs);
            bits.literals_with_runs(&line, line_len, &runs);
            adler = adler.repeat(Adler32::of(&line), line_len as u64, 1);
            prev = Some(row);
        }
        flush(&mut bits, repeats);
        bits.finish();
    }
    out.extend_from_slice(&adler.value().to_be_bytes());
    super::end_image(out, start);
    Ok(())
}

/// Filter byte 0, then four 2-bit pixels per byte, leftmost in the high bits.
fn pack(row: &[u8], line: &mut [u8]) {
    line.fill(0);
    for (x, &p) in row.iter().enumerate() {
        line[1 + x / 4] |= (p & 3) << (6 - 2 * (x % 4));
    }
}
