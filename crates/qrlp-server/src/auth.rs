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

use std::collections::HashMap;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use qrlp_store::{Actor, ApiKey, AuditContext, Organization, Role, Session, Store, User};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::authz::{role_grants, scopes_allow, Permission, Requirement};
use crate::error::ApiError;
use crate::request_id::RequestId;
use crate::state::AppState;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "qrlp_session";
/// Header carrying the session's CSRF token on mutating cookie requests.
pub static CSRF_HEADER: HeaderName = HeaderName::from_static("x-csrf-token");
/// Header choosing the organization of a session request outside an organization path.
pub static ORG_HEADER: HeaderName = HeaderName::from_static("x-organization-id");
/// Header carrying an API key.
pub static API_KEY_HEADER: HeaderName = HeaderName::from_static("x-api-key");

/// Largest number of API keys kept in one process's cache; it is cleared when full.
const KEY_CACHE_MAX: usize = 10_000;
/// `last_used_at` is written at most this often per key and process.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// An authenticated API key: the key, its organization and the role it acts with (its
/// creator's current role there).
#[derive(Debug)]
pub struct KeyPrincipal {
    /// The key (never its secret: only the hash is stored).
    pub key: ApiKey,
    /// The organization the key belongs to.
    pub organization: Organization,
    /// The role the key acts with.
    pub role: Role,
}

/// Who is making the request.
#[derive(Debug, Clone)]
pub enum Principal {
    /// An API key.
    ApiKey(Arc<KeyPrincipal>),
    /// A logged-in user, by session cookie.
    Session {
        /// The user.
        user: User,
        /// The session.
        session: Session,
    },
}

impl Principal {
    /// The actor recorded in the audit log.
    pub fn actor(&self) -> Actor {
        match self {
            Principal::ApiKey(k) => Actor::ApiKey(k.key.id),
            Principal::Session { user, .. } => Actor::User(user.id),
        }
    }

    /// The user acting: the session's, or the key's creator.
    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Principal::ApiKey(k) => k.key.created_by,
            Principal::Session { user, .. } => Some(user.id),
        }
    }
}

/// The organization a request acts in and the principal's role there.
#[derive(Debug, Clone)]
pub struct OrgContext {
    /// The organization.
    pub organization: Organization,
    /// The principal's role in it.
    pub role: Role,
}

/// Where a request came from, for the audit log.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    /// The peer's IP address.
    pub ip: Option<String>,
    /// The `User-Agent` header, at most 512 characters.
    pub user_agent: Option<String>,
    /// The request id.
    pub request_id: Option<String>,
}

impl RequestMeta {
    /// Reads the peer address, user agent and current request id.
    pub fn of(parts_headers: &HeaderMap, peer: Option<SocketAddr>) -> RequestMeta {
        RequestMeta {
            ip: peer.map(|a| a.ip().to_canonical().to_string()),
            user_agent: parts_headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(512).collect()),
            request_id: RequestId::current().map(|id| id.to_string()),
        }
    }

    /// An audit context for `actor` in `org`.
    pub fn audit(&self, org_id: Option<Uuid>, actor: Actor) -> AuditContext {
        AuditContext {
            org_id,
            actor,
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
            request_id: self.request_id.clone(),
        }
    }
}

/// Extractor: the peer's address, when the server was started with connect info.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for PeerAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(PeerAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

/// What a protected handler knows about the request's principal.
#[derive(Debug)]
pub struct AuthContext {
    /// Who.
    pub principal: Principal,
    /// In which organization, if one applies.
    pub org: Option<OrgContext>,
    /// From where.
    pub meta: RequestMeta,
}

impl AuthContext {
    /// Whether the principal holds `permission` in the request's organization.
    pub fn allows(&self, permission: Permission) -> bool {
        if permission == Permission::Authenticated {
            return true;
        }
        let Some(org) = &self.org else { return false };
        if !role_grants(org.role, permission) {
            return false;
        }
        match &self.principal {
            Principal::ApiKey(k) => scopes_allow(&k.key.scopes, permission),
            Principal::Session { .. } => true,
        }
    }

