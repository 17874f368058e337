//! Binding, serving and graceful shutdown, with bounds on what clients can hold: a
//! header-read timeout, a keep-alive idle timeout and a maximum number of connections (one
//! more is closed at once, never queued). The request timeout is a middleware
//! ([`crate::middleware::request_timeout`]).

use std::future::Future;
use std::net::{Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use qrlp_config::Config;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower_service::Service as _;

use crate::app::app_with;
use crate::state::{AppState, StateError};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The state (Redis client, rate limiter) could not be built.
    #[error(transparent)]
    State(#[from] StateError),
    /// The database could not be opened or migrated.
    #[error("database")]
    Store(#[from] qrlp_store::StoreError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// `host:port` as configured.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("server error")]
    Io(#[from] std::io::Error),
}

/// A bound, not yet running server.
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    metrics_listener: Option<TcpListener>,
    app: Router,
    metrics_app: Router,
    limits: ConnLimits,
    shutdown_timeout: Duration,
    state: AppState,
}

/// The per-connection bounds of `server.*`.
#[derive(Debug, Clone, Copy)]
struct ConnLimits {
    header_read_timeout: Duration,
    keepalive_timeout: Duration,
    max_connections: usize,
}

impl Server {
    /// Opens the database (creating and migrating it as needed), binds
    /// `server.host:server.port` (and `metrics.listen` when set) and builds the application.
    /// `config` should have passed [`Config::validate`].
    ///
    /// # Errors
    /// When the database cannot be opened or migrated, an address cannot be bound or the
    /// Redis URL cannot be used.
    pub async fn bind(config: Config) -> Result<Server, ServeError> {
        Server::bind_with(config, Router::new()).await
    }

    /// [`Server::bind`] with extra routes merged into the application (see
    /// [`crate::app_with`]).
    ///
    /// # Errors
    /// As [`Server::bind`].
    pub async fn bind_with(
        mut config: Config,
        extra: Router<AppState>,
    ) -> Result<Server, ServeError> {
        let host = &config.server.host;
        let addr = if host.parse::<Ipv6Addr>().is_ok() {
            format!("[{host}]:{}", config.server.port)
        } else {
            format!("{host}:{}", config.server.port)
        };
        let listener = TcpListener::bind(&addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        let local_addr = listener.local_addr()?;
        // Links derived from the listen address name the port actually bound.
        config.server.port = local_addr.port();
        let metrics_listener = match config.metrics.listen.trim() {
            "" => None,
            addr => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServeError::Bind {
                        addr: addr.to_string(),
                        source,
                    })?,
            ),
        };
        let shutdown_timeout = Duration::from_secs(config.server.shutdown_timeout_secs);
        let limits = ConnLimits {
            header_read_timeout: Duration::from_secs(config.server.header_read_timeout_secs),
            keepalive_timeout: Duration::from_secs(config.server.keepalive_timeout_secs),
            max_connections: usize::try_from(config.server.max_connections)
                .unwrap_or(usize::MAX)
                .max(1),
        };
        let store = open_store(&config).await?;
        // The decoy password hash takes tens of milliseconds: off the async threads.
        let state = tokio::task::spawn_blocking(move || AppState::new(config, store))
            .await
            .map_err(|e| ServeError::Io(std::io::Error::other(e)))??;
        state.tracking().start(&state.config().server, local_addr);
        match state.live().load(state.store()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(channels = n, "live channels started"),
            Err(e) => tracing::error!(error = %e, "live channels could not be started"),
        }
        state.live().watch(state.store().clone());
        Ok(Server {
            listener,
            local_addr,
            metrics_listener,
            app: app_with(state.clone(), extra),
            metrics_app: crate::app::metrics_app(state.clone()),
            limits,
            shutdown_timeout,
            state,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address of the separate metrics listener, when `metrics.listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// Serves until `shutdown` completes; then stops accepting connections and waits for the
    /// requests in flight, at most `server.shutdown_timeout_secs`. A background task deletes
    /// expired sessions, invitations and reset links every `auth.purge_interval_secs`.
    ///
    /// # Errors
    /// When accepting connections fails fatally.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let Server {
            listener,
            local_addr,
            metrics_listener,
            app,
            metrics_app,
            limits,
            shutdown_timeout,
            state,
        } = self;
        // The webhook worker lives as long as the server; deliveries in flight at the end
        // are tried again when their lease runs out.
        let worker = crate::delivery::spawn(state.clone());
        tracing::info!(addr = %local_addr, "listening");
        let (stop_tx, stop_rx) = watch::channel(false);
        let purge = tokio::spawn(purge_loop(state.clone(), stop_rx.clone()));
        let fleet_sweep = crate::fleet::spawn_background(state.clone());
        let training = crate::training::spawn_background(state.clone());
        let metrics = metrics_listener.map(|l| {
            if let Ok(addr) = l.local_addr() {
                tracing::info!(%addr, "metrics listening");
            }
            let limits = ConnLimits {
                max_connections: 16,
                ..limits
            };
            tokio::spawn(accept_loop(l, metrics_app, limits, stop_rx.clone(), None))
        });
        let tracking = state.tracking().clone();
        let main = accept_loop(listener, app, limits, stop_rx, Some(state));
        tokio::pin!(main);
        tokio::select! {
            result = &mut main => return result,
            () = shutdown => {}
        }
        tracing::info!("shutting down: no new connections, finishing requests in flight");
        let _ = stop_tx.send(true);
        let drained = tokio::time::timeout(shutdown_timeout, async {
            let result = main.await;
            if let Some(m) = metrics {
                let _ = m.await;
            }
            result
        })
        .await;
        purge.abort();
        if let Some(w) = worker {
            w.abort();
        }
        fleet_sweep.abort();
        training.abort();
        match drained {
            Ok(result) => result?,
            Err(_) => tracing::warn!(
                timeout_secs = shutdown_timeout.as_secs(),
                "requests still in flight after the shutdown timeout; stopping anyway"
            ),
        }
        // Scans accepted before the last request finished are written before exit.
        tracking.shutdown().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Accepts connections until `stop` turns true, then waits for the open ones to finish.
/// At most `limits.max_connections` are open at once; one more is closed at once.
async fn accept_loop(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    mut stop: watch::Receiver<bool>,
    state: Option<AppState>,
) -> Result<(), ServeError> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => break,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            if let Some(s) = &state {
                s.metrics().count_refused_connection();
            }
            drop(tcp);
            continue;
        };
        // Small responses go out at once rather than waiting for Nagle's algorithm.
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            serve_connection(tcp, peer, app, limits, stop).await;
            drop(slot);
        });
    }
    // Refuse new connections at once, then wait: every slot back means every connection
    // closed.
    drop(listener);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    Ok(())
}

/// What a connection has been doing, for the keep-alive idle timeout.
struct Activity {
    in_flight: AtomicUsize,
    since: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        let ms = u64::try_from(self.since.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Option<Duration> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        Some(self.since.elapsed().saturating_sub(last))
    }
}

/// Decrements the in-flight count when a request's handling ends, however it ends.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One HTTP/1.1 connection: header-read timeout (which also bounds the wait for the next
/// request's head), keep-alive idle timeout, graceful close on shutdown, upgrades allowed.
async fn serve_connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: ConnLimits,
    mut stop: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity {
        in_flight: AtomicUsize::new(0),
        since: Instant::now(),
        last_ms: AtomicU64::new(0),
    });
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            activity.in_flight.fetch_add(1, Ordering::Relaxed);
            let guard = InFlight(activity.clone());
            req.extensions_mut().insert(ConnectInfo(peer));
            let mut app = app.clone();
            async move {
                let response = app.call(req.map(axum::body::Body::new)).await;
                drop(guard);
                response
            }
        })
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(tcp), service)
        .with_upgrades();
    tokio::pin!(conn);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut closing = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
                break;
            }
            _ = stop.wait_for(|s| *s), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = tick.tick(), if !closing => {
                if activity.idle_for().is_some_and(|idle| idle >= limits.keepalive_timeout) {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

/// Deletes expired sessions, invitations and reset links every `auth.purge_interval_secs`.
async fn purge_loop(state: AppState, mut stop: watch::Receiver<bool>) {
    let every = Duration::from_secs(state.config().auth.purge_interval_secs.max(1));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        match state.store().purge_expired().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                rows = n,
                "purged expired sessions, invitations and reset links"
            ),
            Err(e) => tracing::warn!(error = %e, "purge of expired rows failed"),
        }
    }
}

/// The store `config.storage` names: opened and migrated to the latest schema.
///
/// # Errors
/// When it cannot be opened or a migration fails.
pub async fn open_store(config: &Config) -> Result<qrlp_store::Store, qrlp_store::StoreError> {
    let store = qrlp_store::Store::open(&store_config(config)).await?;
    store.migrate().await?;
    tracing::info!(database = %store.describe(), "database ready");
    Ok(store)
}

/// The storage adapter's settings from the product configuration.
pub fn store_config(config: &Config) -> qrlp_store::StoreConfig {
    qrlp_store::StoreConfig {
        database_url: Some(config.storage.database_url.clone()).filter(|u| !u.is_empty()),
        data_dir: config.storage.data_dir.clone().into(),
        max_connections: config.storage.max_connections,
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
///
/// The handlers are installed when this function is called, not when the future is first
/// polled: a signal that arrives while the server is still starting is not lost and does not
/// kill the process with the default action. Call it inside the runtime, before binding.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            let wait = |s: std::io::Result<tokio::signal::unix::Signal>| async move {
                match s {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(interrupt) => {},
                () = wait(terminate) => {},
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}
