//! The one image path of live frames: the frame text as a QR symbol (`qrlp-qr`), drawn in
//! the configured style with an optional caption (`qrlp-render`).

use qrlp_config::{Config, QrStyle};
use qrlp_qr::{Options, QrCode, SymbolKind, SymbolVersion, Version};
use qrlp_render::{render_styled_png, Style, StyledOptions, LIVE_ACCENT};

use crate::{LiveFrame, ProtocolError};

/// How a frame's PNG looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageOptions {
    /// The seed's style: live (accent frame), professional (wide quiet zone), minimal.
    pub style: QrStyle,
    /// Draw a caption under the code: sequence number, UTC time, key id (the seed's
    /// `--include-text`).
    pub caption: bool,
    /// Pixels per module; `None` for `qr.default_box_size`.
    pub module_size: Option<u32>,
}

impl ImageOptions {
    /// The configured style (`qr.style`), no caption, `qr.default_box_size` pixels per module.
    pub fn from_config(config: &Config) -> ImageOptions {
        ImageOptions {
            style: config.qr.style,
            caption: false,
            module_size: None,
        }
    }
}

fn style_of(s: QrStyle) -> Style {
    match s {
        QrStyle::Live => Style::Live,
        QrStyle::Professional => Style::Professional,
        QrStyle::Minimal => Style::Minimal,
    }
}

/// The symbol of a frame text with `qr.default_error_correction` and at least `qr.version`.
///
/// # Errors
/// [`ProtocolError::Encode`] when the text does not fit a QR symbol.
pub fn encode_frame(text: &str, config: &Config) -> Result<QrCode, ProtocolError> {
    let q = &config.qr;
    let min = Version::new(q.version).unwrap_or(Version::MIN);
    let opts = Options {
        ecc: q.default_error_correction,
        symbol: SymbolKind::Qr {
            min,
            max: Version::MAX,
        },
        ..Options::default()
    };
    Ok(QrCode::encode_text_with(text, &opts)?)
}

pub(crate) fn version_number(code: &QrCode) -> u8 {
    match code.version() {
        SymbolVersion::Normal(v) => v.number(),
        SymbolVersion::Micro(v) => v.number(),
    }
}

/// The caption lines of a frame in a style: `QRLP LIVE #seq`, the UTC time and the key
/// (live); the sequence and time on one line and the key (professional); sequence and time
/// (minimal).
pub fn caption_lines(frame: &LiveFrame, style: QrStyle) -> Vec<String> {
    let ts = qrlp_live::format_timestamp(frame.timestamp_ms);
    // 2025-01-11T15:30:45.123Z → 2025-01-11 15:30:45 UTC
    let date = ts.get(..10).unwrap_or(&ts);
    let time = ts.get(11..19).unwrap_or("");
    let key = frame.key_id.as_deref().unwrap_or("unsigned");
    let seq = frame.sequence;
    match style {
        QrStyle::Live => vec![
            format!("QRLP LIVE #{seq}"),
            format!("{date} {time} UTC"),
            format!("key {key} {}", frame.algorithm.unwrap_or("")),
        ],
        QrStyle::Professional => vec![
            format!("QRLP #{seq} {date} {time} UTC"),
            format!("key {key}"),
        ],
        QrStyle::Minimal => vec![format!("#{seq} {time}Z")],
    }
}

pub(crate) fn render_code(
    code: &QrCode,
    frame: &LiveFrame,
    config: &Config,
    image: &ImageOptions,
) -> Result<Vec<u8>, ProtocolError> {
    let caption = if image.caption {
        caption_lines(frame, image.style)
    } else {
        Vec::new()
    };
    let q = &config.qr;
    let opts = StyledOptions {
        style: style_of(image.style),
        module_size: image.module_size.unwrap_or(q.default_box_size),
        fg: q.default_fill_color,
        bg: q.default_back_color,
        accent: LIVE_ACCENT,
        caption: &caption,
    };
    Ok(render_styled_png(code, &opts)?)
}

/// The PNG of a frame: its text encoded as [`encode_frame`] does, drawn as `image` says
/// with the configured colours.
///
/// # Errors
/// A text that does not fit a symbol; image options the renderer refuses.
pub fn render_frame(
    frame: &LiveFrame,
    config: &Config,
    image: &ImageOptions,
) -> Result<Vec<u8>, ProtocolError> {
    let code = encode_frame(&frame.text, config)?;
    render_code(&code, frame, config, image)
}
