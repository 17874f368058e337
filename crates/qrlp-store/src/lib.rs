//! The qrlp storage adapter: organizations, users, memberships, API keys, web sessions and the
//! append-only audit log, on SQLite (the default, one file under the data directory) or
//! PostgreSQL (when the database URL is a `postgres://` URL).
//!
//! [`Store`] is the one repository interface the HTTP layer calls; nothing outside this crate
//! writes SQL. Its invariants:
//!
//! - **Audit in the same transaction.** Every method that takes an [`AuditContext`] writes
//!   exactly one audit record (bootstrap: one per thing it creates) in the transaction of its
//!   change: a failed change leaves no record, a failed record undoes the change. The crate
//!   has no way to update or delete audit records, and database triggers refuse it too.
//! - **Isolation by organization.** Key lookups and revocations take the organization and
//!   answer [`StoreError::NotFound`] for another organization's key.
//! - **Secrets stay out.** API keys and session tokens are stored as SHA-256 hashes, passwords
//!   as argon2id PHC strings; none of them appears in `Debug` output, error messages or audit
//!   details.
//! - **Same answers on both backends.** Ids are UUID v7; times are UTC with microsecond
//!   precision; lists are ordered by `(created_at, id)` (audit: newest first); emails and
//!   organization names are unique case-insensitively through a lower-cased copy.
//! - **Durable writes.** SQLite runs in WAL mode with `synchronous=FULL`, so a call that
//!   returned `Ok` survives a crash or power loss; writers start with `BEGIN IMMEDIATE` and
//!   wait up to 5 s for the lock.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[macro_use]
mod macros;

mod api_keys;
mod audit;
mod bootstrap;
pub mod chains;
mod db;
pub mod devices;
pub mod error;
pub mod fl;
mod invitations;
mod live_channels;
mod members;
pub mod model;
mod organizations;
mod qr_codes;
pub mod qr_model;
mod rows;
mod scans;
pub mod secret;
mod sessions;
mod sql;
mod users;
mod validate;
pub mod webhooks;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use chains::{Chain, ChainPatch, NewChain, ScanOutcome, ScanRecord, ScanSource, ScanVerdict};
pub use devices::{
    Device, DeviceAuth, DeviceCa, DeviceKeyRecord, DeviceStatus, DeviceUpdate, EnrollmentToken,
    FleetCounts, NewDevice, NewEnrollmentToken, NewKeyVersion, WentOffline,
};
pub use error::StoreError;
pub use fl::{
    FlJob, FlModel, FlParticipant, FlRound, FlRoundStatus, JoinOutcome, NewFlJob, NewFlRound,
    RoundCompletion, SubmitOutcome,
};
pub use live_channels::{valid_live_settings, LiveChannelPatch, LiveChannelRecord};
pub use model::*;
pub use qr_model::*;
pub use scans::{KnownVisitors, BUCKET_SECS, ROLLUP_CHUNK};
pub use validate::{valid_email, valid_name, MAX_EMAIL_LEN, MAX_NAME_LEN};
pub use webhooks::{
    Attempt, AttemptRecord, ClaimedDelivery, Delivery, NewWebhook, Webhook, WebhookPatch,
};

/// File name of the SQLite database inside the data directory.
pub const SQLITE_FILE_NAME: &str = "qrlp.db";

/// How long a SQLite writer waits for the write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a caller waits for a pooled connection before the store reports `Unavailable`.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// Where the store lives.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// `postgres://…`/`postgresql://…` for PostgreSQL, `sqlite:…` for a SQLite file elsewhere;
    /// `None` (or empty) for `<data_dir>/qrlp.db`.
    pub database_url: Option<String>,
    /// Data directory; created with its parents when the default SQLite file is used.
    pub data_dir: PathBuf,
    /// Pool size (at least 1).
    pub max_connections: u32,
}

