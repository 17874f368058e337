//! `qrlp live`: the seed's live server (see the `qrlp-live-server` crate) on one identity,
//! and `qrlp status`, which asks a running one how it is.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use qrlp_config::{Config, FrameFormat, Override};
use qrlp_live_server::LiveChannel;
use qrlp_protocol::QrLiveProtocol;

/// Exit code for a configuration that does not load or validate.
const EXIT_BAD_CONFIG: u8 = 2;

#[derive(Args, Debug)]
pub struct LiveArgs {
    /// Configuration file: TOML, JSON or YAML (by extension).
    #[arg(long, short = 'c', env = "QRLP_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    /// Debug logging.
    #[arg(long, short = 'd')]
    debug: bool,
    /// Web server port (0 for any free one).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Web server host (address to listen on).
    #[arg(long, default_value = "localhost")]
    host: String,
    /// Don't open a browser.
    #[arg(long)]
    no_browser: bool,
    /// Seconds between frames [default: live.update_interval_secs, 1]
    #[arg(long, value_name = "SECONDS")]
    interval: Option<f64>,
    /// Identity file: qrlp's identity JSON, or an Ed25519 private key in PKCS#8 PEM
    /// (`openssl genpkey -algorithm ed25519 -out my-key.pem`).
    #[arg(long, value_name = "PATH")]
    identity_file: Option<PathBuf>,
    /// What the codes carry: json (the seed's QRData, the default here) or compact (QL2:,
    /// about half the size; survives video compression better).
    #[arg(long, value_parser = ["json", "compact"])]
    frame_format: Option<String>,
    /// Data directory (identity and HMAC secret) [default: ./qrlp-data, or $QRLP_DATA_DIR]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<String>,
}

/// Whether the file or the environment names `live.frame_format`: then it is obeyed, else
/// `qrlp live` encodes the seed's JSON.
fn frame_format_configured(file: Option<&Path>) -> bool {
    let env = std::env::vars().any(|(k, _)| {
        let k = k.to_ascii_uppercase();
        k.starts_with("QRLP") && k.contains("FRAME_FORMAT")
    });
    env || file
        .and_then(|p| std::fs::read_to_string(p).ok())
        .is_some_and(|t| t.contains("frame_format"))
}

fn load(args: &LiveArgs) -> Result<Config, qrlp_config::ConfigError> {
    let mut flags = Vec::new();
    if let Some(i) = args.interval {
        flags.push(Override::new(
            "live.update_interval_secs",
            i.to_string(),
            "--interval",
        ));
    }
    if let Some(p) = &args.identity_file {
        flags.push(Override::new(
            "identity.identity_file",
            p.display().to_string(),
            "--identity-file",
        ));
    }
    match &args.frame_format {
        Some(f) => flags.push(Override::new(
            "live.frame_format",
            f.clone(),
            "--frame-format",
        )),
        None if !frame_format_configured(args.config.as_deref()) => {
            flags.push(Override::new(
                "live.frame_format",
                "json",
                "(qrlp live default)",
            ));
        }
        None => {}
    }
    if let Some(d) = &args.data_dir {
        flags.push(Override::new("storage.data_dir", d.clone(), "--data-dir"));
    }
    if args.debug {
        flags.push(Override::new("log.level", "debug", "--debug"));
    }
    // A long interval needs a ttl at least as long: keep frames valid for three intervals.
    if let Some(i) = args.interval {
        if i > Config::default().live.ttl_secs {
            flags.push(Override::new(
                "live.ttl_secs",
                (i * 3.0).min(86_400.0).to_string(),
                "--interval",
            ));
        }
    }
    Config::load(args.config.as_deref(), &flags)
}

/// The address to listen on: `localhost` is the IPv4 loopback.
fn listen_addr(host: &str, port: u16) -> anyhow::Result<SocketAddr> {
    let host = if host.eq_ignore_ascii_case("localhost") {
        "127.0.0.1"
    } else {
        host.trim_start_matches('[').trim_end_matches(']')
    };
    let ip: std::net::IpAddr = host
        .parse()
        .with_context(|| format!("--host {host:?} is not an IP address or localhost"))?;
    Ok(SocketAddr::new(ip, port))
}

