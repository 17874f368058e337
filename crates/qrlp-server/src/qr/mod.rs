//! The QR image API's input: the fields of seed 001 (`url`, `ecc`, `box_size`, `border`,
//! `fill_color`, `back_color`) with its defaults, limits and error texts, plus `data`,
//! `format`, `size` and seed 004's name `error_correction`.
//!
//! JSON bodies and query strings arrive as [`QrRequest`] and [`QrQuery`]; both become
//! [`Fields`], and [`parse`] turns those into a payload and an [`ImageSpec`] or the first
//! problem, in the order the fields are listed above.

pub mod image;
pub mod url;

use qrlp_config::limits::{BORDER, BOX_SIZE, SIZE};
use qrlp_config::{Color, EcLevel, ImageFormat, QrConfig};
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use image::{ImageSpec, Scale};
use url::normalize_url;

/// Messages the qr-api seed documents, and ours for the fields it does not have.
pub mod messages {
    /// No `url` (and no `data`).
    pub const URL_REQUIRED: &str = "Field 'url' is required";
    /// Any colour that is not `#RGB`, `#RRGGBB` or `#RRGGBBAA`.
    pub const INVALID_COLOR: &str = "Invalid color format. Use hex codes (e.g., #FF0000 or #F00)";
    /// Any `ecc` other than L, M, Q, H.
    pub const INVALID_ECC: &str = "Invalid error correction. Choose L, M, Q, H";
    /// `box_size` out of range or not a whole number.
    pub const BOX_SIZE_RANGE: &str = "box_size must be between 5 and 20";
    /// `border` out of range or not a whole number.
    pub const BORDER_RANGE: &str = "border must be between 1 and 10";
    /// `size` out of range or not a whole number.
    pub const SIZE_RANGE: &str = "size must be between 100 and 2000";
    /// `format` other than png or svg.
    pub const INVALID_FORMAT: &str = "Invalid format. Choose png or svg";
    /// Both `url` and `data`.
    pub const URL_AND_DATA: &str = "Provide either 'url' or 'data', not both";
    /// Both `box_size` and `size`.
    pub const BOX_SIZE_AND_SIZE: &str = "Provide either 'box_size' or 'size', not both";
    /// `ecc` and `error_correction` with different values.
    pub const ECC_TWICE: &str = "Provide either 'ecc' or 'error_correction', not both";
    /// `data` that is empty or not a string.
    pub const INVALID_DATA: &str = "Field 'data' must be a non-empty string";
    /// A query string that cannot be read (e.g. a parameter given twice).
    pub const INVALID_QUERY: &str = "Invalid query string";
}

/// Error correction level names, for the OpenAPI document.
#[derive(ToSchema)]
#[allow(dead_code)]
pub enum ErrorCorrection {
    /// ~7% recovery, maximum data capacity.
    L,
    /// ~15% recovery, the default.
    M,
    /// ~25% recovery.
    Q,
    /// ~30% recovery, maximum error tolerance.
    H,
}

/// Image format names, for the OpenAPI document.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum Format {
    /// `image/png`.
    Png,
    /// `image/svg+xml`.
    Svg,
}

