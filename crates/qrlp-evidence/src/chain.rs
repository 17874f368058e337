//! Latest block hashes from the configured chains, with caching, retries, statistics and a
//! short history for telling a current anchor from a stale one.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

use crate::config::{BlockchainConfig, ChainEndpoint, ChainKind};
use crate::protocol;
use crate::sntp::unix_secs;

/// A prefix matches a head only if it covers at least this many bytes after the head's
/// leading zero bytes (in the byte order being compared): 32 bits the chain chose, not the
/// zeros that proof of work puts at the front of every Bitcoin hash.
pub const MIN_SIGNIFICANT_PREFIX: usize = 4;

/// Longest pause between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The newest block of one chain, as fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainHead {
    /// The chain's configured name.
    pub chain: String,
    /// The block hash in the byte order its endpoint displays it (for Bitcoin the reverse of
    /// the internal order, so it starts with zero bytes).
    pub hash: [u8; 32],
    /// Block height, when the endpoint reports it.
    pub height: Option<u64>,
    /// When this process first fetched this hash (local clock).
    pub fetched_at: SystemTime,
}

impl ChainHead {
    /// The hash as lower-case hex, as the endpoint displays it (without "0x").
    pub fn hash_hex(&self) -> String {
        protocol::to_hex(&self.hash)
    }

    /// The first `len` bytes (at most 32) of the hash in whichever byte order does not start
    /// with zeros: display order for Ethereum, internal order for Bitcoin. These are the
    /// bytes a frame should carry as its anchor; [`ChainHeads::classify`] accepts them.
    pub fn anchor_prefix(&self, len: usize) -> Vec<u8> {
        let mut reversed = self.hash;
        reversed.reverse();
        let order = if leading_zeros(&reversed) < leading_zeros(&self.hash) {
            reversed
        } else {
            self.hash
        };
        order[..len.min(32)].to_vec()
    }
}

fn leading_zeros(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|&&b| b == 0).count()
}

/// Does `prefix` identify `hash`, in display or reversed byte order, with at least
/// [`MIN_SIGNIFICANT_PREFIX`] bytes past the leading zeros?
fn matches_prefix(hash: &[u8; 32], prefix: &[u8]) -> bool {
    let mut reversed = *hash;
    reversed.reverse();
    let identifies = |order: &[u8; 32]| {
        order.starts_with(prefix) && prefix.len() >= leading_zeros(order) + MIN_SIGNIFICANT_PREFIX
    };
    identifies(hash) || identifies(&reversed)
}

/// How an anchor (a block-hash prefix) in a frame relates to the heads this process has seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnchorStatus {
    /// The prefix matches the newest head seen.
    Current,
    /// It matches an older head first seen `age` ago, within the configured
    /// `recent_window`.
    Recent {
        /// Time since this process first saw the matched head.
        age: Duration,
    },
    /// It matches a remembered head first seen longer ago than `recent_window`.
    Stale,
    /// It matches no remembered head (or is too short to identify one).
    Unknown,
}

/// Why a chain head could not be fetched.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// The chain is not configured.
    #[error("chain {0:?} is not configured")]
    UnknownChain(String),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
    /// The request or reading its body took longer than the configured timeout.
    #[error("no response within {0:?}")]
    Timeout(Duration),
    /// Connection, TLS or protocol failure.
    #[error("transport: {0}")]
    Transport(String),
    /// A non-success HTTP status without a JSON-RPC error in the body.
    #[error("HTTP status {status}")]
    HttpStatus {
        /// The status code.
        status: u16,
    },
    /// The body exceeds the configured limit.
    #[error("response body larger than {limit} bytes")]
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body is not JSON.
    #[error("response is not JSON: {0}")]
    InvalidJson(String),
    /// The node answered with an error object (JSON-RPC) or error message (REST).
    #[error("node error {code}: {message}")]
    Rpc {
        /// The JSON-RPC error code (0 if none).
        code: i64,
        /// The node's message (at most 200 characters).
        message: String,
    },
    /// JSON of the wrong shape.
    #[error("unexpected response: {0}")]
    InvalidResponse(String),
    /// The block hash is not 64 hex digits.
    #[error("invalid block hash: {0}")]
    InvalidHash(String),
}

impl ChainError {
    /// Whether a retry may succeed: timeouts, transport errors and HTTP 408, 429 and 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            ChainError::Timeout(_) | ChainError::Transport(_) => true,
            ChainError::HttpStatus { status } => {
                *status == 408 || *status == 429 || (500..600).contains(status)
            }
            _ => false,
        }
    }
}

