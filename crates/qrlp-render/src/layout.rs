//! Raster options and the pixel geometry they give for a symbol.

use qrlp_qr::QrCode;

use crate::grid::Modules;
use crate::{Color, RenderError};

/// The largest image side, in pixels, the raster renderers produce. Larger requests are
/// refused with [`RenderError::ImageTooLarge`] rather than allocating without bound.
///
/// ```
/// assert_eq!(qrlp_render::MAX_IMAGE_SIDE, 32768);
/// ```
pub const MAX_IMAGE_SIDE: u32 = 32768;

/// Options for raster output ([`render_png`](crate::render_png)).
///
/// ```
/// use qrlp_render::{Color, RenderOptions};
/// let opts = RenderOptions {
///     module_size: 8,
///     fg: "#1e3a8a".parse()?,
///     dpi: Some(300),
///     ..RenderOptions::default()
/// };
/// assert_eq!(opts.border, 4);
/// assert_eq!(opts.bg, Color::WHITE);
/// # Ok::<(), qrlp_render::ColorError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RenderOptions {
    /// Pixels per module when `size` is `None`. Default 10. Must be at least 1.
    pub module_size: u32,
    /// Quiet zone around the symbol, in modules. Default 4 (what QR Code requires; Micro QR
    /// needs 2, see [`QrCode::quiet_zone`]).
    pub border: u32,
    /// Exact image side in pixels. When set, `module_size` is ignored: each module gets
    /// `size / (width + 2 × border)` pixels (at least 1) and the pixels left over widen the
    /// quiet zone, split evenly (left and top get the smaller half).
    pub size: Option<u32>,
    /// Colour of dark modules. Default black.
    pub fg: Color,
    /// Colour of light modules and the quiet zone. Default white.
    pub bg: Color,
    /// Resolution to record in the image (PNG `pHYs`), in dots per inch. Default none.
    pub dpi: Option<u32>,
}

impl Default for RenderOptions {
    /// 10 px per module, border 4, black on white, no exact size, no DPI.
    ///
    /// ```
    /// let o = qrlp_render::RenderOptions::default();
    /// assert_eq!((o.module_size, o.border, o.size, o.dpi), (10, 4, None, None));
    /// ```
    fn default() -> Self {
        RenderOptions {
            module_size: 10,
            border: 4,
            size: None,
            fg: Color::BLACK,
            bg: Color::WHITE,
            dpi: None,
        }
    }
}

/// Where a symbol lands in a square image.
///
/// The symbol occupies pixels `offset_px .. offset_px + width × module_px` on both axes; the
/// rest is quiet zone.
///
/// ```
/// use qrlp_qr::{EcLevel, QrCode};
/// use qrlp_render::{layout, Layout, RenderOptions};
/// let code = QrCode::encode_text("https://example.com/product/12345?ref=qr", EcLevel::M)?;
/// assert_eq!(code.width(), 29);
/// let l = layout(&code, &RenderOptions::default())?;
/// assert_eq!(l, Layout { image_px: 370, module_px: 10, offset_px: 40 });
/// // 300 px: 300 / 37 = 8 px per module, 4 px left over, 2 of them on the left/top.
/// let l = layout(&code, &RenderOptions { size: Some(300), ..RenderOptions::default() })?;
/// assert_eq!(l, Layout { image_px: 300, module_px: 8, offset_px: 34 });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Layout {
    /// Width and height of the image in pixels.
    pub image_px: u32,
    /// Side of one module in pixels.
    pub module_px: u32,
    /// Pixels from the left (and top) edge to the first module of the symbol.
    pub offset_px: u32,
}

/// Computes the pixel geometry of `code` under `opts`.
///
/// # Errors
/// [`RenderError::InvalidModuleSize`] when `module_size` is 0 (and no `size` is given),
/// [`RenderError::SizeTooSmall`] when `size` leaves less than a pixel per module,
/// [`RenderError::ImageTooLarge`] when the side would exceed [`MAX_IMAGE_SIDE`].
///
/// ```
/// use qrlp_qr::{EcLevel, QrCode};
/// use qrlp_render::{layout, RenderError, RenderOptions};
/// let code = QrCode::encode_text("hi", EcLevel::L)?;
/// let huge = RenderOptions { module_size: 5000, ..RenderOptions::default() };
/// assert_eq!(layout(&code, &huge), Err(RenderError::ImageTooLarge { side: 145_000 }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn layout(code: &QrCode, opts: &RenderOptions) -> Result<Layout, RenderError> {
    layout_of(code, opts)
}

