//! Options shared by `qrlp encode` and `qrlp batch`: how to build the symbol and draw it.

use anyhow::{bail, Context};
use clap::ValueEnum;
use qrlp_qr::{EcLevel, Mask, MicroVersion, Mode, Options, QrCode, SymbolKind, Version};
use qrlp_render::{Color, RenderOptions, SvgOptions};

/// Image format of a written code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// PNG image.
    Png,
    /// SVG document.
    Svg,
}

impl Format {
    /// The format a file name asks for, by its extension.
    pub fn from_path(path: &std::path::Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "png" => Some(Format::Png),
            "svg" => Some(Format::Svg),
            _ => None,
        }
    }

    /// File extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Svg => "svg",
        }
    }
}

/// Encoding modes offered on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Digits only.
    Numeric,
    /// Digits, A-Z, space and $%*+-./:
    Alphanumeric,
    /// Any bytes (UTF-8 text).
    Byte,
    /// Shift JIS Kanji.
    Kanji,
}

/// Symbol and rendering options.
#[derive(clap::Args, Debug, Clone)]
pub struct SymbolArgs {
    /// Error correction level: L, M, Q or H.
    #[arg(long, default_value = "M", value_parser = parse_ecc)]
    pub ecc: EcLevel,
    /// Raise the ECC level as far as the chosen version still holds the data.
    #[arg(long)]
    pub boost_ecc: bool,
    /// Pixels per module (PNG) or user units per module (SVG).
    #[arg(long, default_value_t = 10)]
    pub box_size: u32,
    /// Quiet zone in modules [default: 4 for QR, 2 for Micro QR].
    #[arg(long)]
    pub border: Option<u32>,
    /// Exact image size in pixels; modules stay whole and the rest goes to the quiet zone.
    #[arg(long)]
    pub size: Option<u32>,
    /// Dark module colour: #RGB, #RRGGBB or #RRGGBBAA.
    #[arg(long, default_value = "#000000", value_parser = parse_color)]
    pub fg: Color,
    /// Light module colour: #RGB, #RRGGBB or #RRGGBBAA (#0000 for transparent).
    #[arg(long, default_value = "#ffffff", value_parser = parse_color)]
    pub bg: Color,
    /// Print resolution stored in the PNG (pHYs), dots per inch.
    #[arg(long)]
    pub dpi: Option<u32>,
    /// Make a Micro QR code (M1-M4) instead of a QR code.
    #[arg(long)]
    pub micro: bool,
    /// Encode everything in this one mode instead of the optimal mix.
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Version, or range of versions, to choose from: `7` or `5-10` (1-4 with --micro).
    #[arg(long)]
    pub version: Option<String>,
    /// Data mask 0-7 (0-3 with --micro) instead of the lowest-penalty one.
    #[arg(long)]
    pub mask: Option<u8>,
}

fn parse_ecc(s: &str) -> Result<EcLevel, String> {
    s.parse::<EcLevel>().map_err(|e| e.to_string())
}

fn parse_color(s: &str) -> Result<Color, String> {
    s.parse::<Color>().map_err(|e| e.to_string())
}

impl SymbolArgs {
    /// Encoder options these arguments ask for.
    pub fn options(&self) -> anyhow::Result<Options> {
        let range = self
            .version
            .as_deref()
            .map(|v| -> anyhow::Result<(u8, u8)> {
                let (a, b) = v.split_once('-').unwrap_or((v, v));
                let a: u8 = a
                    .trim()
                    .trim_start_matches(['M', 'm'])
                    .parse()
                    .context("--version: not a number")?;
                let b: u8 = b
                    .trim()
                    .trim_start_matches(['M', 'm'])
                    .parse()
                    .context("--version: not a number")?;
                Ok((a, b))
            })
            .transpose()?;
        let symbol = if self.micro {
            let (a, b) = range.unwrap_or((1, 4));
            let (Some(min), Some(max)) = (MicroVersion::new(a), MicroVersion::new(b)) else {
                bail!("--version: Micro QR versions are 1 to 4, got {a}-{b}");
            };
            SymbolKind::Micro { min, max }
        } else {
            let (a, b) = range.unwrap_or((1, 40));
            let (Some(min), Some(max)) = (Version::new(a), Version::new(b)) else {
                bail!("--version: QR versions are 1 to 40, got {a}-{b}");
            };
            SymbolKind::Qr { min, max }
        };
        let mask = match self.mask {
            None => None,
            Some(m) => Some(Mask::new(m).with_context(|| format!("--mask: {m} is not 0-7"))?),
        };
        Ok(Options {
            ecc: self.ecc,
            symbol,
            boost_ecc: self.boost_ecc,
            mask,
            mode: self.mode.map(|m| match m {
                ModeArg::Numeric => Mode::Numeric,
                ModeArg::Alphanumeric => Mode::Alphanumeric,
                ModeArg::Byte => Mode::Byte,
                ModeArg::Kanji => Mode::Kanji,
            }),
            ..Options::default()
        })
    }

    fn border_for(&self, code: &QrCode) -> u32 {
        self.border.unwrap_or(code.quiet_zone() as u32)
    }

    /// PNG rendering options for a code.
    pub fn png_options(&self, code: &QrCode) -> RenderOptions {
        RenderOptions {
            module_size: self.box_size,
            border: self.border_for(code),
            size: self.size,
            fg: self.fg,
            bg: self.bg,
            dpi: self.dpi,
        }
    }

    /// SVG rendering options for a code.
    pub fn svg_options(&self, code: &QrCode) -> SvgOptions {
        SvgOptions {
            border: self.border_for(code),
            module_size: self.box_size,
            size: self.size,
            fg: self.fg,
            bg: self.bg,
            ..SvgOptions::default()
        }
    }

    /// Encodes `text` and renders it in `format`.
    pub fn render(&self, opts: &Options, text: &str, format: Format) -> anyhow::Result<Vec<u8>> {
        let code = QrCode::encode_text_with(text, opts)?;
        Ok(match format {
            Format::Png => qrlp_render::render_png(&code, &self.png_options(&code))?,
            Format::Svg => qrlp_render::render_svg(&code, &self.svg_options(&code)).into_bytes(),
        })
    }
}