/// The JSON body of `POST /v1/qr`. Every field but one of `url`/`data` is optional; absent
/// fields take the server's defaults (configurable, seed defaults shown). Unknown fields are
/// ignored.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({
    "url": "https://example.com", "ecc": "H", "box_size": 10, "border": 2,
    "fill_color": "#000000", "back_color": "#FFFFFF"
}))]
pub struct QrRequest {
    /// URL to encode (max 2000 characters; http or https; `https://` is prepended when there
    /// is no scheme; the fragment is stripped). Exactly one of `url` and `data`.
    #[schema(value_type = Option<String>, max_length = 2000, example = "https://example.com")]
    pub url: Option<Value>,
    /// Any text to encode instead of a URL. Exactly one of `url` and `data`.
    #[schema(value_type = Option<String>, min_length = 1)]
    pub data: Option<Value>,
    /// Error correction level.
    #[schema(value_type = Option<ErrorCorrection>, default = "M")]
    pub ecc: Option<Value>,
    /// Same as `ecc` (the name seed 004 uses).
    #[schema(value_type = Option<ErrorCorrection>)]
    pub error_correction: Option<Value>,
    /// Pixels per module. Not with `size`.
    #[schema(value_type = Option<u32>, minimum = 5, maximum = 20, default = 10)]
    pub box_size: Option<Value>,
    /// Exact image width and height in pixels (PNG; SVG width/height). Not with `box_size`.
    #[schema(value_type = Option<u32>, minimum = 100, maximum = 2000)]
    pub size: Option<Value>,
    /// Quiet zone width in modules.
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 10, default = 1)]
    pub border: Option<Value>,
    /// Dark module colour: `#RGB`, `#RRGGBB` or `#RRGGBBAA`.
    #[schema(value_type = Option<String>, default = "#000000", example = "#000000")]
    pub fill_color: Option<Value>,
    /// Light module and quiet zone colour: `#RGB`, `#RRGGBB` or `#RRGGBBAA`.
    #[schema(value_type = Option<String>, default = "#FFFFFF", example = "#FFFFFF")]
    pub back_color: Option<Value>,
    /// Image format.
    #[schema(value_type = Option<Format>, default = "png")]
    pub format: Option<Value>,
}

/// The query parameters of `GET /v1/qr`: the same fields as the JSON body.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QrQuery {
    /// URL to encode (max 2000 characters). Exactly one of `url` and `data`.
    #[param(max_length = 2000, example = "https://example.com")]
    pub url: Option<String>,
    /// Any text to encode instead of a URL.
    pub data: Option<String>,
    /// Error correction level: L, M, Q or H.
    #[param(value_type = Option<ErrorCorrection>)]
    pub ecc: Option<String>,
    /// Same as `ecc` (the name seed 004 uses).
    #[param(value_type = Option<ErrorCorrection>)]
    pub error_correction: Option<String>,
    /// Pixels per module, 5 to 20. Not with `size`.
    #[param(value_type = Option<u32>, minimum = 5, maximum = 20)]
    pub box_size: Option<String>,
    /// Exact image width in pixels, 100 to 2000. Not with `box_size`.
    #[param(value_type = Option<u32>, minimum = 100, maximum = 2000)]
    pub size: Option<String>,
    /// Quiet zone width in modules, 1 to 10.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 10)]
    pub border: Option<String>,
    /// Dark module colour (`#` encoded as `%23`).
    pub fill_color: Option<String>,
    /// Light module colour (`#` encoded as `%23`).
    pub back_color: Option<String>,
    /// png or svg.
    #[param(value_type = Option<Format>)]
    pub format: Option<String>,
}

/// One input value, from JSON or a query string.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Field<'a> {
    /// A string (every query value is one).
    Str(&'a str),
    /// A JSON whole number.
    Int(i64),
    /// Any other JSON value: a fraction, a boolean, an array, an object.
    Other,
}