    /// 403 unless the principal holds `permission`; 400 when no organization applies.
    ///
    /// # Errors
    /// As above.
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if permission != Permission::Authenticated && self.org.is_none() {
            return Err(no_organization());
        }
        if self.allows(permission) {
            return Ok(());
        }
        let role = self.org.as_ref().map_or("none", |o| o.role.as_str());
        Err(ApiError::forbidden(format!(
            "This needs the {permission} permission, which your role ({role}) or key scopes do not grant"
        ))
        .with_details(serde_json::json!({ "required": permission.scope(), "role": role })))
    }

    /// The organization of the request.
    ///
    /// # Errors
    /// 400 when none applies.
    pub fn org(&self) -> Result<&OrgContext, ApiError> {
        self.org.as_ref().ok_or_else(no_organization)
    }

    /// An audit context for a change in `org_id` (or the request's organization).
    pub fn audit(&self) -> AuditContext {
        self.meta.audit(
            self.org.as_ref().map(|o| o.organization.id),
            self.principal.actor(),
        )
    }
}

fn no_organization() -> ApiError {
    ApiError::invalid_field(
        "X-Organization-Id",
        "this route acts in one organization: send the X-Organization-Id header (you belong to several or none)",
    )
}

/// Extractor for protected handlers: the [`AuthContext`], after checking that the principal
/// holds `P`'s permission. The type parameter is the route's declared permission.
pub struct Auth<P: Requirement>(pub Arc<AuthContext>, PhantomData<P>);

impl<P: Requirement> std::ops::Deref for Auth<P> {
    type Target = AuthContext;

    fn deref(&self) -> &AuthContext {
        &self.0
    }
}

impl<P: Requirement, S: Send + Sync> FromRequestParts<S> for Auth<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ctx = parts
            .extensions
            .get::<Arc<AuthContext>>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("Authentication required"))?;
        ctx.require(P::PERMISSION)?;
        Ok(Auth(ctx, PhantomData))
    }
}

/// Resolves credentials to principals, caching API keys briefly.
pub struct Authenticator {
    store: Store,
    ttl: Duration,
    cache: Mutex<HashMap<[u8; 32], CachedKey>>,
}

struct CachedKey {
    fetched: Instant,
    principal: Option<Arc<KeyPrincipal>>,
    touched: Option<Instant>,
}

