//! `qrlp generate`: one signed live frame, as a QR image and/or its JSON document. A thin
//! adapter: the frame, its image and its document all come from `qrlp-protocol`, the one
//! path that `qrlp live` and `qrlp serve` use too.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use clap::ValueEnum;
use qrlp_config::{Config, Override, QrStyle};
use qrlp_protocol::{document, encode_frame, ImageOptions, QrLiveProtocol};
use qrlp_qr::EcLevel;
use qrlp_render::{render_terminal, TerminalOptions};
use serde_json::Value;

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

/// How the image looks (the seed's styles).
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
    fn config(self) -> QrStyle {
        match self {
            Style::Live => QrStyle::Live,
            Style::Professional => QrStyle::Professional,
            Style::Minimal => QrStyle::Minimal,
        }
    }
}

const AFTER_HELP: &str = "\
The JSON document (--format json or both) is one object:
  format           \"compact\" or \"json\": the format of `frame`
  frame            the exact text inside the QR code (what `qrlp verify` checks)
  qr_data          what the frame says, as the seed's QRData object (the frame itself
                   when format is json)
  version, ecc     the QR symbol version (1-40) and error correction level
  key_id           hex key id of the signing key; algorithm: its suite name
  sequence_number, timestamp (ISO-8601 UTC), ttl_ms (compact frames only)
`qrlp verify --file` checks every field of the document against its frame.

Every frame carries an HMAC: under security.hmac_secret (in --config or QRLP_HMAC_SECRET),
else under a secret created on first use in $QRLP_DATA_DIR/hmac.secret (mode 0600).
With security.data_key_secret (QRLP_DATA_KEY_SECRET) --encrypt seals the user data.

The identity file is created on first use (mode 0600) in $QRLP_DATA_DIR (default
./qrlp-data). Time and chain evidence come from the configured servers ([time],
[blockchain]); --no-evidence leaves them out.";

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
    /// Image style [default: qr.style of the configuration, live].
    #[arg(long, value_enum)]
    pub style: Option<Style>,
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
    /// Put the compact frame (QL2:…, base45 over CBOR) in the code (the default).
    #[arg(long, conflicts_with = "json_frame")]
    pub compact: bool,
    /// Put the seed's QRData JSON text in the code instead of the compact frame.
    #[arg(long)]
    pub json_frame: bool,
    /// Validity of the frame in seconds (compact frames carry it; JSON verifiers apply
    /// their own, 300 s by default).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub ttl: u64,
    /// Error correction level: L, M, Q or H [default: qr.default_error_correction, M].
    #[arg(long, value_parser = parse_ecc)]
    pub ecc: Option<EcLevel>,
    /// Pixels per module [default: qr.default_box_size, 10].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=32))]
    pub box_size: Option<u32>,
    /// Encrypt the user data (ChaCha20-Poly1305) under the configured data key.
    #[arg(long, requires = "user_data")]
    pub encrypt: bool,
    /// Ask no time or chain server: the frame goes without evidence.
    #[arg(long)]
    pub no_evidence: bool,
    /// Configuration file (TOML, JSON or YAML); the environment overrides it.
    #[arg(long, short = 'c', env = "QRLP_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
}

fn parse_ecc(s: &str) -> Result<EcLevel, String> {
    s.parse::<EcLevel>().map_err(|e| e.to_string())
}

/// The configuration with this command's flags applied.
fn config(args: &GenerateArgs) -> anyhow::Result<Config> {
    let mut o = vec![Override::new(
        "live.ttl_secs",
        args.ttl.to_string(),
        "--ttl",
    )];
    if let Some(p) = &args.identity_file {
        o.push(Override::new(
            "identity.identity_file",
            p.display().to_string(),
            "--identity-file",
        ));
    }
    if args.hybrid {
        o.push(Override::new("live.signature", "hybrid", "--hybrid"));
    } else if args.pq {
        o.push(Override::new("live.signature", "fn-dsa", "--pq"));
    }
    if args.json_frame {
        o.push(Override::new("live.frame_format", "json", "--json-frame"));
    } else if args.compact {
        o.push(Override::new("live.frame_format", "compact", "--compact"));
    }
    if let Some(e) = args.ecc {
        o.push(Override::new(
            "qr.default_error_correction",
            e.to_string(),
            "--ecc",
        ));
    }
    if args.no_evidence {
        o.push(Override::new("time.time_servers", "[]", "--no-evidence"));
        o.push(Override::new(
            "time.fallback_to_system",
            "true",
            "--no-evidence",
        ));
        o.push(Override::new(
            "blockchain.enabled_chains",
            "[]",
            "--no-evidence",
        ));
    }
    Config::load(args.config.as_deref(), &o).map_err(|problems| anyhow!("{problems}"))
}

/// Runs `qrlp generate`.
pub fn run(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let user_data = parse_user_data(args.user_data.as_deref())?;
    if args.format == OutputFormat::Both && args.output.is_none() {
        bail!("--format both needs --output NAME (writes NAME.png and NAME.json)");
    }
    let config = config(&args)?;
    if args.encrypt && config.security.data_key_secret.is_empty() {
        bail!("--encrypt needs a data key: set security.data_key_secret or QRLP_DATA_KEY_SECRET");
    }
    let image = ImageOptions {
        style: args.style.map_or(config.qr.style, Style::config),
        caption: args.include_text,
        module_size: args.box_size,
    };
    ensure_parent(&qrlp_protocol::identity_path(&config))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let (frame, png) = runtime.block_on(async {
        let protocol = QrLiveProtocol::new(&config)?;
        protocol
            .generate_single_with(user_data, true, args.encrypt, &image)
            .await
    })?;

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
    let doc = serde_json::to_string_pretty(&document::document(&frame))?;
    if let Some(p) = &png_path {
        fs::write(p, &png).with_context(|| format!("cannot write {}", p.display()))?;
        written.push(p.display().to_string());
    }
    if let Some(p) = &json_path {
        fs::write(p, format!("{doc}\n"))
            .with_context(|| format!("cannot write {}", p.display()))?;
        written.push(p.display().to_string());
    }
    if args.output.is_none() {
        let mut out = std::io::stdout().lock();
        match args.format {
            OutputFormat::Json => writeln!(out, "{doc}")?,
            _ => {
                let code = encode_frame(&frame.text, &config)?;
                let terminal = TerminalOptions {
                    border: None,
                    invert: false,
                };
                write!(out, "{}", render_terminal(&code, &terminal))?;
            }
        }
        written.push("standard output".into());
    }
    eprintln!(
        "generated {} frame #{}: QR version {}-{}, key {} ({}), {} chars -> {}",
        if frame.text.starts_with('{') {
            "json"
        } else {
            "compact"
        },
        frame.sequence,
        frame.qr_version,
        frame.ecc,
        frame.key_id.as_deref().unwrap_or("-"),
        frame.algorithm.unwrap_or("unsigned"),
        frame.text.len(),
        written.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

fn parse_user_data(text: Option<&str>) -> anyhow::Result<Option<Value>> {
    let Some(text) = text else { return Ok(None) };
    match serde_json::from_str::<Value>(text).context("--user-data is not JSON")? {
        v @ Value::Object(_) => Ok(Some(v)),
        _ => bail!("--user-data must be a JSON object, e.g. '{{\"user_text\":\"hello\"}}'"),
    }
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