impl<'a> Field<'a> {
    fn from_json(v: &'a Option<Value>) -> Option<Field<'a>> {
        match v.as_ref()? {
            Value::Null => None,
            Value::String(s) => Some(Field::Str(s)),
            Value::Number(n) => Some(
                n.as_i64()
                    .or_else(|| {
                        n.as_f64()
                            .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
                            .map(|f| f as i64)
                    })
                    .map_or(Field::Other, Field::Int),
            ),
            _ => Some(Field::Other),
        }
    }

    fn from_query(v: &'a Option<String>) -> Option<Field<'a>> {
        v.as_deref().map(Field::Str)
    }

    fn as_str(self) -> Option<&'a str> {
        match self {
            Field::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A whole number, from a JSON number or a decimal string.
    fn as_int(self) -> Option<i64> {
        match self {
            Field::Int(n) => Some(n),
            Field::Str(s) => s.trim().parse().ok(),
            Field::Other => None,
        }
    }
}

/// The fields of a request, whatever it came in.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[allow(missing_docs)]
pub struct Fields<'a> {
    pub url: Option<Field<'a>>,
    pub data: Option<Field<'a>>,
    pub ecc: Option<Field<'a>>,
    pub error_correction: Option<Field<'a>>,
    pub box_size: Option<Field<'a>>,
    pub size: Option<Field<'a>>,
    pub border: Option<Field<'a>>,
    pub fill_color: Option<Field<'a>>,
    pub back_color: Option<Field<'a>>,
    pub format: Option<Field<'a>>,
}

impl QrRequest {
    /// The fields of this body.
    pub fn fields(&self) -> Fields<'_> {
        Fields {
            url: Field::from_json(&self.url),
            data: Field::from_json(&self.data),
            ecc: Field::from_json(&self.ecc),
            error_correction: Field::from_json(&self.error_correction),
            box_size: Field::from_json(&self.box_size),
            size: Field::from_json(&self.size),
            border: Field::from_json(&self.border),
            fill_color: Field::from_json(&self.fill_color),
            back_color: Field::from_json(&self.back_color),
            format: Field::from_json(&self.format),
        }
    }
}

impl QrQuery {
    /// The fields of this query.
    pub fn fields(&self) -> Fields<'_> {
        Fields {
            url: Field::from_query(&self.url),
            data: Field::from_query(&self.data),
            ecc: Field::from_query(&self.ecc),
            error_correction: Field::from_query(&self.error_correction),
            box_size: Field::from_query(&self.box_size),
            size: Field::from_query(&self.size),
            border: Field::from_query(&self.border),
            fill_color: Field::from_query(&self.fill_color),
            back_color: Field::from_query(&self.back_color),
            format: Field::from_query(&self.format),
        }
    }
}

/// What to encode and how to draw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QrParams {
    /// The normalized URL or the data, exactly as it goes into the symbol.
    pub payload: String,
    /// How it is drawn.
    pub spec: ImageSpec,
}

