//! Settings for the SNTP client and the chain-head fetcher, with the seed's defaults.
//!
//! Durations are written as seconds, integer or fractional (`timeout = 10.0`), as the seed's
//! `TimeSettings` and `BlockchainSettings` are.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Serde helpers for a [`Duration`] written as (possibly fractional) seconds.
pub mod secs_f64 {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the duration as fractional seconds.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    /// Reads non-negative, finite seconds (integer or float).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(|_| {
            serde::de::Error::custom(format!(
                "expected a non-negative, finite number of seconds, got {secs}"
            ))
        })
    }
}

/// The seed's `TimeSettings`: which SNTP servers to ask and how.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeConfig {
    /// Servers as `host` or `host:port` (default port 123); IPv6 literals as `[::1]:123`.
    #[serde(alias = "servers")]
    pub time_servers: Vec<String>,
    /// How long a measurement stays current for [`crate::SntpClient::evidence`].
    #[serde(with = "secs_f64")]
    pub update_interval: Duration,
    /// Per-server limit on resolve + request + reply.
    #[serde(with = "secs_f64")]
    pub timeout: Duration,
    /// A server whose offset differs from the median by more than this is an outlier, and a
    /// local clock further than this from the servers' time is not verified.
    #[serde(with = "secs_f64")]
    pub max_drift: Duration,
    /// When no server answers, return evidence from the system clock (marked
    /// [`crate::TimeSource::SystemFallback`]) instead of an error.
    pub fallback_to_system: bool,
}

impl Default for TimeConfig {
    fn default() -> Self {
        TimeConfig {
            time_servers: [
                "time.nist.gov",
                "pool.ntp.org",
                "time.google.com",
                "time.cloudflare.com",
            ]
            .map(String::from)
            .to_vec(),
            update_interval: Duration::from_secs(60),
            timeout: Duration::from_secs(5),
            max_drift: Duration::from_secs(30),
            fallback_to_system: true,
        }
    }
}

impl TimeConfig {
    /// Every problem with these settings; empty when they are usable.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.time_servers.is_empty() && !self.fallback_to_system {
            problems.push(
                "time.time_servers is empty and fallback_to_system is false: no time source".into(),
            );
        }
        for (i, server) in self.time_servers.iter().enumerate() {
            if let Err(why) = crate::sntp::split_host_port(server) {
                problems.push(format!("time.time_servers[{i}] {server:?}: {why}"));
            }
        }
        if self.timeout.is_zero() {
            problems.push("time.timeout must be greater than zero".into());
        }
        if self.update_interval.is_zero() {
            problems.push("time.update_interval must be greater than zero".into());
        }
        if self.max_drift.is_zero() {
            problems.push("time.max_drift must be greater than zero".into());
        }
        problems
    }
}

/// The protocol spoken to a chain endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChainKind {
    /// Bitcoin Core JSON-RPC 1.0: `getbestblockhash`, then `getblockcount` for the height.
    BitcoinRpc,
    /// Ethereum JSON-RPC 2.0: `eth_getBlockByNumber("latest", false)`.
    EthereumRpc,
    /// A BlockCypher-style REST chain endpoint: `GET` returns JSON with `hash` and `height`.
    Blockcypher,
}

impl ChainKind {
    /// The name used in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            ChainKind::BitcoinRpc => "bitcoin-rpc",
            ChainKind::EthereumRpc => "ethereum-rpc",
            ChainKind::Blockcypher => "blockcypher",
        }
    }
}

/// One chain to anchor to.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainEndpoint {
    /// The chain's name as it appears in frames and `blockchain_hashes` (`bitcoin`).
    pub name: String,
    /// The protocol its endpoint speaks.
    pub kind: ChainKind,
    /// `http://` or `https://` URL; JSON-RPC credentials may be given as `user:pass@`.
    pub url: String,
}

impl fmt::Debug for ChainEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainEndpoint")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &redact_url(&self.url))
            .finish()
    }
}

/// The URL with any password replaced by `***`, for logs and errors.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            // Only fails for URLs that cannot have credentials, which this one has.
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparsable url>".into(),
    }
}

