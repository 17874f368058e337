//! `qrlp verify`: check a live frame from text, a file or a photo of the code.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use qrlp_config::Config;
use qrlp_live::{
    format_timestamp, KeySet, KeyStore, VerificationReport, COMPACT_PREFIX, MAX_FRAME_TEXT,
};
use serde_json::Value;

const AFTER_HELP: &str = "\
The frame may be compact text (QL2:…), the seed's QRData JSON, or the JSON document written
by `qrlp generate`: then its frame is verified and every field the document shows is checked
against it (reason document_mismatch when one disagrees). `-` reads standard input.

Keys come from the identity file (read only; never created here) or from an exported key
set (`qrlp keys export`). The identity hash is checked against the signing key.

The HMAC is checked with security.hmac_secret (in --config or QRLP_HMAC_SECRET), else with
$QRLP_DATA_DIR/hmac.secret when it exists (never created here); with
security.data_key_secret (QRLP_DATA_KEY_SECRET) encrypted user data is decrypted and shown.
Without them those layers are reported as not checked.

Exit status: 0 valid; 1 invalid (the reason is printed); 2 unusable input (unreadable file,
no QR code in the image, missing keys).";

/// Arguments of `qrlp verify`.
#[derive(clap::Args, Debug)]
#[command(after_help = AFTER_HELP)]
#[command(group = clap::ArgGroup::new("input").required(true).args(["frame", "file", "image"]))]
pub struct VerifyArgs {
    /// The frame text, or `-` for standard input.
    pub frame: Option<String>,
    /// Read the frame from this file.
    #[arg(short, long)]
    pub file: Option<PathBuf>,
    /// Read the frame from a QR code in this PNG image.
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// Identity file whose public keys verify the frame [default: $QRLP_DATA_DIR/identity.json,
    /// or ./qrlp-data/identity.json].
    #[arg(long, conflicts_with = "keys")]
    pub identity_file: Option<PathBuf>,
    /// An exported public key set (JSON) to verify with instead of an identity file.
    #[arg(long)]
    pub keys: Option<PathBuf>,
    /// Print every verification layer.
    #[arg(short, long)]
    pub verbose: bool,
    /// Print the full report as JSON.
    #[arg(long, conflicts_with = "verbose")]
    pub json: bool,
    /// Configuration file (TOML, JSON or YAML) whose `security` section gives the HMAC and
    /// data keys; the environment overrides it.
    #[arg(long, short = 'c', env = "QRLP_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
}