impl Default for StoreConfig {
    /// SQLite under `./qrlp-data`, 10 connections.
    fn default() -> Self {
        StoreConfig {
            database_url: None,
            data_dir: PathBuf::from("./qrlp-data"),
            max_connections: 10,
        }
    }
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password.
        f.debug_struct("StoreConfig")
            .field(
                "database_url",
                &self.database_url.as_ref().map(|_| "<redacted>"),
            )
            .field("data_dir", &self.data_dir)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

pub(crate) enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

struct Inner {
    backend: Backend,
    description: String,
    /// SQLite: the group-commit writer of chain scans, started on first use.
    scan_writer: std::sync::OnceLock<chains::ScanQueue>,
}

/// The repository: one connection pool to SQLite or PostgreSQL. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("database", &self.inner.description)
            .finish()
    }
}

pub(crate) fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl Store {
    /// One page of the rows `list_sql` selects for `id` (binds: id, limit, offset), and the
    /// total `count_sql` counts for it (bind: id). Shared by the lists keyed by one id.
    pub(crate) async fn page_rows<R>(
        &self,
        count_sql: &'static str,
        list_sql: &'static str,
        id: uuid::Uuid,
        page: PageRequest,
    ) -> Result<(i64, Vec<R>), StoreError>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
            + Send
            + Unpin,
    {
        let (limit, offset) = page.limit_offset()?;
        Ok(on_pool!(self, |pool| {
            let total = sqlx::query_scalar(count_sql)
                .bind(id)
                .fetch_one(pool)
                .await?;
            let rows = sqlx::query_as(list_sql)
                .bind(id)
                .bind(limit)
                .bind(offset)
                .fetch_all(pool)
                .await?;
            (total, rows)
        }))
    }
}

pub(crate) fn page_of<T>(items: Vec<T>, page: PageRequest, total: i64) -> Page<T> {
    Page {
        items,
        page: page.page,
        size: page.size,
        total: to_u64(total),
    }
}

/// `postgres://user@host:port/db`, rebuilt from the parsed options so that no password
/// (in the URL's user info or its query) can appear.
fn pg_description(opts: &PgConnectOptions) -> String {
    format!(
        "postgres://{}@{}:{}/{}",
        opts.get_username(),
        opts.get_host(),
        opts.get_port(),
        opts.get_database().unwrap_or_default()
    )
}

/// Whether `path` names a file on disk rather than an in-memory database.
fn is_sqlite_file(path: &Path) -> bool {
    let name = path.to_string_lossy();
    !(name.is_empty() || name.contains(":memory:") || name.starts_with("file:"))
}

/// Opens `<db>.setup.lock` and waits (off the async threads) for an exclusive lock on it.
/// Held while a process opens the file (the first connection may switch a new file to WAL,
/// which SQLite can refuse at once with "database is locked" when another process does the
/// same) and while it migrates. Released when the returned file is dropped, or when the
/// process dies.
async fn lock_for_setup(db: &Path) -> Result<std::fs::File, StoreError> {
    let mut name = db.as_os_str().to_owned();
    name.push(".setup.lock");
    let lock_path = PathBuf::from(name);
    let shown = lock_path.display().to_string();
    let unavailable = move |e: std::io::Error| {
        StoreError::Unavailable(format!("cannot lock {shown}"), Some(Box::new(e)))
    };
    let locked = tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)?;
        file.lock()?;
        Ok::<_, std::io::Error>(file)
    })
    .await
    .map_err(|e| unavailable(std::io::Error::other(e)))?;
    locked.map_err(unavailable)
}