/// The seed's `BlockchainSettings`: which chains to fetch and how.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlockchainConfig {
    /// The chains, each with its endpoint and protocol.
    pub chains: Vec<ChainEndpoint>,
    /// A head fetched less than this long ago is returned without a request.
    #[serde(with = "secs_f64")]
    pub cache_duration: Duration,
    /// Limit on each HTTP request, including reading the body.
    #[serde(with = "secs_f64")]
    pub timeout: Duration,
    /// Retries after a transient failure (timeout, connection error, HTTP 408/429/5xx), so a
    /// fetch makes at most `retry_attempts + 1` attempts. Permanent failures (a JSON-RPC
    /// error, a malformed body, HTTP 4xx) are not retried.
    pub retry_attempts: u32,
    /// Pause before the first retry; doubled for each further retry, capped at 5 s.
    #[serde(with = "secs_f64")]
    pub retry_backoff: Duration,
    /// How many distinct heads per chain are remembered for [`crate::ChainHeads::classify`].
    pub history_len: usize,
    /// A remembered (no longer latest) head first seen less than this long ago is
    /// [`crate::AnchorStatus::Recent`]; older ones are `Stale`.
    #[serde(with = "secs_f64")]
    pub recent_window: Duration,
    /// Largest response body accepted, in bytes.
    pub max_body_bytes: usize,
}

impl Default for BlockchainConfig {
    fn default() -> Self {
        BlockchainConfig {
            chains: vec![
                ChainEndpoint {
                    name: "bitcoin".into(),
                    kind: ChainKind::Blockcypher,
                    url: "https://api.blockcypher.com/v1/btc/main".into(),
                },
                ChainEndpoint {
                    name: "ethereum".into(),
                    kind: ChainKind::Blockcypher,
                    url: "https://api.blockcypher.com/v1/eth/main".into(),
                },
            ],
            cache_duration: Duration::from_secs(300),
            timeout: Duration::from_secs(10),
            retry_attempts: 3,
            retry_backoff: Duration::from_millis(250),
            history_len: 16,
            recent_window: Duration::from_secs(3600),
            max_body_bytes: 1 << 20,
        }
    }
}

impl BlockchainConfig {
    /// Chains from the seed's `enabled_chains` and `api_endpoints` settings, every endpoint
    /// spoken to as BlockCypher-style REST. A chain without an endpoint uses BlockCypher's
    /// public one for `bitcoin`, `ethereum`, `litecoin` and `dogecoin`, and otherwise gets an
    /// empty URL that [`validate`](Self::validate) reports.
    pub fn with_seed_chains(
        mut self,
        enabled_chains: &[String],
        api_endpoints: &std::collections::BTreeMap<String, String>,
    ) -> Self {
        self.chains = enabled_chains
            .iter()
            .map(|name| {
                let url = api_endpoints.get(name).cloned().unwrap_or_else(|| {
                    let short = match name.as_str() {
                        "bitcoin" => "btc",
                        "ethereum" => "eth",
                        "litecoin" => "ltc",
                        "dogecoin" => "doge",
                        _ => return String::new(),
                    };
                    format!("https://api.blockcypher.com/v1/{short}/main")
                });
                ChainEndpoint {
                    name: name.clone(),
                    kind: ChainKind::Blockcypher,
                    url,
                }
            })
            .collect();
        self
    }