pub fn run(args: LiveArgs) -> anyhow::Result<ExitCode> {
    crate::serve::tune_allocator();
    let config = match load(&args) {
        Ok(c) => c,
        Err(problems) => {
            eprintln!("error: {problems}");
            return Ok(ExitCode::from(EXIT_BAD_CONFIG));
        }
    };
    let _log_writer = qrlp_server::init_logging(&config.log)?;
    let addr = listen_addr(&args.host, args.port)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let signal = qrlp_server::shutdown_signal();
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        let public = config.server.public_base_url.trim().trim_end_matches('/');
        let url = if public.is_empty() {
            let host = if args.host.contains(':') {
                format!("[{}]", args.host)
            } else {
                args.host.clone()
            };
            format!("http://{host}:{}", local.port())
        } else {
            public.to_string()
        };
        let format = config.live.frame_format;
        let protocol = Arc::new(QrLiveProtocol::new(&config).context("live protocol")?);
        let channel = LiveChannel::new(protocol, url.clone());
        let (router, _io) = qrlp_live_server::standalone(Arc::clone(&channel));
        channel.start().context("live generation")?;
        println!("QRLP live: {url}/");
        println!("  stream view (OBS browser source): {url}/?mode=stream");
        println!("  verify page: {url}/verify");
        println!(
            "  a {} frame every {} s; Ctrl-C stops",
            match format {
                FrameFormat::Json => "JSON",
                FrameFormat::Compact => "compact",
            },
            config.live.update_interval_secs
        );
        if !args.no_browser {
            open_browser(&format!("{url}/"));
        }
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                signal.await;
            })
            .await?;
        channel.stop().await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Opens `url` in the desktop's browser when there is a display; never fails.
fn open_browser(url: &str) {
    let has_display = if cfg!(any(target_os = "macos", windows)) {
        true
    } else {
        ["DISPLAY", "WAYLAND_DISPLAY"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
    };
    if !has_display {
        return;
    }
    let mut cmd = if cfg!(target_os = "macos") {
        std::process::Command::new("open")
    } else if cfg!(windows) {
        let mut c = std::process::Command::new("cmd");
        c.args(["/C", "start", ""]);
        c
    } else {
        std::process::Command::new("xdg-open")
    };
    let spawned = cmd
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if spawned.is_err() {
        eprintln!("(could not open a browser; open {url} yourself)");
    }
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The live server's URL [default: http://localhost:PORT]
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Port of a live server on this machine.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Print the status JSON as the server sent it.
    #[arg(long)]
    json: bool,
}

/// `qrlp status`: exit 0 with the status, 1 when no live server answers.
pub fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let base = args
        .url
        .clone()
        .unwrap_or_else(|| format!("http://localhost:{}", args.port));
    let base = base.trim_end_matches('/').to_string();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let fetched = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        let r = client
            .get(format!("{base}/api/status"))
            .send()
            .await?
            .error_for_status()?;
        let text = r.text().await?;
        anyhow::Ok(text)
    });
    let text = match fetched {
        Ok(t) => t,
        Err(e) => {
            eprintln!("no QRLP live server answers at {base}: {e:#}");
            return Ok(ExitCode::from(1));
        }
    };
    if args.json {
        println!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
        eprintln!("{base}/api/status did not answer with a status");
        return Ok(ExitCode::from(1));
    };
    print!("{}", readable(&base, &v));
    Ok(ExitCode::SUCCESS)
}

fn readable(base: &str, v: &serde_json::Value) -> String {
    use std::fmt::Write as _;
    let yes = |b: &serde_json::Value| {
        if b.as_bool() == Some(true) {
            "yes"
        } else {
            "no"
        }
    };
    let s = &v["statistics"];
    let mut o = String::new();
    let _ = writeln!(o, "QRLP live server at {base}");
    let _ = writeln!(
        o,
        "  server URL:         {}",
        v["server_url"].as_str().unwrap_or("?")
    );
    let _ = writeln!(o, "  running:            {}", yes(&v["is_running"]));
    let _ = writeln!(
        o,
        "  current code:       {}",
        if v["current_qr_available"].as_bool() == Some(true) {
            format!("yes, frame #{}", s["sequence_number"])
        } else {
            "none yet".into()
        }
    );
    let _ = writeln!(o, "  clients connected:  {}", v["websocket_connections"]);
    let _ = writeln!(o, "  updates sent:       {}", v["qr_updates_sent"]);
    let _ = writeln!(o, "  page views:         {}", v["page_views"]);
    if s.is_object() {
        let g = &s["generation"];
        let _ = writeln!(
            o,
            "  frames made:        {} ({} failed)",
            g["frames_generated"], g["frames_failed"]
        );
        let _ = writeln!(
            o,
            "  uptime:             {:.0} s",
            s["uptime_seconds"].as_f64().unwrap_or(0.0)
        );
        let _ = writeln!(
            o,
            "  signature:          {} (key {})",
            s["crypto_stats"]["signature_algorithm"]
                .as_str()
                .unwrap_or("?"),
            s["identity_stats"]["key_id"].as_str().unwrap_or("?")
        );
        let _ = writeln!(
            o,
            "  time sync:          {:.0}% success",
            s["time_provider_stats"]["success_rate"]
                .as_f64()
                .unwrap_or(0.0)
                * 100.0
        );
    }
    o
}
