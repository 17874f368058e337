//! `GET /r/{slug}`: the short link of a tracked QR code, the hot path.
//!
//! The slug is checked for its form, looked up in the slug cache (the database on a miss),
//! and answered with a 302 to the current target (`Cache-Control: no-store`, so browsers ask
//! again after a change; `Referrer-Policy: no-referrer`). The scan is handed to the recorder
//! and never waited for; `HEAD` answers the same and is not counted. Unknown slug: a small
//! 404 page; archived code: a 410 page. The client address is cut to /24 or /48 here, before
//! anything keeps it, and is never logged.

use std::net::{IpAddr, Ipv4Addr};

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use qrlp_store::qr_model::ScanSource;
use qrlp_tracking::address::anonymize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::client::ClientInfo;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store_error;
use crate::tracking::recorder::{cut, PendingScan};

const NOT_FOUND_PAGE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width\"><title>Link not found</title></head>\
<body><h1>Link not found</h1><p>This QR code or short link does not exist.</p></body></html>\n";
const GONE_PAGE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width\"><title>Link no longer active</title></head>\
<body><h1>Link no longer active</h1><p>The owner of this QR code has switched it off.</p></body></html>\n";

fn page(status: StatusCode, html: &'static str) -> Response {
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Whether the query carries the QR marker `q` (what the code encodes; the plain link
/// does not).
fn from_qr(query: Option<&str>) -> bool {
    query.is_some_and(|q| q.split('&').any(|p| p == "q" || p.starts_with("q=")))
}

/// Follow a short link.
#[utoipa::path(
    get,
    path = "/r/{slug}",
    tag = "qr-codes",
    params(
        ("slug" = String, Path, description = "The code's slug"),
        ("q" = Option<String>, Query, description = "Marker present in what the QR code encodes: the scan counts as from the code, else from the link")
    ),
    responses(
        (status = 302, description = "To the code's current target", headers(
            ("Location" = String, description = "The target with its UTM parameters"),
            ("Cache-Control" = String, description = "no-store"),
            ("Referrer-Policy" = String, description = "no-referrer")
        )),
        (status = 404, description = "No such link (HTML page)", content_type = "text/html", body = String),
        (status = 410, description = "The code is archived (HTML page)", content_type = "text/html", body = String)
    )
)]
pub async fn redirect(
    State(state): State<AppState>,
    method: Method,
    Path(slug): Path<String>,
    RawQuery(query): RawQuery,
    client: ClientInfo,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !qrlp_tracking::slug::is_valid(&slug) {
        return Ok(page(StatusCode::NOT_FOUND, NOT_FOUND_PAGE));
    }
    let tracking = state.tracking();
    let Some(entry) = tracking.lookup(&slug).await.map_err(store_error)? else {
        return Ok(page(StatusCode::NOT_FOUND, NOT_FOUND_PAGE));
    };
    if entry.archived {
        return Ok(page(StatusCode::GONE, GONE_PAGE));
    }
    let Some(location) = entry.location.clone() else {
        return Err(ApiError::internal(
            "stored target is not a valid header value",
        ));
    };
    if method != Method::HEAD && entry.settings.tracking_enabled {
        // The derived client (behind `server.trusted_proxies`, the forwarded one).
        let ip = client.ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let text = |name: header::HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty())
                .map(cut)
        };
        // Back-pressure: answer no faster than scans are written (see the recorder).
        tracking.recorder().keep_up().await;
        tracking.recorder().push(PendingScan {
            id: Uuid::now_v7(),
            qr_code_id: entry.qr_code_id,
            at: OffsetDateTime::now_utc(),
            address: anonymize(ip),
            user_agent: text(header::USER_AGENT),
            referer: if entry.settings.record_referrer {
                text(header::REFERER)
            } else {
                None
            },
            source: if from_qr(query.as_deref()) {
                ScanSource::Qr
            } else {
                ScanSource::Link
            },
            settings: entry.settings,
        });
    }
    let mut r = StatusCode::FOUND.into_response();
    let h = r.headers_mut();
    h.insert(header::LOCATION, location);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_qr_marker() {
        assert!(from_qr(Some("q")));
        assert!(from_qr(Some("a=1&q")));
        assert!(from_qr(Some("q=1")));
        assert!(!from_qr(Some("qq=1")));
        assert!(!from_qr(None));
    }
}