/// Running counts for one chain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChainStats {
    /// The chain's configured name.
    pub chain: String,
    /// HTTP requests sent (every attempt and every call within one).
    pub requests: u64,
    /// Head requests answered from the cache without a request.
    pub cache_hits: u64,
    /// Fetches (one or more attempts) that produced a head.
    pub successes: u64,
    /// Fetches that failed after their last attempt.
    pub failures: u64,
    /// Retries made after transient failures.
    pub retries: u64,
    /// The last failure, as text (never containing credentials).
    pub last_error: Option<String>,
    /// Local time of the last successful fetch.
    pub last_success: Option<SystemTime>,
}

struct Seen {
    head: ChainHead,
    last_seen: SystemTime,
}

#[derive(Default)]
struct Inner {
    /// Instant of the last successful fetch, for the cache window (monotonic).
    fetched: Option<Instant>,
    /// Distinct heads, oldest first; the back is the newest.
    history: VecDeque<Seen>,
    stats: ChainStats,
}

struct Chain {
    endpoint: ChainEndpoint,
    fetching: tokio::sync::Mutex<()>,
    inner: Mutex<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update under these locks is a plain assignment or push, so a panicking holder
    // cannot leave them half-done.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Fetches and remembers chain heads. Share it behind an `Arc`; all methods take `&self`.
pub struct ChainHeads {
    config: BlockchainConfig,
    client: reqwest::Client,
    chains: Vec<Chain>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for ChainHeads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainHeads")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ChainHeads {
    /// A fetcher for `config` (not validated here; see [`BlockchainConfig::validate`]).
    /// Fails only if the HTTP client cannot be built.
    pub fn new(config: BlockchainConfig) -> Result<Self, ChainError> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("qrlp-evidence/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ChainError::Client(describe(&e)))?;
        let chains = config
            .chains
            .iter()
            .map(|endpoint| Chain {
                endpoint: endpoint.clone(),
                fetching: tokio::sync::Mutex::new(()),
                inner: Mutex::new(Inner {
                    stats: ChainStats {
                        chain: endpoint.name.clone(),
                        ..ChainStats::default()
                    },
                    ..Inner::default()
                }),
            })
            .collect();
        Ok(ChainHeads {
            config,
            client,
            chains,
            next_id: AtomicU64::new(1),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &BlockchainConfig {
        &self.config
    }

    fn chain(&self, name: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.endpoint.name == name)
    }

    /// Every configured chain's head, concurrently, in configuration order.
    pub async fn latest(&self) -> Vec<Result<ChainHead, ChainError>> {
        futures_util::future::join_all(self.chains.iter().map(|c| self.head_of(c))).await
    }

    /// The newest head of `chain`: from the cache if fetched within `cache_duration`,
    /// otherwise fetched with retries. Concurrent calls for one chain share one fetch.
    pub async fn head(&self, chain: &str) -> Result<ChainHead, ChainError> {
        match self.chain(chain) {
            Some(c) => self.head_of(c).await,
            None => Err(ChainError::UnknownChain(chain.to_string())),
        }
    }

    async fn head_of(&self, chain: &Chain) -> Result<ChainHead, ChainError> {
        if let Some(head) = self.cached(chain) {
            return Ok(head);
        }
        let _one_fetch = chain.fetching.lock().await;
        // Whoever held the lock before us may have just fetched.
        if let Some(head) = self.cached(chain) {
            return Ok(head);
        }
        let mut retries = 0u32;
        loop {
            match self.fetch_once(chain).await {
                Ok((hash, height)) => return Ok(self.remember(chain, hash, height)),
                Err(e) if e.is_transient() && retries < self.config.retry_attempts => {
                    let pause = self
                        .config
                        .retry_backoff
                        .saturating_mul(1u32 << retries.min(16))
                        .min(MAX_BACKOFF);
                    retries += 1;
                    lock(&chain.inner).stats.retries += 1;
                    tokio::time::sleep(pause).await;
                }
                Err(e) => {
                    let mut inner = lock(&chain.inner);
                    inner.stats.failures += 1;
                    inner.stats.last_error = Some(e.to_string());
                    return Err(e);
                }
            }
        }
    }

    fn cached(&self, chain: &Chain) -> Option<ChainHead> {
        let mut inner = lock(&chain.inner);
        let fresh = inner
            .fetched
            .is_some_and(|at| at.elapsed() < self.config.cache_duration);
        let head = inner
            .history
            .back()
            .map(|s| s.head.clone())
            .filter(|_| fresh)?;
        inner.stats.cache_hits += 1;
        Some(head)
    }

    fn remember(&self, chain: &Chain, hash: [u8; 32], height: Option<u64>) -> ChainHead {
        let now = SystemTime::now();
        let mut inner = lock(&chain.inner);
        inner.fetched = Some(Instant::now());
        inner.stats.successes += 1;
        inner.stats.last_success = Some(now);
        let head = match inner.history.back_mut() {
            Some(last) if last.head.hash == hash => {
                last.last_seen = now;
                if height.is_some() {
                    last.head.height = height;
                }
                last.head.clone()
            }
            _ => {
                let head = ChainHead {
                    chain: chain.endpoint.name.clone(),
                    hash,
                    height,
                    fetched_at: now,
                };
                // A head that comes back after a reorganisation moves to the front again.
                inner.history.retain(|s| s.head.hash != hash);
                inner.history.push_back(Seen {
                    head: head.clone(),
                    last_seen: now,
                });
                while inner.history.len() > self.config.history_len.max(1) {
                    inner.history.pop_front();
                }
                head
            }
        };
        head
    }

    /// One attempt: the protocol's request(s) and strict parsing.
    async fn fetch_once(&self, chain: &Chain) -> Result<([u8; 32], Option<u64>), ChainError> {
        let url = chain.endpoint.url.as_str();
        match chain.endpoint.kind {
            ChainKind::BitcoinRpc => {
                let hash = protocol::bitcoin_hash(
                    &self
                        .rpc(chain, url, |id| {
                            protocol::bitcoin_request(id, "getbestblockhash")
                        })
                        .await?,
                )?;
                // The height is a second call and best effort: a failure leaves it unknown,
                // and a block found in between can make it one ahead of the hash.
                let height = match self
                    .rpc(chain, url, |id| {
                        protocol::bitcoin_request(id, "getblockcount")
                    })
                    .await
                {
                    Ok(v) => protocol::bitcoin_height(&v).ok(),
                    Err(_) => None,
                };
                Ok((hash, height))
            }
            ChainKind::EthereumRpc => {
                let block = self.rpc(chain, url, protocol::ethereum_request).await?;
                let (hash, number) = protocol::ethereum_block(&block)?;
                Ok((hash, Some(number)))
            }
            ChainKind::Blockcypher => {
                let body = self.send(chain, self.client.get(url), false).await?;
                protocol::blockcypher_head(&body)
            }
        }
    }

    async fn rpc(
        &self,
        chain: &Chain,
        url: &str,
        request: impl FnOnce(u64) -> Value,
    ) -> Result<Value, ChainError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = request(id).to_string();
        let builder = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        let body = self.send(chain, builder, true).await?;
        protocol::rpc_result(&body, id)
    }

    /// Sends one request and reads the body within the timeout and size limit.
    async fn send(
        &self,
        chain: &Chain,
        builder: reqwest::RequestBuilder,
        json_rpc: bool,
    ) -> Result<Vec<u8>, ChainError> {
        lock(&chain.inner).stats.requests += 1;
        let timeout = self.config.timeout;
        let limit = self.config.max_body_bytes;
        let exchange = async {
            let classify = |e: reqwest::Error| {
                if e.is_timeout() {
                    ChainError::Timeout(timeout)
                } else {
                    // The URL may carry an API token in its query.
                    ChainError::Transport(describe(&e.without_url()))
                }
            };
            let mut response = builder.send().await.map_err(classify)?;
            let status = response.status();
            if response.content_length().is_some_and(|n| n > limit as u64) {
                return Err(ChainError::BodyTooLarge { limit });
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(classify)? {
                if body.len() + chunk.len() > limit {
                    return Err(ChainError::BodyTooLarge { limit });
                }
                body.extend_from_slice(&chunk);
            }
            if !status.is_success() {
                // Bitcoin Core reports RPC errors with HTTP 500 (or 404) and a JSON-RPC body.
                if json_rpc {
                    if let Some(e) = protocol::rpc_error(&body) {
                        return Err(e);
                    }
                }
                return Err(ChainError::HttpStatus {
                    status: status.as_u16(),
                });
            }
            Ok(body)
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(ChainError::Timeout(timeout)),
        }
    }

    /// Distinct heads seen for `chain`, newest first (at most `history_len`); `fetched_at`
    /// is when each was first seen.
    pub fn history(&self, chain: &str) -> Vec<ChainHead> {
        self.chain(chain).map_or_else(Vec::new, |c| {
            lock(&c.inner)
                .history
                .iter()
                .rev()
                .map(|s| s.head.clone())
                .collect()
        })
    }

    /// When `chain`'s newest head was last confirmed by a fetch.
    pub fn last_confirmed(&self, chain: &str) -> Option<SystemTime> {
        let c = self.chain(chain)?;
        let inner = lock(&c.inner);
        inner.history.back().map(|s| s.last_seen)
    }

    /// How an anchor `prefix` for `chain` relates to the remembered heads at time `now`.
    /// The prefix is compared with each head in display and in reversed byte order and must
    /// cover [`MIN_SIGNIFICANT_PREFIX`] bytes past the leading zeros; use
    /// [`ChainHead::anchor_prefix`] to make one. Only heads this process has fetched are
    /// known: call [`head`](Self::head) first to refresh.
    pub fn classify(&self, chain: &str, prefix: &[u8], now: SystemTime) -> AnchorStatus {
        let Some(c) = self.chain(chain) else {
            return AnchorStatus::Unknown;
        };
        let inner = lock(&c.inner);
        for (i, seen) in inner.history.iter().rev().enumerate() {
            if !matches_prefix(&seen.head.hash, prefix) {
                continue;
            }
            if i == 0 {
                return AnchorStatus::Current;
            }
            let age = now
                .duration_since(seen.head.fetched_at)
                .unwrap_or(Duration::ZERO);
            return if age <= self.config.recent_window {
                AnchorStatus::Recent { age }
            } else {
                AnchorStatus::Stale
            };
        }
        AnchorStatus::Unknown
    }

    /// Per-chain statistics, in configuration order.
    pub fn stats(&self) -> Vec<ChainStats> {
        self.chains
            .iter()
            .map(|c| lock(&c.inner).stats.clone())
            .collect()
    }

    /// The seed's `blockchain_hashes`: chain name → lower-case hex of its newest known head
    /// (display order, no "0x"), for every chain with one.
    pub fn blockchain_hashes(&self) -> BTreeMap<String, String> {
        self.chains
            .iter()
            .filter_map(|c| {
                let inner = lock(&c.inner);
                let head = &inner.history.back()?.head;
                Some((c.endpoint.name.clone(), head.hash_hex()))
            })
            .collect()
    }

    /// The seed's `blockchain_stats`: `{"success_rate", "cached_chains", "last_update"}`,
    /// where `cached_chains` lists chains whose head is within `cache_duration` and
    /// `last_update` is the Unix time of the last successful fetch (null if none).
    pub fn blockchain_stats(&self) -> Value {
        let mut successes = 0u64;
        let mut failures = 0u64;
        let mut cached = Vec::new();
        let mut last = None;
        for c in &self.chains {
            let inner = lock(&c.inner);
            successes += inner.stats.successes;
            failures += inner.stats.failures;
            if inner
                .fetched
                .is_some_and(|at| at.elapsed() < self.config.cache_duration)
            {
                cached.push(c.endpoint.name.clone());
            }
            last = last.max(inner.stats.last_success);
        }
        let total = successes + failures;
        let rate = if total == 0 {
            0.0
        } else {
            successes as f64 / total as f64
        };
        json!({
            "success_rate": rate,
            "cached_chains": cached,
            "last_update": last.map(unix_secs),
        })
    }
}

/// The error and its causes, without the URL (which may carry credentials).
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(hash: [u8; 32]) -> ChainHead {
        ChainHead {
            chain: "x".into(),
            hash,
            height: None,
            fetched_at: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn bitcoin_style_prefixes_use_the_significant_bytes() {
        let mut hash = [0u8; 32];
        for (i, b) in hash.iter_mut().enumerate().skip(9) {
            *b = i as u8 * 7 + 1;
        }
        let h = head(hash);
        let p = h.anchor_prefix(8);
        assert_eq!(p[0], hash[31]);
        assert!(matches_prefix(&hash, &p));
        // All-zero display-order prefixes identify nothing.
        assert!(!matches_prefix(&hash, &[0u8; 8]));
        assert!(!matches_prefix(&hash, &hash[..12]));
        assert!(matches_prefix(&hash, &hash[..13]));
        assert!(!matches_prefix(&hash, &[]));
        assert!(!matches_prefix(&hash, &p[..3]));
    }

    #[test]
    fn ethereum_style_prefixes_use_display_order() {
        let hash: [u8; 32] = std::array::from_fn(|i| i as u8 + 0x80);
        let h = head(hash);
        assert_eq!(h.anchor_prefix(4), hash[..4].to_vec());
        assert_eq!(h.anchor_prefix(99).len(), 32);
        assert!(matches_prefix(&hash, &hash[..4]));
    }

    #[test]
    fn transient_errors() {
        assert!(ChainError::Timeout(Duration::ZERO).is_transient());
        assert!(ChainError::HttpStatus { status: 503 }.is_transient());
        assert!(ChainError::HttpStatus { status: 429 }.is_transient());
        assert!(!ChainError::HttpStatus { status: 401 }.is_transient());
        assert!(!ChainError::InvalidJson(String::new()).is_transient());
        assert!(!ChainError::Rpc {
            code: -1,
            message: String::new()
        }
        .is_transient());
    }
}
