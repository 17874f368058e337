//! Rate limits: each organization's plan budget per hour (free 100, starter 1,000,
//! professional 10,000, enterprise 100,000), and a per-address budget for unauthenticated
//! routes (`rate_limit.ip_per_hour`).
//!
//! The budgets live in this process ([`qrlp_ratelimit::LocalLimiter`]) or, when `redis.url`
//! is set, in Redis ([`qrlp_ratelimit::RedisLimiter`]: GCRA in one Lua script on Redis's
//! clock), so that every server process sharing the Redis spends one budget. While Redis is
//! down, `rate_limit.redis_fail_mode` decides: `open` lets requests through, `closed`
//! answers 503; `/readyz` reports Redis either way.
//!
//! Every response to a charged request carries `X-RateLimit-Limit`, `X-RateLimit-Remaining`
//! and `X-RateLimit-Reset` (ISO-8601 UTC, when the budget is full again); a refused one is
//! a 429 `RATE_LIMITED` envelope with `Retry-After` in seconds.

use std::net::IpAddr;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use qrlp_config::{Config, FailMode as ConfigFailMode};
use qrlp_ratelimit::{Decision, FailMode, Limiter, LocalLimiter, Quota, RedisLimiter};
use qrlp_store::{Organization, Plan};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::client::ClientInfo;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// `X-RateLimit-Limit`.
pub static LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
/// `X-RateLimit-Remaining`.
pub static REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
/// `X-RateLimit-Reset`.
pub static RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// What a request is charged to.
#[derive(Debug, Clone, Copy)]
pub enum Bucket<'a> {
    /// An organization, by its plan.
    Organization(&'a Organization),
    /// A user acting outside any one organization: the free plan's budget.
    User(Uuid),
}

/// The limiter `config` asks for, or `None` when limits are off.
///
/// # Errors
/// When the Redis URL cannot be used.
pub fn limiter(config: &Config) -> Result<Option<Limiter>, qrlp_ratelimit::LimitError> {
    if !config.rate_limit.enabled {
        return Ok(None);
    }
    if !config.redis.is_configured() {
        return Ok(Some(Limiter::Local(LocalLimiter::new())));
    }
    let redis = RedisLimiter::lazy(
        &config.redis.url,
        "qrlp:rl:",
        Duration::from_millis(config.redis.timeout_ms),
    )?;
    let fail_mode = match config.rate_limit.redis_fail_mode {
        ConfigFailMode::Open => FailMode::Open,
        ConfigFailMode::Closed => FailMode::Closed,
    };
    Ok(Some(Limiter::Redis { redis, fail_mode }))
}

/// The hourly budget of a plan.
pub fn plan_quota(plan: Plan) -> Quota {
    Quota::per_hour(plan.requests_per_hour())
}

/// Charges one request to `bucket`. `Ok(None)` when limits are off; `Err` is the response
/// to send instead (429, or 503 when the limiter fails closed).
pub async fn charge(state: &AppState, bucket: Bucket<'_>) -> Result<Option<Decision>, Response> {
    let Some(limiter) = state.limiter() else {
        return Ok(None);
    };
    let (key, quota) = match bucket {
        Bucket::Organization(o) => (format!("org:{}", o.id), plan_quota(o.plan)),
        Bucket::User(u) => (format!("user:{u}"), plan_quota(Plan::Free)),
    };
    decide(limiter, &key, quota).await.map(Some)
}

/// Charges one request to the client's address ([`crate::client::ClientInfo`]: behind a
/// trusted proxy, the forwarded one) when the per-address limit is on: `Ok(None)` when it
/// is off, `Err` the 429 (or 503) to send instead.
pub async fn charge_ip(
    state: &AppState,
    client: Option<IpAddr>,
) -> Result<Option<Decision>, Response> {
    let per_hour = state.config().rate_limit.ip_per_hour;
    let (Some(limiter), Some(ip), true) = (state.limiter(), client, per_hour > 0) else {
        return Ok(None);
    };
    let key = format!("ip:{}", ip.to_canonical());
    decide(limiter, &key, Quota::per_hour(per_hour))
        .await
        .map(Some)
}

async fn decide(limiter: &Limiter, key: &str, quota: Quota) -> Result<Decision, Response> {
    match limiter.check(key, quota).await {
        Ok(d) if d.allowed => Ok(d),
        Ok(d) => Err(too_many(&d)),
        Err(e) => {
            tracing::error!(error = %e, "rate limiter unavailable; refusing (fail closed)");
            Err(ApiError::new(
                ErrorCode::Unavailable,
                "Rate limiter unavailable; try again shortly",
            )
            .into_response())
        }
    }
}

fn too_many(d: &Decision) -> Response {
    let retry = d
        .retry_after
        .unwrap_or(Duration::from_secs(1))
        .as_secs()
        .max(1);
    let mut response = ApiError::new(
        ErrorCode::RateLimited,
        format!(
            "Rate limit exceeded: {} requests per hour; retry in {retry} s",
            d.limit
        ),
    )
    .with_details(serde_json::json!({ "limit": d.limit, "retry_after_secs": retry }))
    .into_response();
    set_headers(response.headers_mut(), d);
    response
        .headers_mut()
        .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(retry));
    response
}

/// Puts the `X-RateLimit-*` headers of `d` on a response.
pub fn set_headers(headers: &mut HeaderMap, d: &Decision) {
    headers.insert(&LIMIT, HeaderValue::from(d.limit));
    headers.insert(&REMAINING, HeaderValue::from(d.remaining));
    let reset = OffsetDateTime::now_utc() + d.reset_after;
    if let Ok(v) = HeaderValue::from_str(&iso8601_seconds(reset)) {
        headers.insert(&RESET, v);
    }
}

/// `2025-01-15T12:00:00Z`: UTC, whole seconds, rounded up.
pub fn iso8601_seconds(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let t = if t.nanosecond() > 0 {
        t.replace_nanosecond(0).unwrap_or(t) + Duration::from_secs(1)
    } else {
        t
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Middleware of unauthenticated routes: charges the client's address.
pub async fn per_address(
    Extension(state): Extension<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let client = ClientInfo::of(req.headers(), req.extensions(), &state);
    match charge_ip(&state, client.ip).await {
        Ok(decision) => {
            let mut response = next.run(req).await;
            if let Some(d) = &decision {
                set_headers(response.headers_mut(), d);
            }
            response
        }
        Err(response) => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_is_whole_seconds_rounded_up() {
        let t = OffsetDateTime::from_unix_timestamp(1_736_942_400).unwrap();
        assert_eq!(iso8601_seconds(t), "2025-01-15T12:00:00Z");
        let t = t + Duration::from_millis(1);
        assert_eq!(iso8601_seconds(t), "2025-01-15T12:00:01Z");
    }
}
