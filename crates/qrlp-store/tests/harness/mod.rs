//! The harness of the store's test suites: every case runs on a fresh SQLite store in a
//! temporary directory, always, and on PostgreSQL in a schema of its own when
//! `QRLP_TEST_POSTGRES_URL` is set (an unreachable server then fails the test).
//!
//! A suite lists its cases with `cases! { case_a, case_b }` (cases `async fn(&Store)`) or
//! `cases! { with_file: case_a }` (cases `async fn(&Store, Option<PathBuf>)`, given the
//! SQLite file on SQLite).

use std::future::Future;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Once;

use qrlp_store::{Store, StoreConfig};
use uuid::Uuid;

const PG_VAR: &str = "QRLP_TEST_POSTGRES_URL";

/// Writes straight to the process's stderr, past the test harness's output capture, so the
/// notice shows in a normal `cargo test` run.
pub fn notice(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Runs `case` on both backends; see the module documentation.
pub async fn run_case<F, Fut>(name: &str, case: F)
where
    F: Fn(Store, Option<PathBuf>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    // SQLite, always.
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = StoreConfig {
        database_url: None,
        data_dir: dir.path().join("data"),
        max_connections: 8,
    };
    let store = Store::open(&cfg).await.expect("open sqlite store");
    store.migrate().await.expect("migrate sqlite");
    let file = store.sqlite_path().map(|p| p.to_path_buf());
    let outcome = tokio::spawn(case(store.clone(), file)).await;
    store.close().await;
    if let Err(err) = outcome {
        notice(&format!("case {name} failed on sqlite"));
        std::panic::resume_unwind(err.into_panic());
    }

    // PostgreSQL, when configured.
    let url = match std::env::var(PG_VAR) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => {
            static ONCE: Once = Once::new();
            ONCE.call_once(|| notice("SKIPPED postgres: QRLP_TEST_POSTGRES_URL not set"));
            return;
        }
    };
    let admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect(&url)
        .await
        .unwrap_or_else(|e| panic!("{PG_VAR} is set but PostgreSQL is unreachable: {e}"));
    let schema = format!("qrlp_t_{}", Uuid::now_v7().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .expect("create schema");
    let store = Store::open_postgres_with_schema(&url, &schema)
        .await
        .expect("open postgres store");
    let migrated = store.migrate().await;
    let outcome = match migrated {
        Ok(()) => tokio::spawn(case(store.clone(), None)).await,
        Err(e) => tokio::spawn(async move { panic!("migrate postgres: {e}") }).await,
    };
    store.close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&admin)
        .await
        .expect("drop schema");
    admin.close().await;
    if let Err(err) = outcome {
        notice(&format!("case {name} failed on postgres"));
        std::panic::resume_unwind(err.into_panic());
    }
}

/// One `#[tokio::test]` per case, in a module `both_backends`; see the module documentation.
macro_rules! cases {
    (with_file: $($case:ident),* $(,)?) => {
        mod both_backends {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    crate::harness::run_case(stringify!($case), |store, file| async move {
                        super::$case(&store, file).await
                    })
                    .await;
                }
            )*
        }
    };
    ($($case:ident),* $(,)?) => {
        mod both_backends {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    crate::harness::run_case(stringify!($case), |store, _file| async move {
                        super::$case(&store).await
                    })
                    .await;
                }
            )*
        }
    };
}
