//! A raster of palette indices: what styled codes (frame, caption) are drawn on before
//! they are written as an indexed PNG.

/// An image of palette indices, row-major, `width × height`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Raster {
    /// Width in pixels.
    pub(crate) width: usize,
    /// Height in pixels.
    pub(crate) height: usize,
    /// One palette index per pixel.
    pub(crate) pixels: Vec<u8>,
}

impl Raster {
    /// A raster filled with `index`.
    pub(crate) fn new(width: usize, height: usize, index: u8) -> Raster {
        Raster {
            width,
            height,
            pixels: vec![index; width.saturating_mul(height)],
        }
    }

    /// Fills the rectangle at (`x`, `y`) of size `w × h`, clipped to the raster.
    pub(crate) fn fill(&mut self, x: usize, y: usize, w: usize, h: usize, index: u8) {
        let x_end = x.saturating_add(w).min(self.width);
        let y_end = y.saturating_add(h).min(self.height);
        for row in y.min(y_end)..y_end {
            let start = row * self.width;
            self.pixels[start + x.min(x_end)..start + x_end].fill(index);
        }
    }

    /// Draws `text` with its top-left corner at (`x`, `y`), each font pixel `scale × scale`
    /// image pixels, clipped to the raster.
    pub(crate) fn draw_text(&mut self, x: usize, y: usize, scale: usize, text: &str, index: u8) {
        for (i, c) in text.chars().enumerate() {
            let gx = x.saturating_add(i.saturating_mul(crate::font::ADVANCE_W * scale));
            for (row, bits) in crate::font::glyph(c).iter().enumerate() {
                for col in 0..crate::font::GLYPH_W {
                    if bits & (0x10 >> col) != 0 {
                        self.fill(
                            gx.saturating_add(col * scale),
                            y.saturating_add(row * scale),
                            scale,
                            scale,
                            index,
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_drawn_inside_the_raster_and_clipped() {
        let mut r = Raster::new(20, 10, 0);
        r.draw_text(0, 0, 1, "I", 1);
        // 'I' row 0 is 0x0E: columns 1, 2, 3.
        assert_eq!(&r.pixels[0..5], &[0, 1, 1, 1, 0]);
        // Far outside: nothing, and no panic.
        r.draw_text(usize::MAX - 3, usize::MAX - 3, 7, "WWW", 1);
        r.fill(15, 8, 100, 100, 2);
        assert_eq!(r.pixels[9 * 20 + 19], 2);
    }
}