/// Runs `qrlp verify`: exit 0 valid, 1 invalid, 2 for input errors.
pub fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let prepared = read_frame(&args).and_then(|text| {
        let config =
            crate::keys::load_config(args.config.as_deref(), args.identity_file.as_deref())?;
        let keys = load_keys(&args, &config)?;
        let verifier = qrlp_protocol::offline_verifier(&config, keys)?;
        Ok((text, verifier))
    });
    let (text, verifier) = match prepared {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    let now = now_ms();
    // A document written by `qrlp generate`: its frame, and every field it shows.
    let report = qrlp_protocol::document::verify_document(&verifier, &text, now)
        .unwrap_or_else(|| verifier.verify(&text, now));
    let out = if args.json {
        report.to_json()
    } else if args.verbose {
        table(&report)
    } else {
        summary(&report)
    };
    println!("{out}");
    Ok(if report.is_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn read_frame(args: &VerifyArgs) -> anyhow::Result<String> {
    Ok(match (&args.frame, &args.file, &args.image) {
        (Some(t), _, _) if t == "-" => {
            let mut s = String::new();
            std::io::stdin()
                .take(MAX_FRAME_TEXT as u64 * 8)
                .read_to_string(&mut s)
                .context("cannot read standard input")?;
            s
        }
        (Some(t), _, _) => t.clone(),
        (None, Some(p), _) => read_small(p)?,
        (None, None, Some(p)) => decode_image(p)?,
        (None, None, None) => bail!("give a frame, --file or --image"),
    })
}

/// Reads a text file of at most a few frames' size.
fn read_small(path: &Path) -> anyhow::Result<String> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut s = String::new();
    f.take(MAX_FRAME_TEXT as u64 * 8)
        .read_to_string(&mut s)
        .with_context(|| format!("cannot read {} as text", path.display()))?;
    Ok(s)
}

fn load_keys(args: &VerifyArgs, config: &Config) -> anyhow::Result<KeySet> {
    if let Some(p) = &args.keys {
        let text = std::fs::read_to_string(p)
            .with_context(|| format!("cannot read key set {}", p.display()))?;
        return KeySet::from_json(&text).with_context(|| format!("key set {}", p.display()));
    }
    let path = qrlp_protocol::identity_path(config);
    if !path.exists() {
        bail!(
            "no identity file at {}: pass --identity-file PATH or --keys KEYSET.json",
            path.display()
        );
    }
    Ok(KeyStore::load(&path)?.key_set())
}

fn age(report: &VerificationReport) -> String {
    match report.age_ms {
        Some(ms) => format!("{:.1} s", ms as f64 / 1000.0),
        None => "-".into(),
    }
}

fn summary(r: &VerificationReport) -> String {
    if r.is_valid() {
        format!(
            "valid (key {}, age {})",
            r.key_id.as_deref().unwrap_or("-"),
            age(r)
        )
    } else {
        format!("invalid: {}: {}", r.reason.code.as_str(), r.reason.message)
    }
}

fn table(r: &VerificationReport) -> String {
    let yes = |b: bool| if b { "true" } else { "false" }.to_string();
    let opt = |s: Option<&str>| s.unwrap_or("-").to_string();
    let rows: Vec<(&str, String)> = vec![
        ("valid_json", yes(r.valid_json)),
        ("identity_verified", yes(r.identity_verified)),
        ("time_verified", yes(r.time_verified)),
        ("blockchain_verified", yes(r.blockchain_verified)),
        ("signature_verified", yes(r.signature_verified)),
        ("hmac_verified", yes(r.hmac_verified)),
        ("encrypted", yes(r.encrypted)),
        ("error", opt(r.error.as_deref())),
        ("format", opt(r.format)),
        ("key_id", opt(r.key_id.as_deref())),
        ("algorithm", opt(r.algorithm.as_deref())),
        (
            "sequence_number",
            r.sequence_number.map_or("-".into(), |s| s.to_string()),
        ),
        (
            "timestamp",
            r.timestamp_ms.map_or("-".into(), format_timestamp),
        ),
        ("age", age(r)),
        ("replayed", yes(r.replayed)),
        (
            "user_data",
            r.user_data
                .as_ref()
                .map_or("-".into(), |u| Value::Object(u.clone()).to_string()),
        ),
        (
            "verdict",
            if r.is_valid() { "valid" } else { "invalid" }.into(),
        ),
        (
            "reason",
            format!("{}: {}", r.reason.code.as_str(), r.reason.message),
        ),
    ];
    let mut out = String::new();
    for (i, (k, v)) in rows.iter().enumerate() {
        let nl = if i + 1 < rows.len() { "\n" } else { "" };
        let _ = write!(out, "{k:<20} {v}{nl}");
    }
    out
}

/// Reads the QR code in a PNG: pixels to luminance (alpha composited on white), then rqrr.
fn decode_image(path: &Path) -> anyhow::Result<String> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder
        .read_info()
        .with_context(|| format!("{} is not a readable PNG", path.display()))?;
    let size = reader
        .output_buffer_size()
        .context("the PNG is too large")?;
    let mut buf = vec![0; size];
    let info = reader
        .next_frame(&mut buf)
        .with_context(|| format!("{} is not a readable PNG", path.display()))?;
    let (w, h) = (info.width as usize, info.height as usize);
    let stride = info.line_size;
    let channels = info.color_type.samples();
    let luma = |x: usize, y: usize| -> u8 {
        let i = y * stride + x * channels;
        let px = buf.get(i..i + channels).unwrap_or(&[]);
        let (grey, alpha) = match px {
            [g] => (u32::from(*g), 255),
            [g, a] => (u32::from(*g), u32::from(*a)),
            [r, g, b] => (rgb_luma(*r, *g, *b), 255),
            [r, g, b, a] => (rgb_luma(*r, *g, *b), u32::from(*a)),
            _ => (255, 255),
        };
        // Composite on white: transparent pixels read as light.
        ((grey * alpha + 255 * (255 - alpha)) / 255) as u8
    };
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, luma);
    let texts: Vec<String> = img
        .detect_grids()
        .into_iter()
        .filter_map(|g| {
            let mut bytes = Vec::new();
            g.decode_to(&mut bytes).ok()?;
            String::from_utf8(bytes).ok()
        })
        .collect();
    // Prefer a symbol that looks like a frame when a photo holds several codes.
    let looks_like_frame = |t: &&String| t.starts_with(COMPACT_PREFIX) || t.starts_with('{');
    texts
        .iter()
        .find(looks_like_frame)
        .or(texts.first())
        .cloned()
        .with_context(|| format!("no readable QR code found in {}", path.display()))
}

fn rgb_luma(r: u8, g: u8, b: u8) -> u32 {
    (299 * u32::from(r) + 587 * u32::from(g) + 114 * u32::from(b)) / 1000
}
