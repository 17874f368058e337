//! What authentication plus the plan rate limit add to a request: the same trivial handler
//! served with and without the `authenticate` middleware, through the whole application
//! (request id, metrics, log line), in process. The difference of the medians is the
//! overhead (issue target: at most 50 µs).
//!
//! `cargo bench -p qrlp-server --bench auth`

use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use axum::Router;
use criterion::{criterion_group, criterion_main, Criterion};
use qrlp_config::Config;
use qrlp_server::AppState;
use qrlp_store::{NewApiKeyMaterial, Plan, Store, StoreConfig};
use tower::ServiceExt;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (app, keys) = rt.block_on(async {
        let mut config = Config::default();
        config.log.level = "off".into();
        config.storage.data_dir = dir.path().display().to_string();
        let store = Store::open(&StoreConfig {
            database_url: None,
            data_dir: dir.path().to_path_buf(),
            max_connections: 4,
        })
        .await
        .unwrap();
        store.migrate().await.unwrap();
        // Enough enterprise budgets that no measured request is refused.
        let mut keys = Vec::new();
        for i in 0..40 {
            let key = qrlp_store::secret::generate_api_key();
            store
                .bootstrap(
                    &format!("bench-{i}"),
                    Plan::Enterprise,
                    "bench@example.com",
                    "Bench",
                    NewApiKeyMaterial {
                        name: "bench".into(),
                        prefix: key.prefix.clone(),
                        hash: key.hash,
                    },
                )
                .await
                .unwrap();
            keys.push(key.secret.clone());
        }
        let state = AppState::new(config, store).unwrap();
        let extra = Router::new()
            .route("/bench/plain", get(|| async { "ok" }))
            .merge(
                Router::new()
                    .route("/bench/authed", get(|| async { "ok" }))
                    .route_layer(axum::middleware::from_fn(qrlp_server::auth::authenticate)),
            );
        (qrlp_server::app_with(state, extra), keys)
    });

    let mut group = c.benchmark_group("auth_overhead");
    group.bench_function("without_auth", |b| {
        b.to_async(&rt).iter(|| {
            let app = app.clone();
            async move {
                let r = app
                    .oneshot(Request::get("/bench/plain").body(Body::empty()).unwrap())
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
        })
    });
    let mut i = 0usize;
    group.bench_function("api_key_and_rate_limit", |b| {
        b.to_async(&rt).iter(|| {
            i = (i + 1) % keys.len();
            let key = keys[i].clone();
            let app = app.clone();
            async move {
                let r = app
                    .oneshot(
                        Request::get("/bench/authed")
                            .header("x-api-key", key)
                            .body(Body::empty())
                            .unwrap(),
                    )
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
