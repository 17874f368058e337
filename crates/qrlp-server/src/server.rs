//! Binding, serving and graceful shutdown.

use std::future::{Future, IntoFuture};
use std::net::{Ipv6Addr, SocketAddr};
use std::time::Duration;

use axum::serve::ListenerExt;
use axum::Router;
use qrlp_config::Config;
use tokio::net::TcpListener;

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
    app: Router,
    shutdown_timeout: Duration,
    background: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Opens the database (creating and migrating it as needed), binds
    /// `server.host:server.port` and builds the application. `config` should have passed
    /// [`Config::validate`].
    ///
    /// # Errors
    /// When the database cannot be opened or migrated, the address cannot be bound or the
    /// Redis URL cannot be used.
    pub async fn bind(config: Config) -> Result<Server, ServeError> {
        Server::bind_with(config, Router::new()).await
    }

    /// [`Server::bind`] with extra routes merged into the application (see
    /// [`crate::app_with`]).
    ///
    /// # Errors
    /// As [`Server::bind`].
    pub async fn bind_with(config: Config, extra: Router<AppState>) -> Result<Server, ServeError> {
        let host = &config.server.host;
        let addr = if host.parse::<Ipv6Addr>().is_ok() {
            format!("[{host}]:{}", config.server.port)
        } else {
            format!("{host}:{}", config.server.port)
        };
        let shutdown_timeout = Duration::from_secs(config.server.shutdown_timeout_secs);
        let store = open_store(&config).await?;
        let state = AppState::new(config, store)?;
        let listener = TcpListener::bind(&addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        let local_addr = listener.local_addr()?;
        let background = crate::fleet::spawn_background(state.clone());
        Ok(Server {
            background,
            listener,
            local_addr,
            app: app_with(state, extra),
            shutdown_timeout,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes; then stops accepting connections and waits for the
    /// requests in flight, at most `server.shutdown_timeout_secs`.
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
            app,
            shutdown_timeout,
            background,
        } = self;
        tracing::info!(addr = %local_addr, "listening");
        let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            tracing::info!("shutting down: no new connections, finishing requests in flight");
            let _ = signalled_tx.send(());
        };
        let listener = listener.tap_io(|tcp| {
            // Small responses go out at once rather than waiting for Nagle's algorithm.
            let _ = tcp.set_nodelay(true);
        });
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        let serve = axum::serve(listener, app)
            .with_graceful_shutdown(signal)
            .into_future();
        let deadline = async move {
            match signalled_rx.await {
                Ok(()) => tokio::time::sleep(shutdown_timeout).await,
                // The server stopped on its own; nothing to time.
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            result = serve => result?,
            () = deadline => {
                tracing::warn!(
                    timeout_secs = shutdown_timeout.as_secs(),
                    "requests still in flight after the shutdown timeout; stopping anyway"
                );
            }
        }
        background.abort();
        tracing::info!("stopped");
        Ok(())
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
