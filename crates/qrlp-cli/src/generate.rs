//! `qrlp generate`: one signed live frame, as a QR image and/or its JSON document.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::ValueEnum;
use qrlp_live::{
    format_timestamp, FrameContent, Generator, KeyStore, QrData, Seal, SigningIdentity, Suite,
    UserData,
};
use qrlp_qr::{EcLevel, Options, QrCode, SymbolVersion};
use qrlp_render::{render_png, render_terminal, RenderOptions, TerminalOptions};
use serde_json::{json, Value};

use crate::caption::{self, Raster, ADVANCE_H, ADVANCE_W};
use crate::live_common::{identity_hash, identity_path, now_ms, shared_keys, SharedKeys};

/// What `qrlp generate` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// The QR code as PNG (on the terminal without --output).
    Image,
    /// The JSON document (to standard output without --output).
    Json,
    /// Both: `<output>.png` and `<output>.json` (an extension on --output is dropped).
    Both,
}

/// How the image looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Style {
    /// Black on white in a thin teal frame; with --include-text a caption with sequence,
    /// time and key.
    Live,
    /// Plain black on white with a wider (6-module) quiet zone.
    Professional,
    /// The smallest legal quiet zone (4 modules), no decoration.
    Minimal,
}

impl Style {
    fn quiet_zone(self) -> usize {
        match self {
            Style::Professional => 6,
            Style::Live | Style::Minimal => 4,
        }
    }
}

const AFTER_HELP: &str = "\
The JSON document (--format json or both) is one object:
  format           \"compact\" or \"json\": the format of `frame`
  frame            the exact text inside the QR code (what `qrlp verify` checks)
  qr_data          the same content as the seed's QRData object, signed on its own
                   (identical to `frame` parsed when format is json)
  version, ecc     the QR symbol version (1-40) and error correction level
  key_id           hex key id of the signing key; algorithm: its suite name
  sequence_number, timestamp (ISO-8601 UTC), ttl_ms
`qrlp verify` accepts the whole document, `frame`, or `qr_data`.

With security.hmac_secret set (in --config or QRLP_HMAC_SECRET) every frame carries an
HMAC under it; with security.data_key_secret (QRLP_DATA_KEY_SECRET) --encrypt seals the user
data. `qrlp verify` checks both when given the same secrets.

The identity file is created on first use (mode 0600) in $QRLP_DATA_DIR (default
./qrlp-data); a sequence counter `<identity>.seq` beside it increases on every run.";

/// Arguments of `qrlp generate`.
#[derive(clap::Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub struct GenerateArgs {
    /// Output file (for --format both, the name without extension).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// What to write.
    #[arg(long, value_enum, default_value_t = OutputFormat::Image)]
    pub format: OutputFormat,
    /// Image style.
    #[arg(long, value_enum, default_value_t = Style::Live)]
    pub style: Style,
    /// Draw a caption (sequence, UTC time, key id) under the code.
    #[arg(long)]
    pub include_text: bool,
    /// Sign with post-quantum FN-DSA-512 instead of Ed25519 (adds an FN-DSA key to the
    /// identity file if it has none).
    #[arg(long, conflicts_with = "hybrid")]
    pub pq: bool,
    /// Sign with both Ed25519 and FN-DSA-512.
    #[arg(long)]
    pub hybrid: bool,
    /// Identity file [default: $QRLP_DATA_DIR/identity.json, or ./qrlp-data/identity.json].
    #[arg(long)]
    pub identity_file: Option<PathBuf>,
    /// User data: a JSON object, e.g. '{"user_text":"Welcome"}'.
    #[arg(long)]
    pub user_data: Option<String>,
    /// Put the compact frame (QL1:…, base45 over CBOR) in the code (the default).
    #[arg(long, conflicts_with = "json_frame")]
    pub compact: bool,
    /// Put the seed's QRData JSON text in the code instead of the compact frame.
    #[arg(long)]
    pub json_frame: bool,
    /// Validity of the frame in seconds (compact frames carry it; JSON verifiers apply
    /// their own, 300 s by default).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub ttl: u64,
    /// Error correction level: L, M, Q or H.
    #[arg(long, default_value = "M", value_parser = parse_ecc)]
    pub ecc: EcLevel,
    /// Pixels per module.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=32))]
    pub box_size: u32,
    /// Encrypt the user data (ChaCha20-Poly1305) under the configured data key.
    #[arg(long, requires = "user_data")]
    pub encrypt: bool,
    /// Configuration file (TOML, JSON or YAML) whose `security` section gives the HMAC and
    /// data keys; the environment overrides it.
    #[arg(long, short = 'c', env = "QRLP_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
}