/// Checks `f` against the rules and fills absent fields from `defaults`.
///
/// # Errors
/// 400 `INVALID_INPUT` with the message of the first field that is wrong.
pub fn parse(f: Fields<'_>, defaults: &QrConfig) -> Result<QrParams, ApiError> {
    use messages::*;
    let bad = ApiError::invalid_input;

    let payload = match (f.url, f.data) {
        (Some(_), Some(_)) => return Err(bad(URL_AND_DATA)),
        (Some(u), None) => {
            let s = u
                .as_str()
                .ok_or_else(|| bad(url::UrlError::Invalid.message()))?;
            normalize_url(s).map_err(|e| bad(e.message()))?
        }
        (None, Some(data)) => match data.as_str() {
            Some(s) if !s.is_empty() => s.to_string(),
            _ => return Err(bad(INVALID_DATA)),
        },
        (None, None) => return Err(bad(URL_REQUIRED)),
    };

    let ecc = match (f.ecc, f.error_correction) {
        (Some(a), Some(b)) if a != b => return Err(bad(ECC_TWICE)),
        (Some(v), _) | (None, Some(v)) => v
            .as_str()
            .and_then(|s| s.parse::<EcLevel>().ok())
            .ok_or_else(|| bad(INVALID_ECC))?,
        (None, None) => defaults.default_error_correction,
    };

    let in_range = |v: Field<'_>, range: &std::ops::RangeInclusive<u32>, msg: &'static str| {
        v.as_int()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| range.contains(n))
            .ok_or_else(|| bad(msg))
    };
    let scale = match (f.box_size, f.size) {
        (Some(_), Some(_)) => return Err(bad(BOX_SIZE_AND_SIZE)),
        (Some(v), None) => Scale::BoxSize(in_range(v, &BOX_SIZE, BOX_SIZE_RANGE)?),
        (None, Some(v)) => Scale::Size(in_range(v, &SIZE, SIZE_RANGE)?),
        (None, None) => Scale::BoxSize(defaults.default_box_size),
    };
    let border = match f.border {
        Some(v) => in_range(v, &BORDER, BORDER_RANGE)?,
        None => defaults.default_border,
    };

    let color = |v: Option<Field<'_>>, default: Color| match v {
        None => Ok(default),
        Some(v) => v
            .as_str()
            .and_then(|s| s.parse::<Color>().ok())
            .ok_or_else(|| bad(INVALID_COLOR)),
    };
    let fill = color(f.fill_color, defaults.default_fill_color)?;
    let back = color(f.back_color, defaults.default_back_color)?;

    let format = match f.format {
        None => defaults.default_format,
        Some(v) => v
            .as_str()
            .and_then(|s| s.parse::<ImageFormat>().ok())
            .ok_or_else(|| bad(INVALID_FORMAT))?,
    };

    Ok(QrParams {
        payload,
        spec: ImageSpec {
            format,
            ecc,
            scale,
            border,
            fill,
            back,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> Result<QrParams, String> {
        let req: QrRequest = serde_json::from_str(json).unwrap();
        parse(req.fields(), &QrConfig::default()).map_err(|e| e.message().to_string())
    }

    fn query(q: &str) -> Result<QrParams, String> {
        let req: QrQuery = serde_urlencoded_like(q);
        parse(req.fields(), &QrConfig::default()).map_err(|e| e.message().to_string())
    }

    /// Enough of a query parser for these tests: `a=b&c=d`, no escapes.
    fn serde_urlencoded_like(q: &str) -> QrQuery {
        let map: serde_json::Map<String, Value> = q
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap();
                (k.to_string(), Value::String(v.to_string()))
            })
            .collect();
        serde_json::from_value(Value::Object(map)).unwrap()
    }

    #[test]
    fn seed_defaults() {
        let p = body(r#"{"url": "https://example.com"}"#).unwrap();
        assert_eq!(p.payload, "https://example.com");
        assert_eq!(
            p.spec,
            ImageSpec {
                format: ImageFormat::Png,
                ecc: EcLevel::M,
                scale: Scale::BoxSize(10),
                border: 1,
                fill: Color::BLACK,
                back: Color::WHITE,
            }
        );
    }

    #[test]
    fn seed_full_example() {
        let p = body(
            r##"{"url": "https://example.com", "ecc": "H", "box_size": 10, "border": 2,
                "fill_color": "#000000", "back_color": "#FFFFFF"}"##,
        )
        .unwrap();
        assert_eq!(p.spec.ecc, EcLevel::H);
        assert_eq!(p.spec.border, 2);
    }

    #[test]
    fn seed_error_rows() {
        use messages::*;
        for (json, msg) in [
            (r#"{}"#, URL_REQUIRED),
            (r#"{"url": null}"#, URL_REQUIRED),
            (r#"{"url": ""}"#, "Please provide a URL"),
            (r#"{"url": "   "}"#, "Please provide a URL"),
            (
                r#"{"url": "ftp://example.com"}"#,
                "URL scheme must be http or https",
            ),
            (
                r#"{"url": "not a url at all"}"#,
                "Please check the URL and try again",
            ),
            (r#"{"url": "x.com", "fill_color": "red"}"#, INVALID_COLOR),
            (r##"{"url": "x.com", "back_color": "#12"}"##, INVALID_COLOR),
            (r#"{"url": "x.com", "back_color": 0}"#, INVALID_COLOR),
            (r#"{"url": "x.com", "ecc": "X"}"#, INVALID_ECC),
            (r#"{"url": "x.com", "ecc": 1}"#, INVALID_ECC),
            (r#"{"url": "x.com", "box_size": 4}"#, BOX_SIZE_RANGE),
            (r#"{"url": "x.com", "box_size": 21}"#, BOX_SIZE_RANGE),
            (r#"{"url": "x.com", "box_size": 10.5}"#, BOX_SIZE_RANGE),
            (r#"{"url": "x.com", "box_size": -7}"#, BOX_SIZE_RANGE),
            (r#"{"url": "x.com", "box_size": true}"#, BOX_SIZE_RANGE),
            (r#"{"url": "x.com", "border": 0}"#, BORDER_RANGE),
            (r#"{"url": "x.com", "border": 11}"#, BORDER_RANGE),
        ] {
            assert_eq!(body(json).unwrap_err(), msg, "{json}");
        }
        let long = format!(r#"{{"url": "https://example.com/{}"}}"#, "a".repeat(2000));
        assert_eq!(
            body(&long).unwrap_err(),
            "URL is too long (max 2000 characters)"
        );
    }

    #[test]
    fn beyond_the_seed() {
        use messages::*;
        let p = body(r#"{"data": "hello", "format": "SVG", "size": 300, "error_correction": "q"}"#)
            .unwrap();
        assert_eq!(p.payload, "hello");
        assert_eq!(p.spec.format, ImageFormat::Svg);
        assert_eq!(p.spec.scale, Scale::Size(300));
        assert_eq!(p.spec.ecc, EcLevel::Q);
        assert_eq!(
            body(r#"{"url": "a.com", "box_size": "12"}"#)
                .unwrap()
                .spec
                .scale,
            Scale::BoxSize(12)
        );
        assert_eq!(
            body(r#"{"url": "a.com", "box_size": 12.0}"#)
                .unwrap()
                .spec
                .scale,
            Scale::BoxSize(12)
        );
        assert_eq!(
            body(r#"{"url": "a.com", "ecc": "H", "error_correction": "H"}"#)
                .unwrap()
                .spec
                .ecc,
            EcLevel::H
        );
        for (json, msg) in [
            (r#"{"url": "a.com", "data": "x"}"#, URL_AND_DATA),
            (r#"{"data": ""}"#, INVALID_DATA),
            (r#"{"data": 5}"#, INVALID_DATA),
            (
                r#"{"url": "a.com", "box_size": 10, "size": 200}"#,
                BOX_SIZE_AND_SIZE,
            ),
            (r#"{"url": "a.com", "size": 99}"#, SIZE_RANGE),
            (r#"{"url": "a.com", "size": 2001}"#, SIZE_RANGE),
            (r#"{"url": "a.com", "format": "gif"}"#, INVALID_FORMAT),
            (
                r#"{"url": "a.com", "ecc": "H", "error_correction": "L"}"#,
                ECC_TWICE,
            ),
        ] {
            assert_eq!(body(json).unwrap_err(), msg, "{json}");
        }
    }

    #[test]
    fn bounds_are_inclusive() {
        for n in [5, 20] {
            assert!(body(&format!(r#"{{"url": "a.com", "box_size": {n}}}"#)).is_ok());
        }
        for n in [1, 10] {
            assert!(body(&format!(r#"{{"url": "a.com", "border": {n}}}"#)).is_ok());
        }
        for n in [100, 2000] {
            assert!(body(&format!(r#"{{"url": "a.com", "size": {n}}}"#)).is_ok());
        }
    }

    #[test]
    fn query_fields() {
        let p = query("url=example.com&box_size=5&border=10&format=svg&ecc=L").unwrap();
        assert_eq!(p.payload, "https://example.com");
        assert_eq!(p.spec.scale, Scale::BoxSize(5));
        assert_eq!(p.spec.border, 10);
        assert_eq!(p.spec.format, ImageFormat::Svg);
        assert_eq!(
            query("url=a.com&box_size=abc").unwrap_err(),
            messages::BOX_SIZE_RANGE
        );
        assert_eq!(query("").unwrap_err(), messages::URL_REQUIRED);
    }

    #[test]
    fn configured_defaults_apply() {
        let defaults = QrConfig {
            default_error_correction: EcLevel::H,
            default_box_size: 7,
            default_border: 3,
            default_fill_color: Color::rgb(1, 2, 3),
            default_back_color: Color::rgb(4, 5, 6),
            default_format: ImageFormat::Svg,
            cache_max_age_secs: 1,
            ..QrConfig::default()
        };
        let req: QrRequest = serde_json::from_str(r#"{"url": "a.com"}"#).unwrap();
        let p = parse(req.fields(), &defaults).unwrap();
        assert_eq!(
            p.spec,
            ImageSpec {
                format: ImageFormat::Svg,
                ecc: EcLevel::H,
                scale: Scale::BoxSize(7),
                border: 3,
                fill: Color::rgb(1, 2, 3),
                back: Color::rgb(4, 5, 6),
            }
        );
    }
}
