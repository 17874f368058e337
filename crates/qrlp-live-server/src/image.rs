//! Finding and reading the QR code in an uploaded photo or screenshot (PNG or JPEG): the
//! `image` crate decodes it within limits, `rqrr` finds and reads the symbol.

use image::imageops::FilterType;
use image::{DynamicImage, GrayImage, ImageFormat, ImageReader, Limits};

/// Largest accepted width or height, in pixels.
pub const MAX_SIDE: u32 = 12_000;

/// Why no text came out of an image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Not a PNG or JPEG.
    #[error("not a PNG or JPEG image")]
    Format,
    /// Decoding failed or the image is over the limits.
    #[error("the image could not be decoded: {0}")]
    Decode(String),
    /// No readable QR code.
    #[error("no readable QR code was found in the image")]
    NoCode,
}

/// The text of the QR code in `bytes` (PNG or JPEG), at any rotation and scale.
///
/// # Errors
/// See [`ImageError`].
pub fn decode_qr(bytes: &[u8]) -> Result<String, ImageError> {
    let format = image::guess_format(bytes).map_err(|_| ImageError::Format)?;
    if !matches!(format, ImageFormat::Png | ImageFormat::Jpeg) {
        return Err(ImageError::Format);
    }
    let mut reader = ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| ImageError::Decode(e.to_string()))?;
    let grey = flatten(&img);
    // Large photos first at a size rqrr handles well, then at full size; small ones
    // also scaled up (thin modules in a screenshot).
    let (w, h) = grey.dimensions();
    let long = w.max(h);
    let mut sizes = Vec::new();
    if long > 1600 {
        sizes.push(1600);
        sizes.push(1000);
    }
    sizes.push(long);
    if long < 400 {
        sizes.push(long * 3);
    }
    for size in sizes {
        let scaled = if size == long {
            grey.clone()
        } else {
            let f = f64::from(size) / f64::from(long);
            let nw = ((f64::from(w) * f).round() as u32).max(1);
            let nh = ((f64::from(h) * f).round() as u32).max(1);
            image::imageops::resize(&grey, nw, nh, FilterType::Triangle)
        };
        if let Some(text) = read(&scaled) {
            return Ok(text);
        }
    }
    Err(ImageError::NoCode)
}

/// Luminance with transparency composited on white.
fn flatten(img: &DynamicImage) -> GrayImage {
    let rgba = img.to_rgba8();
    let (w, h) = rgba.dimensions();
    let mut out = GrayImage::new(w, h);
    for (o, p) in out.pixels_mut().zip(rgba.pixels()) {
        let [r, g, b, a] = p.0;
        let luma = (u32::from(r) * 299 + u32::from(g) * 587 + u32::from(b) * 114) / 1000;
        let a = u32::from(a);
        o.0[0] = ((luma * a + 255 * (255 - a)) / 255) as u8;
    }
    out
}

fn read(grey: &GrayImage) -> Option<String> {
    let (w, h) = grey.dimensions();
    let mut prepared =
        rqrr::PreparedImage::prepare_from_greyscale(w as usize, h as usize, |x, y| {
            grey.get_pixel(x as u32, y as u32).0[0]
        });
    prepared
        .detect_grids()
        .into_iter()
        .find_map(|g| g.decode().ok().map(|(_, text)| text))
}
