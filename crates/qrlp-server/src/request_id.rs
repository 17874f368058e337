//! Request ids: taken from `X-Request-ID` when acceptable, otherwise a new UUID v4.
//!
//! The id of the request being handled is kept in a task-local, so that an [`ApiError`]
//! can put it in the body without every handler passing it along.
//!
//! [`ApiError`]: crate::ApiError

use std::fmt;
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderName, HeaderValue};

/// The request and response header.
pub static HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The longest client-supplied id kept, in characters.
pub const MAX_LEN: usize = 128;

tokio::task_local! {
    static CURRENT: RequestId;
}

/// A request id: at most 128 visible ASCII characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// The client's `X-Request-ID` if it is 1 to 128 visible ASCII characters (no spaces),
    /// otherwise a new UUID v4.
    pub fn from_headers(headers: &HeaderMap) -> RequestId {
        headers
            .get(&HEADER)
            .and_then(|v| RequestId::parse(v.as_bytes()))
            .unwrap_or_else(RequestId::generate)
    }

    /// `Some` when `raw` is an acceptable client id.
    ///
    /// ```
    /// use qrlp_server::RequestId;
    /// assert!(RequestId::parse(b"abc-123").is_some());
    /// assert!(RequestId::parse(b"has space").is_none());
    /// assert!(RequestId::parse(&[b'x'; 129]).is_none());
    /// assert!(RequestId::parse(b"").is_none());
    /// ```
    pub fn parse(raw: &[u8]) -> Option<RequestId> {
        if raw.is_empty() || raw.len() > MAX_LEN || !raw.iter().all(u8::is_ascii_graphic) {
            return None;
        }
        // Visible ASCII is valid UTF-8.
        std::str::from_utf8(raw)
            .ok()
            .map(|s| RequestId(Arc::from(s)))
    }

    /// A new random UUID v4.
    pub fn generate() -> RequestId {
        let mut buf = uuid::Uuid::encode_buffer();
        RequestId(Arc::from(
            &*uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf),
        ))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as a header value.
    pub fn header_value(&self) -> HeaderValue {
        HeaderValue::from_str(&self.0).expect("visible ASCII is a valid header value")
    }

    /// The id of the request this task is handling, if any.
    pub fn current() -> Option<RequestId> {
        CURRENT.try_with(RequestId::clone).ok()
    }

    /// Runs `f` with `self` as [`RequestId::current`].
    pub async fn scope<F: std::future::Future>(self, f: F) -> F::Output {
        CURRENT.scope(self, f).await
    }

    /// Runs `f` synchronously with `self` as [`RequestId::current`].
    pub fn sync_scope<R>(self, f: impl FnOnce() -> R) -> R {
        CURRENT.sync_scope(self, f)
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_uuid_v4() {
        let id = RequestId::generate();
        let parsed = uuid::Uuid::parse_str(id.as_str()).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(id.as_str().len(), 36);
    }

    #[test]
    fn client_ids() {
        let mut h = HeaderMap::new();
        h.insert(&HEADER, HeaderValue::from_static("req-1"));
        assert_eq!(RequestId::from_headers(&h).as_str(), "req-1");
        let long = "a".repeat(128);
        h.insert(&HEADER, HeaderValue::from_str(&long).unwrap());
        assert_eq!(RequestId::from_headers(&h).as_str(), long);
        for bad in ["a".repeat(129), "tab\there".into(), " ".into()] {
            h.insert(&HEADER, HeaderValue::from_str(&bad).unwrap());
            assert_ne!(RequestId::from_headers(&h).as_str(), bad);
        }
        h.insert(&HEADER, HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap());
        assert_eq!(RequestId::from_headers(&h).as_str().len(), 36);
    }
}
