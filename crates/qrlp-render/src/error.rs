//! The error type of the raster renderers.

use crate::layout::MAX_IMAGE_SIDE;
use crate::png::MAX_DPI;

/// Why an image could not be rendered with the given options.
///
/// ```
/// use qrlp_qr::{EcLevel, QrCode};
/// use qrlp_render::{render_png, RenderError, RenderOptions};
/// let code = QrCode::encode_text("hi", EcLevel::L)?;
/// let opts = RenderOptions { size: Some(20), ..RenderOptions::default() };
/// // 21 modules + 2 × 4 border modules need at least 29 px.
/// assert_eq!(
///     render_png(&code, &opts),
///     Err(RenderError::SizeTooSmall { size: 20, minimum: 29 })
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// The exact image size asked for cannot give every module (border included) at least
    /// one pixel.
    #[error("image size {size} px is too small: the symbol and its border need at least {minimum} px (one pixel per module)")]
    SizeTooSmall {
        /// The size asked for, in pixels.
        size: u32,
        /// The smallest size that works: symbol width plus twice the border, in modules.
        minimum: u64,
    },
    /// The image side would exceed [`MAX_IMAGE_SIDE`] pixels.
    #[error("image side of {side} px is over the limit of {MAX_IMAGE_SIDE} px")]
    ImageTooLarge {
        /// The side the options ask for, in pixels (saturated at `u64::MAX`).
        side: u64,
    },
    /// `module_size` is 0; a module needs at least one pixel.
    #[error("module size must be at least 1 px")]
    InvalidModuleSize,
    /// The DPI cannot be stored in a PNG `pHYs` chunk (it must be 1 to [`MAX_DPI`]).
    #[error("dpi {dpi} is out of range 1..={MAX_DPI}")]
    InvalidDpi {
        /// The DPI asked for.
        dpi: u32,
    },
    /// The symbol has no modules and no border was asked for, so there is nothing to draw.
    /// A [`qrlp_qr::QrCode`] is never empty, so this only guards internal callers.
    #[error("the image would have no pixels")]
    EmptyImage,
}
