//! PNG of a small-palette raster (up to four colours, 2 bits per pixel), for styled codes
//! with a frame and a caption (and the live frames). Same DEFLATE writer as the symbol
//! path: each repeat of the scanline before is one copy at a distance of one scanline; a
//! scanline that differs is written with the longest earlier matches a hash-chain search
//! finds ([`Matcher`]) and literals between them, about a third of the literals alone.

use super::adler::Adler32;
use super::chunk;
use super::deflate::{self, BitWriter, Distance};
use super::matcher::Matcher;
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
    // The whole filtered image: matches may reach into earlier scanlines.
    let mut data = vec![0u8; h * line_len];
    for (y, line) in data.chunks_exact_mut(line_len).enumerate() {
        pack(&raster.pixels[y * w..(y + 1) * w], line);
    }
    let dist = Distance::new(line_len);
    let start = super::begin_idat(out);
    out.extend_from_slice(&[0x78, 0x01]);
    let mut matcher = Matcher::new(data.len());
    let mut repeats = 0usize;
    // Each repeat run folds in at once (see `adler`).
    let mut adler = Adler32::new();
    {
        let bound = deflate::bound(h * line_len, h * line_len, h);
        let mut bits = BitWriter::new(out, bound);
        bits.begin_fixed_block();
        // A run of repeated scanlines: one copy at a distance of one scanline; the last
        // copy's positions become the nearest candidates for what follows.
        let flush = |bits: &mut BitWriter<'_>,
                     matcher: &mut Matcher,
                     adler: &mut Adler32,
                     y: usize,
                     repeats: usize| {
            if repeats == 0 {
                return;
            }
            bits.copy(repeats * line_len, dist);
            let last = (y - 1) * line_len;
            let line = &data[last..last + line_len];
            *adler = adler.repeat(Adler32::of(line), line_len as u64, repeats as u64);
            for p in last..last + line_len {
                matcher.insert(&data, p);
            }
        };
        for y in 0..h {
            let line = y * line_len..(y + 1) * line_len;
            if y > 0
                && line_len >= deflate::MIN_MATCH
                && data[line.clone()] == data[line.start - line_len..line.start]
            {
                repeats += 1;
                continue;
            }
            flush(&mut bits, &mut matcher, &mut adler, y, repeats);
            repeats = 0;
            adler.update(&data[line.clone()]);
            let mut p = line.start;
            while p < line.end {
                if let Some((len, back)) = matcher.longest(&data, p, line.end) {
                    bits.matched(len, Distance::new(back));
                    for q in p..p + len {
                        matcher.insert(&data, q);
                    }
                    p += len;
                } else {
                    bits.literal(data[p]);
                    matcher.insert(&data, p);
                    p += 1;
                }
            }
        }
        flush(&mut bits, &mut matcher, &mut adler, h, repeats);
        bits.finish();
    }
    out.extend_from_slice(&adler.value().to_be_bytes());
    super::end_image(out, start);
    Ok(())
}

/// Filter byte 0, then four 2-bit pixels per byte, leftmost in the high bits.
fn pack(row: &[u8], line: &mut [u8]) {
    for (x, &p) in row.iter().enumerate() {
        line[1 + x / 4] |= (p & 3) << (6 - 2 * (x % 4));
    }
}