pub(crate) fn layout_of<M: Modules + ?Sized>(
    code: &M,
    opts: &RenderOptions,
) -> Result<Layout, RenderError> {
    // At most 2^32 × 3 + a symbol width: no overflow in u64.
    let modules = code.width() as u64 + 2 * u64::from(opts.border);
    match opts.size {
        Some(size) => {
            if size > MAX_IMAGE_SIDE {
                return Err(RenderError::ImageTooLarge {
                    side: u64::from(size),
                });
            }
            if modules == 0 {
                return Err(RenderError::EmptyImage);
            }
            let module_px = u64::from(size) / modules;
            if module_px == 0 {
                return Err(RenderError::SizeTooSmall {
                    size,
                    minimum: modules,
                });
            }
            let leftover = u64::from(size) - module_px * modules;
            let offset = u64::from(opts.border) * module_px + leftover / 2;
            // module_px ≤ size and offset < size, both ≤ MAX_IMAGE_SIDE.
            Ok(Layout {
                image_px: size,
                module_px: module_px as u32,
                offset_px: offset as u32,
            })
        }
        None => {
            if opts.module_size == 0 {
                return Err(RenderError::InvalidModuleSize);
            }
            let side = modules.saturating_mul(u64::from(opts.module_size));
            if side > u64::from(MAX_IMAGE_SIDE) {
                return Err(RenderError::ImageTooLarge { side });
            }
            if side == 0 {
                return Err(RenderError::EmptyImage);
            }
            Ok(Layout {
                image_px: side as u32,
                module_px: opts.module_size,
                offset_px: opts.border * opts.module_size,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::test_grid::Grid;

    fn opts(module_size: u32, border: u32, size: Option<u32>) -> RenderOptions {
        RenderOptions {
            module_size,
            border,
            size,
            ..RenderOptions::default()
        }
    }

    #[test]
    fn module_size_layout() {
        let g = Grid::new(21);
        assert_eq!(
            layout_of(&g, &opts(10, 4, None)),
            Ok(Layout {
                image_px: 290,
                module_px: 10,
                offset_px: 40
            })
        );
        assert_eq!(
            layout_of(&g, &opts(1, 0, None)),
            Ok(Layout {
                image_px: 21,
                module_px: 1,
                offset_px: 0
            })
        );
        assert_eq!(
            layout_of(&g, &opts(0, 4, None)),
            Err(RenderError::InvalidModuleSize)
        );
    }

    #[test]
    fn exact_size_splits_leftover() {
        let g = Grid::new(21);
        // 29 modules into 101 px: 3 px each, 14 left over: 7 left/top, 7 right/bottom.
        let l = layout_of(&g, &opts(10, 4, Some(101))).unwrap();
        assert_eq!((l.image_px, l.module_px, l.offset_px), (101, 3, 12 + 7));
        // 100 px: 3 px each, 13 left over: 6 before, 7 after.
        let l = layout_of(&g, &opts(10, 4, Some(100))).unwrap();
        assert_eq!((l.module_px, l.offset_px), (3, 12 + 6));
        let after = l.image_px - l.offset_px - 21 * l.module_px;
        assert_eq!(after, 12 + 7);
        // Module size is ignored with an exact size, even 0.
        assert!(layout_of(&g, &opts(0, 4, Some(29))).is_ok());
        assert_eq!(
            layout_of(&g, &opts(10, 4, Some(28))),
            Err(RenderError::SizeTooSmall {
                size: 28,
                minimum: 29
            })
        );
        assert_eq!(
            layout_of(&g, &opts(10, 4, Some(0))),
            Err(RenderError::SizeTooSmall {
                size: 0,
                minimum: 29
            })
        );
    }

    #[test]
    fn absurd_sizes_are_errors() {
        let g = Grid::new(177);
        assert_eq!(
            layout_of(&g, &opts(u32::MAX, u32::MAX, None)),
            Err(RenderError::ImageTooLarge { side: u64::MAX })
        );
        assert_eq!(
            layout_of(&g, &opts(1, u32::MAX, None)),
            Err(RenderError::ImageTooLarge {
                side: 177 + 2 * u64::from(u32::MAX)
            })
        );
        assert_eq!(
            layout_of(&g, &opts(1, 4, Some(32769))),
            Err(RenderError::ImageTooLarge { side: 32769 })
        );
        assert_eq!(
            layout_of(&g, &opts(1, u32::MAX, Some(32768))),
            Err(RenderError::SizeTooSmall {
                size: 32768,
                minimum: 177 + 2 * u64::from(u32::MAX)
            })
        );
        let l = layout_of(&g, &opts(1, 4, Some(32768))).unwrap();
        assert_eq!(l.module_px, 32768 / 185);
        assert_eq!(
            layout_of(&Grid::new(0), &opts(1, 0, None)),
            Err(RenderError::EmptyImage)
        );
    }
}