    /// Every problem with these settings; empty when they are usable.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (i, chain) in self.chains.iter().enumerate() {
            let at = format!("blockchain.chains[{i}]");
            if chain.name.trim().is_empty() {
                problems.push(format!("{at}.name is empty"));
            } else if !seen.insert(chain.name.as_str()) {
                problems.push(format!("{at}.name {:?} appears more than once", chain.name));
            }
            match reqwest::Url::parse(&chain.url) {
                Err(e) => problems.push(format!(
                    "{at}.url {:?} is not a URL: {e}",
                    redact_url(&chain.url)
                )),
                Ok(u) if u.scheme() != "http" && u.scheme() != "https" => problems.push(format!(
                    "{at}.url must be http or https, not {:?}",
                    u.scheme()
                )),
                Ok(u) if u.host_str().is_none_or(str::is_empty) => {
                    problems.push(format!("{at}.url has no host"))
                }
                Ok(_) => {}
            }
        }
        if self.timeout.is_zero() {
            problems.push("blockchain.timeout must be greater than zero".into());
        }
        if self.history_len == 0 {
            problems.push("blockchain.history_len must be at least 1".into());
        }
        if self.max_body_bytes < 1024 {
            problems.push("blockchain.max_body_bytes must be at least 1024".into());
        }
        if self.retry_attempts > 10 {
            problems.push("blockchain.retry_attempts must be at most 10".into());
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_seed_and_are_valid() {
        let t = TimeConfig::default();
        assert_eq!(t.time_servers.len(), 4);
        assert_eq!(t.timeout, Duration::from_secs(5));
        assert_eq!(t.max_drift, Duration::from_secs(30));
        assert!(t.fallback_to_system);
        assert!(t.validate().is_empty());
        let b = BlockchainConfig::default();
        assert_eq!(b.cache_duration, Duration::from_secs(300));
        assert_eq!(b.timeout, Duration::from_secs(10));
        assert_eq!(b.retry_attempts, 3);
        assert!(b.validate().is_empty(), "{:?}", b.validate());
    }

    #[test]
    fn float_seconds_and_unknown_kind() {
        let t: TimeConfig =
            serde_json::from_str(r#"{"time_servers":["a"],"timeout":0.25,"max_drift":30}"#)
                .unwrap();
        assert_eq!(t.timeout, Duration::from_millis(250));
        assert_eq!(t.max_drift, Duration::from_secs(30));
        assert!(serde_json::from_str::<TimeConfig>(r#"{"timeout":-1}"#).is_err());
        let bad = r#"{"chains":[{"name":"x","kind":"dogecoin-rpc","url":"http://h"}]}"#;
        assert!(serde_json::from_str::<BlockchainConfig>(bad).is_err());
        let ok =
            r#"{"chains":[{"name":"x","kind":"ethereum-rpc","url":"http://h"}],"timeout":10.0}"#;
        let b: BlockchainConfig = serde_json::from_str(ok).unwrap();
        assert_eq!(b.chains[0].kind, ChainKind::EthereumRpc);
    }

    #[test]
    fn validate_lists_every_problem() {
        let t = TimeConfig {
            time_servers: vec![],
            timeout: Duration::ZERO,
            fallback_to_system: false,
            ..TimeConfig::default()
        };
        let p = t.validate();
        assert_eq!(p.len(), 2, "{p:?}");
        let t = TimeConfig {
            time_servers: vec!["host:notaport".into(), "".into()],
            ..TimeConfig::default()
        };
        assert_eq!(t.validate().len(), 2, "{:?}", t.validate());

        let chain = |name: &str, url: &str| ChainEndpoint {
            name: name.into(),
            kind: ChainKind::BitcoinRpc,
            url: url.into(),
        };
        let b = BlockchainConfig {
            chains: vec![
                chain("btc", "not a url"),
                chain("btc", "ftp://host/"),
                chain("", "http://u:secret@host:8332/"),
            ],
            timeout: Duration::ZERO,
            history_len: 0,
            ..BlockchainConfig::default()
        };
        let p = b.validate();
        assert_eq!(p.len(), 6, "{p:?}");
        assert!(p.iter().all(|s| !s.contains("secret")));
    }

    #[test]
    fn seed_style_chains() {
        let enabled = ["bitcoin".to_string(), "litecoin".into(), "monero".into()];
        let endpoints = [(
            "bitcoin".to_string(),
            "http://127.0.0.1:3000/btc".to_string(),
        )]
        .into_iter()
        .collect();
        let b = BlockchainConfig::default().with_seed_chains(&enabled, &endpoints);
        assert_eq!(b.chains[0].url, "http://127.0.0.1:3000/btc");
        assert_eq!(b.chains[1].url, "https://api.blockcypher.com/v1/ltc/main");
        assert_eq!(b.chains[2].url, "");
        assert_eq!(b.validate().len(), 1, "{:?}", b.validate());
    }

    #[test]
    fn debug_redacts_passwords() {
        let c = ChainEndpoint {
            name: "btc".into(),
            kind: ChainKind::BitcoinRpc,
            url: "http://user:hunter2@127.0.0.1:8332/".into(),
        };
        let s = format!("{c:?}");
        assert!(!s.contains("hunter2") && s.contains("***"), "{s}");
    }
}
