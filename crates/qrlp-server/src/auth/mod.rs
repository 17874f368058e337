//! Authentication: API keys and web sessions, the organization a request acts in, CSRF
//! defence for cookie requests, and the per-organization rate limit.
//!
//! [`authenticate`] is the middleware of every protected route. In order it:
//! 1. finds the credential: `X-API-Key: <key>` or `Authorization: Bearer <key>`, else the
//!    `qrlp_session` cookie (401 `UNAUTHORIZED` when none is valid);
//! 2. for a cookie on a mutating method, checks `Origin` (or `Referer`) against the server's
//!    own origin and the CORS allow-list, and the `X-CSRF-Token` header against the
//!    session's token (403 `FORBIDDEN` otherwise);
//! 3. resolves the organization: the `{org_id}` of the path (403 when the principal is not a
//!    member), else the key's organization, else a session's `X-Organization-Id` header or
//!    its only membership;
//! 4. charges the organization's plan budget ([`crate::limits`]), answering 429
//!    `RATE_LIMITED` when it is spent, and puts `X-RateLimit-*` headers on the response;
//! 5. hands an [`AuthContext`] to the handler, whose [`Auth`] extractor checks the
//!    permission the handler declares.
//!
//! API key lookups are cached for `auth.key_cache_ttl_ms` (at most 5 s): a key revoked or
//! expired through any server process sharing the database stops working everywhere within
//! that time, because every process re-reads the key when its cached copy is older.
//!
//! One file per job: [`context`] (what a handler sees: principal, organization, the
//! [`Auth`] extractor), [`credentials`] (API keys and their cache, sessions by token,
//! password hashing), [`cookies`] (the session cookie and CSRF), [`org`] (which
//! organization a request acts in) and [`middleware`] (the order of the checks).

use axum::http::HeaderName;

pub mod context;
pub mod cookies;
pub mod credentials;
pub mod middleware;
pub mod org;

pub use context::{Auth, AuthContext, KeyPrincipal, OrgContext, PeerAddr, Principal, RequestMeta};
pub use cookies::{cookie, session_cookie, SESSION_COOKIE};
pub use credentials::{api_key_of, session_hash, Authenticator, Passwords};
pub use middleware::authenticate;

/// Header carrying the session's CSRF token on mutating cookie requests.
pub static CSRF_HEADER: HeaderName = HeaderName::from_static("x-csrf-token");
/// Header choosing the organization of a session request outside an organization path.
pub static ORG_HEADER: HeaderName = HeaderName::from_static("x-organization-id");
/// Header carrying an API key.
pub static API_KEY_HEADER: HeaderName = HeaderName::from_static("x-api-key");
