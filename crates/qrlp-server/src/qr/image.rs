//! QR images over HTTP: rendering, the strong `ETag`, `If-None-Match` and the caching
//! headers. Shared by every route that returns a QR image.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use qrlp_config::{Color, EcLevel, ImageFormat};
use qrlp_qr::{EncodeError, QrCode};
use qrlp_render::{RenderError, RenderOptions, SvgOptions};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// How big the image is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scale {
    /// Pixels per module; the image is `(modules + 2 × border) × n` pixels wide.
    BoxSize(u32),
    /// The exact image width in pixels; modules get `size / (modules + 2 × border)` pixels
    /// and the rest widens the quiet zone.
    Size(u32),
}

/// Everything about an image except its content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ImageSpec {
    /// PNG or SVG.
    pub format: ImageFormat,
    /// Error correction level.
    pub ecc: EcLevel,
    /// Size of the image.
    pub scale: Scale,
    /// Quiet zone in modules.
    pub border: u32,
    /// Dark modules.
    pub fill: Color,
    /// Light modules and quiet zone.
    pub back: Color,
}

impl ImageSpec {
    /// The strong entity tag of `payload` drawn with this spec: the first 128 bits of the
    /// SHA-256 of a canonical text of every input to the image, and of this crate's version
    /// so that a new renderer does not reuse old tags.
    ///
    /// ```
    /// use qrlp_server::qr::image::{ImageSpec, Scale};
    /// use qrlp_config::{Color, EcLevel, ImageFormat};
    /// let spec = ImageSpec {
    ///     format: ImageFormat::Png, ecc: EcLevel::M, scale: Scale::BoxSize(10), border: 1,
    ///     fill: Color::BLACK, back: Color::WHITE,
    /// };
    /// let tag = spec.etag("https://example.com");
    /// assert_eq!(tag.len(), 34);
    /// assert!(tag.starts_with('"') && tag.ends_with('"'));
    /// assert_ne!(tag, spec.etag("https://example.org"));
    /// ```
    pub fn etag(&self, payload: &str) -> String {
        // Every request computes this, so no formatting machinery and no allocation but
        // the result's.
        let mut number = itoa::Buffer::new();
        let mut hasher = Sha256::new();
        // Fields are joined by NUL, which none of them can contain except the payload,
        // and the payload comes last.
        let mut field = |parts: &[&[u8]]| {
            for part in parts {
                hasher.update(part);
            }
            hasher.update([0]);
        };
        field(&[b"qrlp-image-v1"]);
        field(&[env!("CARGO_PKG_VERSION").as_bytes()]);
        field(&[self.format.as_str().as_bytes()]);
        field(&[self.ecc.as_str().as_bytes()]);
        let (kind, n): (&[u8], u32) = match self.scale {
            Scale::BoxSize(n) => (b"box:", n),
            Scale::Size(n) => (b"size:", n),
        };
        field(&[kind, number.format(n).as_bytes()]);
        field(&[number.format(self.border).as_bytes()]);
        field(&[&rgba_hex(self.fill)]);
        field(&[&rgba_hex(self.back)]);
        field(&[payload.as_bytes()]);
        let digest = hasher.finalize();
        let mut tag = [b'"'; 34];
        hex::encode_to_slice(&digest[..16], &mut tag[1..33]).expect("16 bytes are 32 digits");
        std::str::from_utf8(&tag)
            .expect("quotes and hex digits")
            .to_owned()
    }

