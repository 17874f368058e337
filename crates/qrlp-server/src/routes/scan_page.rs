//! The page a chain's code opens: `/s/{chainId}/{hashValue}`.
//!
//! `GET` only shows the chain's name and a button; it never changes anything, because link
//! previewers and mail scanners fetch links on their own. The button `POST`s to the same
//! address, which scans the value (as `public`) and shows "Accepted" or "Already used" in
//! large type. The `POST` is limited per client address (`rate_limit.ip_per_hour`).

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use qrlp_store::{ScanSource, ScanVerdict, StoreError};

use crate::client::ClientInfo;
use crate::limits;
use crate::routes::chains::chain_id;
use crate::state::AppState;

/// The routes of the scan page (not part of the JSON API or its OpenAPI document).
pub fn router() -> Router<AppState> {
    Router::new().route(
        "/s/{chain_id}/{hash_value}",
        get(page).merge(post(submit).route_layer(axum::middleware::from_fn(limits::per_address))),
    )
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn html(status: StatusCode, title: &str, body: &str) -> Response {
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;text-align:center;margin:3em 1em}}\
         .big{{font-size:3em;font-weight:700;margin:.5em 0}}.ok{{color:#0a7a2f}}\
         .no{{color:#b3261e}}button{{font-size:1.6em;padding:.6em 1.6em;border-radius:.4em}}\
         </style></head><body>{body}</body></html>",
        title = escape(title),
    );
    let mut r = (status, Html(page)).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r.headers_mut().insert(
        header::HeaderName::from_static("referrer-policy"),
        header::HeaderValue::from_static("no-referrer"),
    );
    r
}

fn not_found() -> Response {
    html(
        StatusCode::NOT_FOUND,
        "Not found",
        "<p class=\"big no\">Unknown code</p>",
    )
}

fn unavailable(e: StoreError) -> Response {
    tracing::error!(error = %e, "scan page");
    html(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again",
        "<p class=\"big no\">Try again shortly</p>",
    )
}

/// Shows the chain's name and the button. Changes nothing.
pub async fn page(
    State(state): State<AppState>,
    Path((chain, value)): Path<(String, String)>,
) -> Response {
    let Ok(id) = chain_id(&chain) else {
        return not_found();
    };
    let chain = match state.store().get_chain_public(id).await {
        Ok(c) => c,
        Err(StoreError::NotFound) => return not_found(),
        Err(e) => return unavailable(e),
    };
    let name = escape(&chain.name);
    let short = escape(&value.chars().take(12).collect::<String>());
    html(
        StatusCode::OK,
        &chain.name,
        &format!(
            "<h1>{name}</h1><p>Code <code>{short}…</code></p>\
             <form method=\"post\"><button type=\"submit\">Use this code</button></form>\
             <p>Each code works once.</p>"
        ),
    )
}

/// Scans the value and shows the verdict.
pub async fn submit(
    State(state): State<AppState>,
    Path((chain, value)): Path<(String, String)>,
    client: ClientInfo,
    headers: HeaderMap,
) -> Response {
    let Ok(id) = chain_id(&chain) else {
        return not_found();
    };
    let source = ScanSource {
        scanned_by: Some("public".into()),
        ip_address: client.ip.map(|ip| ip.to_canonical().to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    };
    let outcome = match state.store().scan_chain(None, id, &value, &source).await {
        Ok(o) => o,
        Err(StoreError::NotFound) => return not_found(),
        Err(e) => return unavailable(e),
    };
    state.wake_webhooks();
    let name = escape(&outcome.chain.name);
    let (status, class, verdict) = match outcome.verdict {
        ScanVerdict::Accepted => (StatusCode::OK, "ok", "Accepted"),
        ScanVerdict::AlreadyScanned => (StatusCode::CONFLICT, "no", "Already used"),
        ScanVerdict::Invalid => (StatusCode::BAD_REQUEST, "no", "Not valid"),
        ScanVerdict::Exhausted => (StatusCode::CONFLICT, "no", "All codes used"),
        ScanVerdict::Inactive => (StatusCode::CONFLICT, "no", "Not active"),
    };
    html(
        status,
        verdict,
        &format!("<h1>{name}</h1><p class=\"big {class}\">{verdict}</p>"),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup() {
        assert_eq!(
            super::escape("<b a=\"1\">'&"),
            "&lt;b a=&quot;1&quot;&gt;&#39;&amp;"
        );
    }
}
