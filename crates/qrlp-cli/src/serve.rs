//! `qrlp serve`: the HTTP service (see the `qrlp-server` crate).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use qrlp_config::{Config, Override};

/// Exit code for a configuration that does not load or validate.
const EXIT_BAD_CONFIG: u8 = 2;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Configuration file: TOML, JSON or YAML (by extension). Environment variables and
    /// flags override it.
    #[arg(long, short = 'c', env = "QRLP_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1]
    #[arg(long)]
    host: Option<String>,
    /// Port to listen on, 0 for any free one [default: 8000, or $PORT]
    #[arg(long)]
    port: Option<u16>,
    /// Log format [default: pretty]
    #[arg(long, value_parser = ["json", "pretty"])]
    log_format: Option<String>,
    /// Log filter, e.g. `info` or `info,qrlp_server=debug` [default: info]
    #[arg(long)]
    log_level: Option<String>,
    /// Data directory of the embedded SQLite database [default: ./qrlp-data, or
    /// $QRLP_DATA_DIR]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<String>,
    /// Database URL: postgres://... for PostgreSQL [default: SQLite in the data directory,
    /// or $DATABASE_URL]
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    tune_allocator();
    let mut flags = Vec::new();
    if let Some(host) = args.host {
        flags.push(Override::new("server.host", host, "--host"));
    }
    if let Some(port) = args.port {
        flags.push(Override::new("server.port", port.to_string(), "--port"));
    }
    if let Some(format) = args.log_format {
        flags.push(Override::new("log.format", format, "--log-format"));
    }
    if let Some(level) = args.log_level {
        flags.push(Override::new("log.level", level, "--log-level"));
    }
    if let Some(dir) = args.data_dir {
        flags.push(Override::new("storage.data_dir", dir, "--data-dir"));
    }
    if let Some(url) = args.database_url {
        flags.push(Override::new("storage.database_url", url, "--database-url"));
    }
    let config = match Config::load(args.config.as_deref(), &flags) {
        Ok(config) => config,
        Err(problems) => {
            eprintln!("error: {problems}");
            return Ok(ExitCode::from(EXIT_BAD_CONFIG));
        }
    };
    // Held to the end: dropping it writes out the queued log lines.
    let _log_writer = qrlp_server::init_logging(&config.log)?;
    qrlp_server::logging::log_config(&config, args.config.as_deref());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        // Handlers first: a signal during start-up then shuts down cleanly.
        let signal = qrlp_server::shutdown_signal();
        let server = qrlp_server::Server::bind(config).await?;
        server.run(signal).await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// glibc's allocator gives threads arenas of their own and, after a large block is freed,
/// raises the size above which blocks are mapped on their own, so the next large buffers
/// (model updates, uploads, exports, live frames) come from arenas that keep their pages:
/// the server's memory grows with its threads and with the largest requests it has seen.
/// Two arenas and a fixed 256 KiB threshold give large buffers back to the system when
/// freed. `qrlp serve` and `qrlp live` call it first.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn tune_allocator() {
    // SAFETY: mallopt only changes allocator parameters; it is called first, before any
    // other thread exists, and both values are in range.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 10);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn tune_allocator() {}
