//! Structured logs on standard error: `json` (one object per line) or `pretty` (one
//! readable line per event). Each request adds one line with its id, route, method,
//! status and latency (see [`crate::middleware::track`]); headers, bodies and query strings
//! are never logged, so secrets in them do not reach the log.

use std::io::IsTerminal;

use qrlp_config::{LogConfig, LogFormat};
use tracing_subscriber::EnvFilter;

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// `log.level` is not a valid filter.
    #[error("invalid log filter {filter:?}: {reason}")]
    Filter {
        /// The filter given.
        filter: String,
        /// What the parser said.
        reason: String,
    },
    /// A global logger was already installed.
    #[error("logging is already initialized: {0}")]
    AlreadyInitialized(String),
}

/// Installs the global logger and a panic hook that logs panics as error events (inside the
/// request span when a handler panics, so the line carries the request id).
///
/// # Errors
/// A bad filter, or a logger already installed.
pub fn init_logging(config: &LogConfig) -> Result<(), LoggingError> {
    let filter = EnvFilter::try_new(&config.level).map_err(|e| LoggingError::Filter {
        filter: config.level.clone(),
        reason: e.to_string(),
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match config.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
    result.map_err(|e| LoggingError::AlreadyInitialized(e.to_string()))?;
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
            .unwrap_or("non-string panic payload");
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(panic = message, location = %location, "panic");
    }));
    Ok(())
}

/// Logs, once at startup, what configuration is in force: no secrets (the Redis URL is
/// redacted).
pub fn log_config(config: &qrlp_config::Config, file: Option<&std::path::Path>) {
    tracing::info!(
        file = %file.map(|p| p.display().to_string()).unwrap_or_else(|| "(none)".into()),
        host = %config.server.host,
        port = config.server.port,
        body_limit_bytes = config.server.body_limit_bytes,
        log_format = %config.log.format,
        cors = config.cors.enabled,
        redis = %if config.redis.is_configured() { config.redis.redacted_url() } else { "(none)".into() },
        metrics = config.metrics.enabled,
        "configuration loaded"
    );
}
