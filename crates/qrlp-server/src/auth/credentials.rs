//! Credentials: API keys (looked up by SHA-256, cached briefly in a bounded LRU), session
//! tokens, and password hashing bounded by a semaphore.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap};
use qrlp_store::{Role, Session, Store, User};
use time::OffsetDateTime;

use super::context::KeyPrincipal;
use super::API_KEY_HEADER;
use crate::error::ApiError;

/// Largest number of API keys kept in one process's cache. Beyond it the least recently
/// used entries go, so a flood of random keys cannot push out the keys in use.
const KEY_CACHE_MAX: usize = 10_000;
/// `last_used_at` is written at most this often per key and process.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// Resolves credentials to principals, caching API keys briefly.
pub struct Authenticator {
    store: Store,
    ttl: Duration,
    cache: quick_cache::sync::Cache<[u8; 32], CachedKey>,
}

#[derive(Clone)]
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
            cache: quick_cache::sync::Cache::new(KEY_CACHE_MAX),
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
        let cached = self
            .cache
            .get(&hash)
            .filter(|c| now.duration_since(c.fetched) < self.ttl);
        let entry = match cached {
            Some(c) => c,
            None => {
                let principal = self.load(&hash).await?;
                let touched = self.cache.get(&hash).and_then(|c| c.touched);
                let entry = CachedKey {
                    fetched: now,
                    principal,
                    touched,
                };
                self.cache.insert(hash, entry.clone());
                entry
            }
        };
        let principal = entry.principal.clone().ok_or_else(invalid_key)?;
        if !principal.key.is_active(OffsetDateTime::now_utc()) {
            return Err(invalid_key());
        }
        if entry
            .touched
            .is_none_or(|t| now.duration_since(t) >= TOUCH_EVERY)
        {
            self.cache.insert(
                hash,
                CachedKey {
                    touched: Some(now),
                    ..entry
                },
            );
            self.touch(&principal);
        }
        Ok(principal)
    }

    /// How many keys are cached (for tests of the bound).
    pub fn cached_keys(&self) -> usize {
        self.cache.len()
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

    /// Records `last_used_at` in the background (the caller limits it to once a minute
    /// per key and process).
    fn touch(&self, principal: &Arc<KeyPrincipal>) {
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

/// Password hashing and checking: argon2id (about 19 MiB and tens of milliseconds each) on
/// the blocking pool, at most one job per core at a time. A request that cannot get a slot
/// within [`Passwords::WAIT`] is answered 503 `UNAVAILABLE` with `Retry-After`, so a login
/// flood costs a bounded amount of memory instead of one argon2 job per blocking thread.
pub struct Passwords {
    slots: tokio::sync::Semaphore,
    decoy: String,
}

impl Passwords {
    /// How long a request waits for a hashing slot.
    pub const WAIT: Duration = Duration::from_secs(2);

    /// `slots` concurrent jobs (at least 1). Computes the decoy hash now, so that the first
    /// login with an unknown email costs what every other costs.
    pub fn new(slots: usize) -> Passwords {
        Passwords {
            slots: tokio::sync::Semaphore::new(slots.max(1)),
            decoy: qrlp_store::secret::hash_password("decoy password that matches nothing")
                .unwrap_or_default(),
        }
    }

    /// One slot per available core.
    pub fn per_core() -> Passwords {
        Passwords::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let _slot = tokio::time::timeout(Self::WAIT, self.slots.acquire())
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())?;
        tokio::task::spawn_blocking(job)
            .await
            .map_err(ApiError::internal)
    }

    /// Whether `password` matches the PHC string `hash`; with `None` (no such user, or no
    /// password) it checks against the decoy, so both take the same time, and answers false.
    ///
    /// # Errors
    /// 503 when every hashing slot stays busy.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, ApiError> {
        let real = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.decoy.clone());
        let ok = self
            .run(move || qrlp_store::secret::verify_password(&password, &hash))
            .await?;
        Ok(ok && real)
    }

    /// The argon2id PHC string of `password`.
    ///
    /// # Errors
    /// 503 when every hashing slot stays busy.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        self.run(move || qrlp_store::secret::hash_password(&password))
            .await?
            .map_err(crate::store_error)
    }
}

fn busy() -> ApiError {
    ApiError::new(
        crate::error::ErrorCode::Unavailable,
        "Too many password checks at once; retry in a moment",
    )
    .with_retry_after(1)
}

/// The one password rule: 12 to 1024 characters, counted the same way when an account sets
/// its password and when it logs in.
pub const PASSWORD_MIN_CHARS: usize = 12;
/// See [`PASSWORD_MIN_CHARS`].
pub const PASSWORD_MAX_CHARS: usize = 1024;

/// Whether `password` has an acceptable length.
pub fn password_length_ok(password: &str) -> bool {
    // Bytes first: a char is at most 4 bytes, so this bounds the count's work.
    password.len() <= 4 * PASSWORD_MAX_CHARS
        && (PASSWORD_MIN_CHARS..=PASSWORD_MAX_CHARS).contains(&password.chars().count())
}

/// Whether a login attempt's password is short enough to be checked at all (longer ones
/// cannot belong to any account, by [`password_length_ok`]).
pub fn password_checkable(password: &str) -> bool {
    password.len() <= 4 * PASSWORD_MAX_CHARS && password.chars().count() <= PASSWORD_MAX_CHARS
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
    fn session_tokens_have_a_shape() {
        assert!(session_hash("short").is_none());
        assert!(session_hash("has space in it and is long enough").is_none());
        assert!(session_hash("abcdefghijklmnopqrstuvwxyz0123456789-_AB").is_some());
    }

    /// Finding 8: creation counted characters (up to 1,024) while login refused more than
    /// 1,024 bytes, so some accepted passwords could never log in.
    #[test]
    fn password_length_counts_the_same_at_creation_and_login() {
        let max = "é".repeat(PASSWORD_MAX_CHARS);
        assert!(max.len() > 1024, "more bytes than characters");
        assert!(password_length_ok(&max));
        assert!(password_checkable(&max));
        let over = "é".repeat(PASSWORD_MAX_CHARS + 1);
        assert!(!password_length_ok(&over));
        assert!(!password_checkable(&over));
        assert!(!password_length_ok("short"));
        assert!(password_checkable("short"));
    }
}
