//! Structured logs on standard error: `json` (one object per line) or `pretty` (one
//! readable line per event). Each request adds one line with its id, route, method,
//! status and latency (see [`crate::middleware::track`]); headers, bodies and query strings
//! are never logged, so secrets in them do not reach the log.
//!
//! Lines are written off the request path: a request formats its line and hands it to a
//! bounded queue of [`BUFFER_LINES`] lines, and one writer thread drains the queue into a
//! buffered standard error, one `write` per batch. A slow terminal, pipe or disk therefore
//! never slows answers; when the queue is full, new lines are dropped and counted
//! ([`dropped_lines`], `qrlp_log_lines_dropped_total` in `/metrics`).

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;

use qrlp_config::{LogConfig, LogFormat};
use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// Lines the log queue holds before new ones are dropped: a few seconds of request lines at
/// full load, and at most a few MB.
pub const BUFFER_LINES: usize = 16_384;

/// Bytes the writer thread gathers before one `write` to standard error.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// The drop counter of the process's log writer, once [`init_logging`] has run.
static DROPPED: OnceLock<ErrorCounter> = OnceLock::new();

/// Log lines dropped so far because the queue was full (0 before [`init_logging`]).
pub fn dropped_lines() -> u64 {
    DROPPED.get().map_or(0, |c| c.dropped_lines() as u64)
}

/// Keeps the log writer thread running; dropping it writes out what is queued. Hold it for
/// the life of the process.
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard(#[allow(dead_code)] WorkerGuard);

/// A non-blocking writer into `out`: a queue of `lines` lines drained by one thread that
/// writes through a buffer and flushes whenever the queue is empty. Full queue: the line is
/// dropped and counted in the returned writer's [`NonBlocking::error_counter`].
pub fn non_blocking<W: Write + Send + 'static>(out: W, lines: usize) -> (NonBlocking, WorkerGuard) {
    NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(lines)
        .thread_name("qrlp-log")
        .finish(std::io::BufWriter::with_capacity(WRITE_BUFFER_BYTES, out))
}

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

/// Installs the global logger, writing to standard error through [`non_blocking`], and a
/// panic hook that logs panics as error events (inside the request span when a handler
/// panics, so the line carries the request id). Keep the returned guard until the process
/// ends.
///
/// # Errors
/// A bad filter, or a logger already installed.
pub fn init_logging(config: &LogConfig) -> Result<LogGuard, LoggingError> {
    let filter = EnvFilter::try_new(&config.level).map_err(|e| LoggingError::Filter {
        filter: config.level.clone(),
        reason: e.to_string(),
    })?;
    let (writer, guard) = non_blocking(std::io::stderr(), BUFFER_LINES);
    let counter = writer.error_counter();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
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
    let _ = DROPPED.set(counter);
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
    Ok(LogGuard(guard))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    /// A writer stuck like a terminal nobody reads: its first write waits for the test.
    struct Stuck(Option<Arc<Barrier>>);

    impl Write for Stuck {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Some(release) = self.0.take() {
                release.wait();
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stuck_writer_never_blocks_logging_and_drops_are_counted() {
        let release = Arc::new(Barrier::new(2));
        let (writer, guard) = non_blocking(Stuck(Some(release.clone())), 64);
        let counter = writer.error_counter();
        let subscriber = tracing_subscriber::fmt().with_writer(writer).finish();
        tracing::subscriber::with_default(subscriber, || {
            // Far more lines than the queue holds, with the writer stuck: if logging waited
            // for the writer this loop would never end.
            for i in 0..10_000 {
                tracing::info!(i, "request");
            }
        });
        // The queue holds 64 lines and the writer's buffer some hundreds more before its
        // first write blocks; the rest must have been dropped and counted.
        let dropped = counter.dropped_lines();
        assert!(dropped >= 5_000, "dropped {dropped}");
        release.wait();
        drop(guard);
    }
}