    /// Encodes `payload` and draws it.
    ///
    /// # Errors
    /// 400 when the payload does not fit a QR code at this level, or when a PNG `size` is
    /// too small to give every module a pixel; 500 for any other renderer failure.
    pub fn render(&self, payload: &str) -> Result<Vec<u8>, ApiError> {
        let code = QrCode::encode_text(payload, self.ecc).map_err(|e| match e {
            EncodeError::DataTooLong { .. } => ApiError::invalid_input(format!(
                "Too much data for a QR code at error correction {}; use a lower level or shorter input",
                self.ecc
            )),
            other => ApiError::internal(other),
        })?;
        let (module_size, size) = match self.scale {
            Scale::BoxSize(n) => (n, None),
            Scale::Size(n) => (1, Some(n)),
        };
        match self.format {
            ImageFormat::Png => {
                let opts = RenderOptions {
                    module_size,
                    border: self.border,
                    size,
                    fg: self.fill,
                    bg: self.back,
                    dpi: None,
                };
                qrlp_render::render_png(&code, &opts).map_err(|e| match e {
                    RenderError::SizeTooSmall { size, minimum } => ApiError::invalid_input(format!(
                        "size {size} is too small for this QR code: it needs at least {minimum} pixels"
                    )),
                    other => ApiError::internal(other),
                })
            }
            ImageFormat::Svg => {
                // Vector output: any size draws every module, so no minimum applies.
                let opts = SvgOptions {
                    border: self.border,
                    module_size,
                    size,
                    fg: self.fill,
                    bg: self.back,
                    ..SvgOptions::default()
                };
                Ok(qrlp_render::render_svg(&code, &opts).into_bytes())
            }
        }
    }
}

/// `#rrggbbaa`, so that `#000` and `#000000ff` hash alike.
fn rgba_hex(c: Color) -> [u8; 9] {
    let mut out = [b'#'; 9];
    hex::encode_to_slice([c.r, c.g, c.b, c.a], &mut out[1..]).expect("4 bytes are 8 digits");
    out
}

/// `public, max-age=N`. It is on every image response and `N` comes from the configuration,
/// so each thread makes the value once and shares it (a clone is a reference count of the
/// thread's own copy, not an allocation).
fn cache_control(max_age_secs: u64) -> HeaderValue {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(u64, HeaderValue)>> =
            const { std::cell::RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| match last {
        Some((secs, value)) if *secs == max_age_secs => value.clone(),
        _ => {
            let mut text = Vec::with_capacity(36);
            text.extend_from_slice(b"public, max-age=");
            text.extend_from_slice(itoa::Buffer::new().format(max_age_secs).as_bytes());
            let value = HeaderValue::from_maybe_shared(axum::body::Bytes::from(text))
                .expect("visible ASCII");
            *last = Some((max_age_secs, value.clone()));
            value
        }
    })
}

/// The request's `If-None-Match` values, an extractor: only these are taken from the
/// request, not a copy of all its headers.
#[derive(Debug, Default)]
pub struct IfNoneMatch(Vec<HeaderValue>);

impl IfNoneMatch {
    /// The `If-None-Match` values in `headers`.
    pub fn from_headers(headers: &HeaderMap) -> IfNoneMatch {
        IfNoneMatch(
            headers
                .get_all(header::IF_NONE_MATCH)
                .iter()
                .cloned()
                .collect(),
        )
    }