fn parse_ecc(s: &str) -> Result<EcLevel, String> {
    s.parse::<EcLevel>().map_err(|e| e.to_string())
}

/// A generated frame and everything the outputs need.
struct Generated {
    suite: Suite,
    key_id: String,
    sequence: u64,
    timestamp_ms: u64,
    ttl_ms: u64,
    frame: String,
    qr_data: QrData,
    json_frame: bool,
}

/// Runs `qrlp generate`.
pub fn run(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let user_data = parse_user_data(args.user_data.as_deref())?;
    let suite = if args.hybrid {
        Suite::Hybrid
    } else if args.pq {
        Suite::FnDsa512
    } else {
        Suite::Ed25519
    };
    if args.format == OutputFormat::Both && args.output.is_none() {
        bail!("--format both needs --output NAME (writes NAME.png and NAME.json)");
    }
    let keys = shared_keys(args.config.as_deref())?;
    if args.encrypt && keys.data.is_none() {
        bail!("--encrypt needs a data key: set security.data_key_secret or QRLP_DATA_KEY_SECRET");
    }
    let path = identity_path(args.identity_file.as_deref());
    let now = now_ms();
    ensure_parent(&path)?;
    let store = KeyStore::load_or_generate(&path, suite != Suite::Ed25519, now)?;
    let identity = store.current();
    let sequence = next_sequence(&sequence_path(&path))?;

    let g = generate(&identity, &keys, suite, &args, sequence, now, user_data)?;
    let code = QrCode::encode_text_with(
        &g.frame,
        &Options {
            ecc: args.ecc,
            ..Options::default()
        },
    )
    .context("the frame does not fit in a QR code")?;

    let mut written = Vec::new();
    let (png_path, json_path) = match (&args.output, args.format) {
        (Some(o), OutputFormat::Both) => {
            let base = o.with_extension("");
            (
                Some(with_suffix(&base, ".png")),
                Some(with_suffix(&base, ".json")),
            )
        }
        (Some(o), OutputFormat::Image) => (Some(o.clone()), None),
        (Some(o), OutputFormat::Json) => (None, Some(o.clone())),
        (None, _) => (None, None),
    };
    let document = json_document(&g, &code)?;
    if let Some(p) = &png_path {
        let png = draw(&code, &g, args.style, args.include_text, args.box_size)?;
        fs::write(p, png).with_context(|| format!("cannot write {}", p.display()))?;
        written.push(p.display().to_string());
    }
    if let Some(p) = &json_path {
        fs::write(p, format!("{document}\n"))
            .with_context(|| format!("cannot write {}", p.display()))?;
        written.push(p.display().to_string());
    }
    if args.output.is_none() {
        let mut out = std::io::stdout().lock();
        match args.format {
            OutputFormat::Json => writeln!(out, "{document}")?,
            _ => write!(
                out,
                "{}",
                render_terminal(
                    &code,
                    &TerminalOptions {
                        border: None,
                        invert: false,
                    }
                )
            )?,
        }
        written.push("standard output".into());
    }
    eprintln!(
        "generated {} frame #{}: QR version {}-{}, key {} ({}), {} chars -> {}",
        if g.json_frame { "json" } else { "compact" },
        g.sequence,
        code.version(),
        code.ec_level(),
        g.key_id,
        g.suite,
        g.frame.len(),
        written.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

fn parse_user_data(text: Option<&str>) -> anyhow::Result<Option<UserData>> {
    let Some(text) = text else { return Ok(None) };
    match serde_json::from_str::<Value>(text).context("--user-data is not JSON")? {
        Value::Object(m) => Ok(Some(m)),
        _ => bail!("--user-data must be a JSON object, e.g. '{{\"user_text\":\"hello\"}}'"),
    }
}

fn generate(
    identity: &Arc<SigningIdentity>,
    keys: &SharedKeys,
    suite: Suite,
    args: &GenerateArgs,
    sequence: u64,
    now: u64,
    user_data: Option<UserData>,
) -> anyhow::Result<Generated> {
    let mut generator = Generator::new(identity.clone()).with_suite(suite)?;
    if let Some(k) = &keys.hmac {
        generator = generator.with_hmac_key(Arc::clone(k));
    }
    if let Some(k) = &keys.data {
        generator = generator.with_data_key(Arc::clone(k));
    }
    let seal = Seal {
        sign: true,
        encrypt: args.encrypt,
    };
    let ed = identity
        .public_key(Suite::Ed25519)
        .context("the identity has no Ed25519 key")?;
    let key_id = identity
        .key_id(suite)
        .context("the identity has no key for the suite")?
        .to_string();
    let content = FrameContent {
        sequence,
        timestamp_ms: now,
        ttl_ms: args.ttl.saturating_mul(1000),
        identity_hash: identity_hash(ed.as_bytes()),
        user_data,
        ..FrameContent::default()
    };
    let qr_data = generator.json_os(&content, seal)?;
    let frame = if args.json_frame {
        qr_data.to_json()
    } else {
        generator.compact_os(&content, seal)?
    };
    Ok(Generated {
        suite,
        key_id,
        sequence,
        timestamp_ms: now,
        ttl_ms: content.ttl_ms,
        frame,
        qr_data,
        json_frame: args.json_frame,
    })
}

fn json_document(g: &Generated, code: &QrCode) -> anyhow::Result<String> {
    let qr_data: Value =
        serde_json::from_str(&g.qr_data.to_json()).context("QRData is not JSON")?;
    let doc = json!({
        "format": if g.json_frame { "json" } else { "compact" },
        "frame": g.frame,
        "qr_data": qr_data,
        "version": match code.version() {
            SymbolVersion::Normal(v) => v.number(),
            SymbolVersion::Micro(_) => 0,
        },
        "ecc": code.ec_level().to_string(),
        "key_id": g.key_id,
        "algorithm": g.suite.name(),
        "sequence_number": g.sequence,
        "timestamp": format_timestamp(g.timestamp_ms),
        "ttl_ms": g.ttl_ms,
    });
    Ok(serde_json::to_string_pretty(&doc)?)
}

/// `base` with `suffix` appended to its file name (`qr.v2` + `.png` → `qr.v2.png`).
fn with_suffix(base: &Path, suffix: &str) -> PathBuf {
    let mut s = base.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Creates the identity file's directory (mode 0700 on Unix) if it is missing.
fn ensure_parent(path: &Path) -> anyhow::Result<()> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    if dir.exists() {
        return Ok(());
    }
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        b.mode(0o700);
    }
    b.create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

/// The sequence counter beside the identity file: `identity.json` → `identity.seq`.
fn sequence_path(identity: &Path) -> PathBuf {
    identity.with_extension("seq")
}

/// Reads, increments and stores the counter; returns the new value (1 on first use).
/// A lock file serialises concurrent runs; the new value is written to a temporary file
/// and renamed over the old one, so a crash leaves either the old or the new value.
fn next_sequence(path: &Path) -> anyhow::Result<u64> {
    let lock_path = path.with_extension("seq.lock");
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("cannot open {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("cannot lock {}", lock_path.display()))?;
    let current = match fs::read_to_string(path) {
        Ok(t) => t
            .trim()
            .parse::<u64>()
            .with_context(|| format!("{} does not hold a number", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let next = current
        .checked_add(1)
        .context("the sequence counter is exhausted")?;
    let tmp = path.with_extension(format!("seq.tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        writeln!(f, "{next}")?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    // The lock is released when `lock` is dropped.
    Ok(next)
}

const WHITE: u8 = 0;
const BLACK: u8 = 1;
const TEAL: u8 = 2;
/// White, black, and the live style's dark teal (#0F766E).
const PALETTE: [u8; 9] = [0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x0F, 0x76, 0x6E];
/// The largest composed image, in pixels.
const MAX_PIXELS: usize = 64 << 20;

/// The caption lines of a style.
fn caption_lines(g: &Generated, style: Style) -> Vec<String> {
    let ts = format_timestamp(g.timestamp_ms);
    // 2025-01-11T15:30:45.123Z → 2025-01-11 15:30:45 UTC
    let date = ts.get(..10).unwrap_or(&ts);
    let time = ts.get(11..19).unwrap_or("");
    match style {
        Style::Live => vec![
            format!("QRLP LIVE #{}", g.sequence),
            format!("{date} {time} UTC"),
            format!("key {} {}", g.key_id, g.suite),
        ],
        Style::Professional => vec![
            format!("QRLP #{} {date} {time} UTC", g.sequence),
            format!("key {}", g.key_id),
        ],
        Style::Minimal => vec![format!("#{} {time}Z", g.sequence)],
    }
}

/// The PNG of the code in `style`.
fn draw(
    code: &QrCode,
    g: &Generated,
    style: Style,
    include_text: bool,
    module_px: u32,
) -> anyhow::Result<Vec<u8>> {
    let q = style.quiet_zone();
    let framed = style == Style::Live;
    if !framed && !include_text {
        let opts = RenderOptions {
            module_size: module_px,
            border: u32::try_from(q).unwrap_or(4),
            ..RenderOptions::default()
        };
        return Ok(render_png(code, &opts)?);
    }
    let m = usize::try_from(module_px).unwrap_or(10);
    let side = (code.width() + 2 * q) * m;
    let frame = if framed { (m / 2).max(2) } else { 0 };
    let wanted = if include_text {
        caption_lines(g, style)
    } else {
        Vec::new()
    };
    // The largest font scale at which the longest line fits, at most half a module per
    // font pixel; lines that still do not fit at scale 1 are wrapped.
    let room = side.saturating_sub(2 * m);
    let longest = wanted.iter().map(|l| l.chars().count()).max().unwrap_or(1);
    let scale = (room / (longest * ADVANCE_W).max(1)).clamp(1, (m / 2).max(1));
    let lines: Vec<String> = wanted
        .iter()
        .flat_map(|l| caption::wrap(l, room / (ADVANCE_W * scale)))
        .collect();
    // The caption starts below the full quiet zone, so it never touches it.
    let caption_h = if lines.is_empty() {
        0
    } else {
        lines.len() * ADVANCE_H * scale + m
    };
    let width = side + 2 * frame;
    let height = side + caption_h + 2 * frame;
    if width.saturating_mul(height) > MAX_PIXELS {
        bail!("the image would be {width} × {height} px; use a smaller --box-size");
    }
    let mut r = Raster::new(width, height, WHITE);
    if framed {
        r.fill(0, 0, width, frame, TEAL);
        r.fill(0, height - frame, width, frame, TEAL);
        r.fill(0, 0, frame, height, TEAL);
        r.fill(width - frame, 0, frame, height, TEAL);
    }
    let origin = frame + q * m;
    for y in 0..code.width() {
        for x in 0..code.width() {
            if code.is_dark(x, y) {
                r.fill(origin + x * m, origin + y * m, m, m, BLACK);
            }
        }
    }
    let text_colour = if framed { TEAL } else { BLACK };
    let mut y = frame + side;
    for line in &lines {
        let w = caption::text_width(line.chars().count(), scale);
        let x = frame + side.saturating_sub(w) / 2;
        r.draw_text(x, y, scale, line, text_colour);
        y += ADVANCE_H * scale;
    }
    write_indexed_png(&r)
}

/// Writes a raster of palette indices as an 8-bit indexed PNG.
fn write_indexed_png(r: &Raster) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    let w = u32::try_from(r.width).context("image too wide")?;
    let h = u32::try_from(r.height).context("image too tall")?;
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Indexed);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_palette(&PALETTE[..]);
    let mut writer = enc.write_header().context("PNG header")?;
    writer.write_image_data(&r.pixels).context("PNG data")?;
    writer.finish().context("PNG end")?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_counter_increases_and_survives_garbage_detection() {
        let dir = std::env::temp_dir().join(format!("qrlp-seq-unit-{}", std::process::id()));
        let _ = fs::create_dir_all(&dir);
        let p = dir.join("identity.seq");
        let _ = fs::remove_file(&p);
        assert_eq!(next_sequence(&p).ok(), Some(1));
        assert_eq!(next_sequence(&p).ok(), Some(2));
        let _ = fs::write(&p, "not a number");
        assert!(next_sequence(&p).is_err());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn sequence_file_sits_beside_the_identity() {
        assert_eq!(
            sequence_path(Path::new("/d/identity.json")),
            Path::new("/d/identity.seq")
        );
        assert_eq!(sequence_path(Path::new("key")), Path::new("key.seq"));
    }
}