impl Authenticator {
    /// An authenticator over `store`, reusing key lookups for `ttl`.
    pub fn new(store: Store, ttl: Duration) -> Authenticator {
        Authenticator {
            store,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The principal of an API key secret, or 401.
    ///
    /// # Errors
    /// 401 for unknown, revoked or expired keys and keys whose creator left the
    /// organization; 503 when the database cannot be reached.
    pub async fn api_key(&self, secret: &str) -> Result<Arc<KeyPrincipal>, ApiError> {
        if !qrlp_store::secret::looks_like_api_key(secret) {
            return Err(invalid_key());
        }
        let hash = qrlp_store::secret::hash_api_key(secret);
        let now = Instant::now();
        let cached = {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            cache
                .get(&hash)
                .filter(|c| now.duration_since(c.fetched) < self.ttl)
                .map(|c| c.principal.clone())
        };
        let principal = match cached {
            Some(p) => p,
            None => {
                let p = self.load(&hash).await?;
                let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
                if cache.len() >= KEY_CACHE_MAX {
                    cache.clear();
                }
                let touched = cache.get(&hash).and_then(|c| c.touched);
                cache.insert(
                    hash,
                    CachedKey {
                        fetched: now,
                        principal: p.clone(),
                        touched,
                    },
                );
                p
            }
        };
        let principal = principal.ok_or_else(invalid_key)?;
        if !principal.key.is_active(OffsetDateTime::now_utc()) {
            return Err(invalid_key());
        }
        self.touch(&hash, &principal, now);
        Ok(principal)
    }

    /// Reads a key and its creator's role; `None` for keys that cannot act.
    async fn load(&self, hash: &[u8; 32]) -> Result<Option<Arc<KeyPrincipal>>, ApiError> {
        let Some(found) = self
            .store
            .find_api_key(hash)
            .await
            .map_err(crate::store_error)?
        else {
            return Ok(None);
        };
        let role = match found.key.created_by {
            None => Some(Role::Owner),
            Some(user) => self
                .store
                .get_role(found.organization.id, user)
                .await
                .map_err(crate::store_error)?,
        };
        Ok(role.map(|role| {
            Arc::new(KeyPrincipal {
                key: found.key,
                organization: found.organization,
                role,
            })
        }))
    }

    /// Records `last_used_at` in the background, at most once a minute per key.
    fn touch(&self, hash: &[u8; 32], principal: &Arc<KeyPrincipal>, now: Instant) {
        {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            let Some(entry) = cache.get_mut(hash) else {
                return;
            };
            if entry
                .touched
                .is_some_and(|t| now.duration_since(t) < TOUCH_EVERY)
            {
                return;
            }
            entry.touched = Some(now);
        }
        let store = self.store.clone();
        let id = principal.key.id;
        tokio::spawn(async move {
            if let Err(e) = store.touch_api_key(id, OffsetDateTime::now_utc()).await {
                tracing::warn!(key_id = %id, error = %e, "could not record API key use");
            }
        });
    }

    /// The principal of a session cookie token, or 401.
    ///
    /// # Errors
    /// 401 for unknown or expired sessions; 503 when the database cannot be reached.
    pub async fn session(&self, token: &str) -> Result<(User, Session), ApiError> {
        let hash = session_hash(token).ok_or_else(expired_session)?;
        self.store
            .find_session(&hash)
            .await
            .map_err(crate::store_error)?
            .map(|(s, u)| (u, s))
            .ok_or_else(expired_session)
    }
}

fn invalid_key() -> ApiError {
    ApiError::unauthorized("Invalid, revoked or expired API key")
}

fn expired_session() -> ApiError {
    ApiError::unauthorized("Session expired or not valid: log in again")
}

/// The SHA-256 of a session token, if it has the form of one.
pub fn session_hash(token: &str) -> Option<[u8; 32]> {
    let ok = (20..=128).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| qrlp_store::secret::hash_token(token))
}

/// The API key of a request: `X-API-Key`, else `Authorization: Bearer`.
pub fn api_key_of(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(&API_KEY_HEADER) {
        return Some(v.to_str().unwrap_or("").trim());
    }
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = auth.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

fn is_mutating(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether the request came over HTTPS, as a proxy reports it.
pub fn is_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// CSRF defence for a cookie-authenticated mutating request: the origin must be the
/// server's own (or allowed by CORS), and `X-CSRF-Token` must equal the session's token.
fn check_csrf(state: &AppState, headers: &HeaderMap, session: &Session) -> Result<(), ApiError> {
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            let referer = headers.get(header::REFERER)?.to_str().ok()?;
            let after_scheme = referer.find("://")? + 3;
            let end = referer[after_scheme..]
                .find('/')
                .map_or(referer.len(), |i| after_scheme + i);
            Some(referer[..end].to_string())
        })
        .ok_or_else(|| {
            ApiError::forbidden("CSRF check failed: the request has no Origin or Referer header")
        })?;
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let scheme = if is_https(headers) { "https" } else { "http" };
    let own = format!("{scheme}://{host}");
    let cors = &state.config().cors;
    let allowed = origin.eq_ignore_ascii_case(&own)
        || (cors.enabled
            && cors
                .allowed_origins
                .iter()
                .any(|o| o != "*" && o.eq_ignore_ascii_case(&origin)));
    if !allowed {
        return Err(ApiError::forbidden(format!(
            "CSRF check failed: origin {origin:?} is not allowed"
        )));
    }
    let token = headers
        .get(&CSRF_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if token.is_empty() || !bool::from(token.ct_eq(session.csrf_token.as_bytes())) {
        return Err(ApiError::forbidden(
            "CSRF check failed: send the session's csrf_token in the X-CSRF-Token header",
        ));
    }
    Ok(())
}

/// The `{org_id}` segment of the request path, when its route has one.
fn org_id_param(req: &Request) -> Option<&str> {
    let template = req.extensions().get::<MatchedPath>()?.as_str();
    let index = template.split('/').position(|s| s == "{org_id}")?;
    req.uri().path().split('/').nth(index)
}

/// The organization a request acts in.
async fn resolve_org(
    state: &AppState,
    principal: &Principal,
    path_org: Option<&str>,
    headers: &HeaderMap,
) -> Result<Option<OrgContext>, ApiError> {
    let store = state.store();
    let explicit = match path_org {
        Some(raw) => Some(
            Uuid::parse_str(raw)
                .map_err(|_| ApiError::invalid_field("org_id", "not a valid organization id"))?,
        ),
        None => match headers.get(&ORG_HEADER) {
            Some(v) => Some(
                v.to_str()
                    .ok()
                    .and_then(|s| Uuid::parse_str(s.trim()).ok())
                    .ok_or_else(|| {
                        ApiError::invalid_field("X-Organization-Id", "not a valid organization id")
                    })?,
            ),
            None => None,
        },
    };
    let not_member = || ApiError::forbidden("You are not a member of this organization");
    match principal {
        Principal::ApiKey(k) => match explicit {
            Some(id) if id != k.organization.id => Err(not_member()),
            _ => Ok(Some(OrgContext {
                organization: k.organization.clone(),
                role: k.role,
            })),
        },
        Principal::Session { user, .. } => {
            let id = match explicit {
                Some(id) => id,
                None => {
                    let page = qrlp_store::PageRequest { page: 1, size: 2 };
                    let mine = store
                        .list_organizations_for_user(user.id, page)
                        .await
                        .map_err(crate::store_error)?;
                    return Ok(match mine.items.as_slice() {
                        [only] if mine.total == 1 => Some(OrgContext {
                            organization: only.organization.clone(),
                            role: only.role,
                        }),
                        _ => None,
                    });
                }
            };
            let role = store
                .get_role(id, user.id)
                .await
                .map_err(crate::store_error)?
                .ok_or_else(not_member)?;
            let organization = store.get_organization(id).await.map_err(|e| match e {
                qrlp_store::StoreError::NotFound => not_member(),
                e => crate::store_error(e),
            })?;
            Ok(Some(OrgContext { organization, role }))
        }
    }
}

/// The middleware of protected routes; see the module documentation.
pub async fn authenticate(
    Extension(state): Extension<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let meta = RequestMeta::of(req.headers(), peer);
    let principal = match principal_of(&state, req.headers()).await {
        Ok(p) => p,
        Err(e) => {
            // Failed credentials spend the caller's per-address budget, so guessing keys
            // is as limited as any other unauthenticated use.
            if let Err(limited) = crate::limits::charge_ip(&state, peer).await {
                return limited;
            }
            return e.into_response();
        }
    };
    if let Principal::Session { session, .. } = &principal {
        if is_mutating(req.method()) {
            if let Err(e) = check_csrf(&state, req.headers(), session) {
                return e.into_response();
            }
        }
    }
    let org = match resolve_org(&state, &principal, org_id_param(&req), req.headers()).await {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    let bucket = match (&org, &principal) {
        (Some(o), _) => crate::limits::Bucket::Organization(&o.organization),
        (None, p) => crate::limits::Bucket::User(p.user_id().unwrap_or_default()),
    };
    let decision = match crate::limits::charge(&state, bucket).await {
        Ok(d) => d,
        Err(response) => return response,
    };
    req.extensions_mut().insert(Arc::new(AuthContext {
        principal,
        org,
        meta,
    }));
    let mut response = next.run(req).await;
    if let Some(d) = &decision {
        crate::limits::set_headers(response.headers_mut(), d);
    }
    response
}

async fn principal_of(state: &AppState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    if let Some(secret) = api_key_of(headers) {
        return Ok(Principal::ApiKey(state.auth().api_key(secret).await?));
    }
    if let Some(token) = cookie(headers, SESSION_COOKIE) {
        let (user, session) = state.auth().session(token).await?;
        return Ok(Principal::Session { user, session });
    }
    Err(ApiError::unauthorized(
        "Authentication required: send an API key in X-API-Key or Authorization: Bearer",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn credentials_are_found() {
        let mut h = HeaderMap::new();
        assert_eq!(api_key_of(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer qrlp_abc"),
        );
        assert_eq!(api_key_of(&h), Some("qrlp_abc"));
        h.insert("x-api-key", HeaderValue::from_static(" qrlp_def "));
        assert_eq!(api_key_of(&h), Some("qrlp_def"));
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(api_key_of(&h), None);
    }

    #[test]
    fn cookies_are_parsed() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; qrlp_session=tok_en; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("tok_en"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn session_tokens_have_a_shape() {
        assert!(session_hash("short").is_none());
        assert!(session_hash("has space in it and is long enough").is_none());
        assert!(session_hash("abcdefghijklmnopqrstuvwxyz0123456789-_AB").is_some());
    }
}