    /// Whether any value matches `etag` (weak comparison, as RFC 9110 asks for this header;
    /// `*` matches any).
    pub fn matches(&self, etag: &str) -> bool {
        self.0
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .any(|candidate| {
                candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
            })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfNoneMatch {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(IfNoneMatch::from_headers(&parts.headers))
    }
}

/// The response for an image request: 304 when `If-None-Match` matches, otherwise the
/// image from `render`. Both carry `ETag` and `Cache-Control`.
///
/// # Errors
/// Whatever `render` returns.
pub fn image_response(
    if_none_match: &IfNoneMatch,
    format: ImageFormat,
    etag: String,
    max_age_secs: u64,
    render: impl FnOnce() -> Result<Vec<u8>, ApiError>,
) -> Result<Response, ApiError> {
    image_response_named(if_none_match, format, etag, max_age_secs, None, render)
}

/// A file name stem safe in `Content-Disposition`: ASCII letters, digits, `-`, `_` and `.`
/// kept, runs of anything else become one `-`, at most 100 characters; `qr` when nothing
/// is left.
///
/// ```
/// use qrlp_server::qr::image::safe_filename;
/// assert_eq!(safe_filename("Spring sale \"2026\"/ümlaut\r\n"), "Spring-sale-2026-mlaut");
/// assert_eq!(safe_filename("../.."), "qr");
/// ```
pub fn safe_filename(label: &str) -> String {
    let mut out = String::with_capacity(label.len().min(100));
    for c in label.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || (c == '.' && !out.is_empty()) {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
        if out.len() >= 100 {
            break;
        }
    }
    let trimmed = out.trim_matches(|c| c == '-' || c == '.');
    if trimmed.is_empty() {
        "qr".to_string()
    } else {
        trimmed.to_string()
    }
}

/// [`image_response`] with `Content-Disposition: inline; filename="<stem>.<ext>"`; the
/// stem must come from [`safe_filename`] (`None`: `qr`).
///
/// # Errors
/// Whatever `render` returns.
pub fn image_response_named(
    if_none_match: &IfNoneMatch,
    format: ImageFormat,
    etag: String,
    max_age_secs: u64,
    stem: Option<&str>,
    render: impl FnOnce() -> Result<Vec<u8>, ApiError>,
) -> Result<Response, ApiError> {
    let not_modified = if_none_match.matches(&etag);
    // The tag's own buffer becomes the header's: no copy.
    let etag_value = HeaderValue::try_from(etag).map_err(ApiError::internal)?;
    let cache_control = cache_control(max_age_secs);
    if not_modified {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        r.headers_mut().insert(header::ETAG, etag_value);
        r.headers_mut().insert(header::CACHE_CONTROL, cache_control);
        return Ok(r);
    }
    let body = render()?;
    let (content_type, disposition) = match format {
        ImageFormat::Png => ("image/png", "inline; filename=\"qr.png\""),
        ImageFormat::Svg => ("image/svg+xml", "inline; filename=\"qr.svg\""),
    };
    let disposition = match stem {
        None => HeaderValue::from_static(disposition),
        Some(stem) => {
            HeaderValue::from_str(&format!("inline; filename=\"{stem}.{}\"", format.as_str()))
                .map_err(ApiError::internal)?
        }
    };
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_DISPOSITION, disposition);
    h.insert(header::ETAG, etag_value);
    h.insert(header::CACHE_CONTROL, cache_control);
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ImageSpec {
        ImageSpec {
            format: ImageFormat::Png,
            ecc: EcLevel::M,
            scale: Scale::BoxSize(10),
            border: 1,
            fill: Color::BLACK,
            back: Color::WHITE,
        }
    }

    #[test]
    fn etag_depends_on_every_input() {
        let base = spec().etag("x");
        let variants = [
            ImageSpec {
                format: ImageFormat::Svg,
                ..spec()
            },
            ImageSpec {
                ecc: EcLevel::H,
                ..spec()
            },
            ImageSpec {
                scale: Scale::BoxSize(11),
                ..spec()
            },
            ImageSpec {
                scale: Scale::Size(10),
                ..spec()
            },
            ImageSpec {
                border: 2,
                ..spec()
            },
            ImageSpec {
                fill: Color::rgb(1, 0, 0),
                ..spec()
            },
            ImageSpec {
                back: Color::rgba(255, 255, 255, 0),
                ..spec()
            },
        ];
        for v in variants {
            assert_ne!(v.etag("x"), base, "{v:?}");
        }
        assert_eq!(spec().etag("x"), base);
    }

    #[test]
    fn etag_is_the_hash_of_the_canonical_text() {
        let canonical = format!(
            "qrlp-image-v1\0{}\0png\0M\0size:300\01\0#000000ff\0#ffffff80\0https://x.org\0",
            env!("CARGO_PKG_VERSION")
        );
        let digest = Sha256::digest(canonical.as_bytes());
        let expected = format!("\"{}\"", hex::encode(&digest[..16]));
        let spec = ImageSpec {
            scale: Scale::Size(300),
            back: Color::rgba(255, 255, 255, 0x80),
            ..spec()
        };
        assert_eq!(spec.etag("https://x.org"), expected);
    }

    #[test]
    fn if_none_match_forms() {
        let tag = "\"abc\"";
        let check = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(v).unwrap());
            IfNoneMatch::from_headers(&h).matches(tag)
        };
        assert!(check("\"abc\""));
        assert!(check("W/\"abc\""));
        assert!(check("\"x\", \"abc\""));
        assert!(check("*"));
        assert!(!check("\"abcd\""));
        assert!(!check("abc"));
        assert!(!IfNoneMatch::default().matches(tag));
    }
}