impl Store {
    /// Connects (SQLite: creates the data directory and the file if needed). Does not migrate.
    pub async fn open(cfg: &StoreConfig) -> Result<Store, StoreError> {
        let max = cfg.max_connections.max(1);
        match cfg
            .database_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            None => {
                std::fs::create_dir_all(&cfg.data_dir).map_err(|e| {
                    StoreError::Unavailable(
                        format!(
                            "cannot create the data directory {}",
                            cfg.data_dir.display()
                        ),
                        Some(Box::new(e)),
                    )
                })?;
                let opts =
                    SqliteConnectOptions::new().filename(cfg.data_dir.join(SQLITE_FILE_NAME));
                Self::open_sqlite(opts, max).await
            }
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                let opts = PgConnectOptions::from_str(url).map_err(|_| {
                    StoreError::invalid("database_url", "not a valid PostgreSQL URL")
                })?;
                Self::open_pg(opts, max).await
            }
            Some(url) if url.starts_with("sqlite:") => {
                let opts = SqliteConnectOptions::from_str(url)
                    .map_err(|_| StoreError::invalid("database_url", "not a valid SQLite URL"))?;
                let file = opts.get_filename();
                let name = file.to_string_lossy();
                let in_memory = name.contains(":memory:") || name.starts_with("file:");
                if let (false, Some(parent)) = (in_memory, file.parent()) {
                    if !parent.as_os_str().is_empty() {
                        std::fs::create_dir_all(parent).map_err(|e| {
                            StoreError::Unavailable(
                                format!("cannot create the directory {}", parent.display()),
                                Some(Box::new(e)),
                            )
                        })?;
                    }
                }
                Self::open_sqlite(opts, max).await
            }
            Some(_) => Err(StoreError::invalid(
                "database_url",
                "must start with postgres://, postgresql:// or sqlite:",
            )),
        }
    }

    /// Opens PostgreSQL with every connection's `search_path` set to `schema` (which must
    /// exist). For tests that isolate themselves in a schema of their own.
    #[doc(hidden)]
    pub async fn open_postgres_with_schema(url: &str, schema: &str) -> Result<Store, StoreError> {
        if schema.is_empty()
            || !schema
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(StoreError::invalid(
                "schema",
                "must be letters, digits and _",
            ));
        }
        let opts = PgConnectOptions::from_str(url)
            .map_err(|_| StoreError::invalid("database_url", "not a valid PostgreSQL URL"))?
            .options([("search_path", schema)]);
        Self::open_pg(opts, 4).await
    }

    async fn open_sqlite(opts: SqliteConnectOptions, max: u32) -> Result<Store, StoreError> {
        let opts = opts
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let file = opts.get_filename();
        let description = format!("sqlite:{}", file.display());
        let _guard = match is_sqlite_file(file) {
            true => Some(lock_for_setup(file).await?),
            false => None,
        };
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(opts)
            .await?;
        Ok(Store::from_backend(Backend::Sqlite(pool), description))
    }

    async fn open_pg(opts: PgConnectOptions, max: u32) -> Result<Store, StoreError> {
        let opts = opts.application_name("qrlp");
        let description = pg_description(&opts);
        let pool = PgPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(opts)
            .await?;
        Ok(Store::from_backend(Backend::Postgres(pool), description))
    }

    fn from_backend(backend: Backend, description: String) -> Store {
        Store {
            inner: Arc::new(Inner {
                backend,
                description,
                scan_writer: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Applies the embedded migrations of the backend that are not applied yet (idempotent).
    ///
    /// Safe when several processes start on the same database at once: PostgreSQL takes the
    /// migrator's advisory lock, and SQLite holds an exclusive lock on `<file>.setup.lock`
    /// for the whole run (SQLite's own locks cover one migration at a time, so two processes
    /// could otherwise both decide a migration is missing and both apply it).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.inner.backend {
            Backend::Sqlite(pool) => {
                let _guard = match self.sqlite_path().filter(|p| is_sqlite_file(p)) {
                    Some(path) => Some(lock_for_setup(path).await?),
                    None => None,
                };
                SQLITE_MIGRATOR.run(pool).await?;
            }
            Backend::Postgres(pool) => POSTGRES_MIGRATOR.run(pool).await?,
        }
        Ok(())
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend_name(&self) -> &'static str {
        match self.inner.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Where the data is, for logs: `sqlite:/path/qrlp.db` or `postgres://user@host:port/db`
    /// (never a password).
    pub fn describe(&self) -> String {
        self.inner.description.clone()
    }

    /// The SQLite file, when the store is SQLite.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.inner.backend {
            Backend::Sqlite(_) => self
                .inner
                .description
                .strip_prefix("sqlite:")
                .map(Path::new),
            Backend::Postgres(_) => None,
        }
    }

    /// One round trip to the database (for readiness checks).
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query(sql::PING)
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    /// SQLite: `PRAGMA integrity_check` answers `ok` and `PRAGMA foreign_key_check` finds
    /// nothing. PostgreSQL: every table can be read.
    pub async fn integrity_check(&self) -> Result<(), StoreError> {
        match &self.inner.backend {
            Backend::Sqlite(pool) => {
                let lines: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
                    .fetch_all(pool)
                    .await?;
                if lines.len() != 1 || lines.first().map(String::as_str) != Some("ok") {
                    let report: Vec<&str> = lines.iter().take(5).map(String::as_str).collect();
                    return Err(StoreError::internal(format!(
                        "integrity check failed: {}",
                        report.join("; ")
                    )));
                }
                let dangling = sqlx::query("PRAGMA foreign_key_check")
                    .fetch_all(pool)
                    .await?;
                if !dangling.is_empty() {
                    return Err(StoreError::internal(format!(
                        "integrity check failed: {} rows violate foreign keys",
                        dangling.len()
                    )));
                }
            }
            Backend::Postgres(pool) => {
                for probe in sql::TABLE_PROBES {
                    sqlx::query(probe).fetch_optional(pool).await?;
                }
            }
        }
        Ok(())
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        on_pool!(self, |pool| pool.close().await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_pool(store: &Store) -> &SqlitePool {
        match &store.inner.backend {
            Backend::Sqlite(pool) => pool,
            Backend::Postgres(_) => unreachable!("opened as SQLite"),
        }
    }

    #[tokio::test]
    async fn sqlite_file_is_created_under_a_nested_data_dir_with_wal_and_foreign_keys() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data_dir = tmp.path().join("a").join("b").join("data");
        assert!(!data_dir.exists());
        let cfg = StoreConfig {
            database_url: None,
            data_dir: data_dir.clone(),
            max_connections: 2,
        };
        let store = Store::open(&cfg).await.expect("open");
        let file = data_dir.join(SQLITE_FILE_NAME);
        assert!(file.is_file(), "{} exists", file.display());
        assert_eq!(store.backend_name(), "sqlite");
        assert_eq!(store.describe(), format!("sqlite:{}", file.display()));
        assert_eq!(store.sqlite_path(), Some(file.as_path()));

        let pool = sqlite_pool(&store);
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(pool)
            .await
            .expect("journal_mode");
        assert_eq!(mode, "wal");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(pool)
            .await
            .expect("foreign_keys");
        assert_eq!(fk, 1);
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(pool)
            .await
            .expect("synchronous");
        assert_eq!(sync, 2, "FULL");
        let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(pool)
            .await
            .expect("busy_timeout");
        assert_eq!(busy, 5000);

        store.migrate().await.expect("migrate");
        // The audit log refuses changes even to SQL written by hand.
        sqlx::query("INSERT INTO audit_log (id, actor_type, action, target_type, details, created_at) VALUES (x'00', 'system', 'a', 'b', '{}', 'now')")
            .execute(pool)
            .await
            .expect("insert");
        assert!(sqlx::query("DELETE FROM audit_log")
            .execute(pool)
            .await
            .is_err());
        assert!(sqlx::query("UPDATE audit_log SET action = 'x'")
            .execute(pool)
            .await
            .is_err());
        store.close().await;
    }

    #[tokio::test]
    async fn urls_are_recognized() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let path = tmp.path().join("nested").join("other.db");
        let cfg = StoreConfig {
            database_url: Some(format!("sqlite://{}", path.display())),
            data_dir: tmp.path().join("unused"),
            max_connections: 1,
        };
        let store = Store::open(&cfg).await.expect("sqlite url");
        assert!(path.is_file());
        assert!(!tmp.path().join("unused").exists());
        store.close().await;

        let bad = StoreConfig {
            database_url: Some("mysql://root:pw@localhost/db".into()),
            ..StoreConfig::default()
        };
        assert!(matches!(
            Store::open(&bad).await,
            Err(StoreError::Invalid(_))
        ));
        assert!(!format!("{bad:?}").contains("pw"), "Debug hides the URL");
    }

    #[test]
    fn postgres_description_has_no_password() {
        let opts =
            PgConnectOptions::from_str("postgres://app:hunter2@db.local:5433/qrlp?sslmode=disable")
                .expect("url");
        assert_eq!(pg_description(&opts), "postgres://app@db.local:5433/qrlp");
        let opts = PgConnectOptions::from_str("postgresql://app@db.local/qrlp?password=hunter2")
            .expect("url");
        assert!(!pg_description(&opts).contains("hunter2"));
    }
}
