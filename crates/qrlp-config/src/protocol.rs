//! The QR Live Protocol's settings groups: `[live]`, `[blockchain]`, `[time]`, `[identity]`,
//! `[verification]` and `[security]`, with the seed's names and defaults.
//!
//! Durations are seconds as `f64`, as the seed writes them (`timeout = 10.0`);
//! [`crate::Config::validate`] checks that they are finite and in range.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::redact_url_password;

/// `[live]`: live frames.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiveConfig {
    /// The seed's `update_interval`: seconds between live frames (0.01 to 3600).
    pub update_interval_secs: f64,
    /// How long a frame stays valid after its timestamp, in seconds (at least the update
    /// interval, at most one day). Compact frames carry it; JSON frames use
    /// `verification.max_time_drift` instead.
    pub ttl_secs: f64,
    /// The frame text put in the QR code: compact (`QL2:…`, small) or json (the seed's).
    pub frame_format: FrameFormat,
    /// Signature suite: ed25519, fn-dsa (post-quantum FN-DSA-512) or hybrid (both).
    pub signature: SignatureSuite,
    /// Longest a frame waits for time and chain evidence, in seconds (0.01 to 60); evidence
    /// that arrives later is cached for the next frame.
    pub evidence_timeout_secs: f64,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            update_interval_secs: 1.0,
            ttl_secs: 10.0,
            frame_format: FrameFormat::Compact,
            signature: SignatureSuite::Ed25519,
            evidence_timeout_secs: 2.0,
        }
    }
}

/// The frame text format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FrameFormat {
    /// `QL2:` + base45 of CBOR, in the QR alphanumeric set.
    Compact,
    /// The seed's `QRData` JSON.
    Json,
}

impl FromStr for FrameFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "compact" => Ok(FrameFormat::Compact),
            "json" => Ok(FrameFormat::Json),
            _ => Err(format!(
                "unknown frame format {s:?}: choose compact or json"
            )),
        }
    }
}

/// The signature suite of live frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureSuite {
    /// Ed25519 (the default): small and fast.
    Ed25519,
    /// FN-DSA-512, post-quantum; frames need a larger QR version.
    FnDsa,
    /// Both signatures; valid only if both verify.
    Hybrid,
}

impl SignatureSuite {
    /// `ed25519`, `fn-dsa` or `hybrid`.
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureSuite::Ed25519 => "ed25519",
            SignatureSuite::FnDsa => "fn-dsa",
            SignatureSuite::Hybrid => "hybrid",
        }
    }

    /// Whether the suite needs an FN-DSA key in the identity file.
    pub fn post_quantum(self) -> bool {
        self != SignatureSuite::Ed25519
    }
}

impl FromStr for SignatureSuite {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ed25519" => Ok(SignatureSuite::Ed25519),
            "fn-dsa" | "fn-dsa-512" => Ok(SignatureSuite::FnDsa),
            "hybrid" | "ed25519+fn-dsa-512" => Ok(SignatureSuite::Hybrid),
            _ => Err(format!(
                "unknown signature {s:?}: choose ed25519, fn-dsa or hybrid"
            )),
        }
    }
}

/// The protocol a chain endpoint speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChainKind {
    /// Bitcoin Core JSON-RPC (`getbestblockhash`).
    BitcoinRpc,
    /// Ethereum JSON-RPC (`eth_getBlockByNumber("latest")`).
    EthereumRpc,
    /// BlockCypher-style REST (`GET` → `{"hash", "height"}`), as the seed's endpoints.
    Blockcypher,
}

impl FromStr for ChainKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "bitcoin-rpc" => Ok(ChainKind::BitcoinRpc),
            "ethereum-rpc" => Ok(ChainKind::EthereumRpc),
            "blockcypher" => Ok(ChainKind::Blockcypher),
            _ => Err(format!(
                "unknown chain kind {s:?}: choose bitcoin-rpc, ethereum-rpc or blockcypher"
            )),
        }
    }
}

/// `[blockchain]`: the seed's `blockchain_settings`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlockchainConfig {
    /// Chains whose latest block anchors each frame; empty for none.
    pub enabled_chains: Vec<String>,
    /// Seconds a fetched head is reused without asking again.
    pub cache_duration: f64,
    /// Seconds allowed for one request.
    pub timeout: f64,
    /// Retries after a transient failure (0 to 10).
    pub retry_attempts: u32,
    /// Chain → endpoint URL. Chains without one use BlockCypher's public endpoint
    /// (bitcoin, ethereum, litecoin, dogecoin).
    pub api_endpoints: BTreeMap<String, String>,
    /// Chain → protocol of its endpoint (bitcoin-rpc, ethereum-rpc, blockcypher); chains
    /// not listed use blockcypher.
    pub kinds: BTreeMap<String, ChainKind>,
}

impl BlockchainConfig {
    /// The endpoint URL of `chain`: the configured one, else BlockCypher's public one for
    /// the chains it serves, else `None`.
    pub fn endpoint(&self, chain: &str) -> Option<String> {
        if let Some(url) = self.api_endpoints.get(chain) {
            return Some(url.clone());
        }
        let short = match chain {
            "bitcoin" => "btc",
            "ethereum" => "eth",
            "litecoin" => "ltc",
            "dogecoin" => "doge",
            _ => return None,
        };
        Some(format!("https://api.blockcypher.com/v1/{short}/main"))
    }

    /// The protocol `chain`'s endpoint speaks.
    pub fn kind(&self, chain: &str) -> ChainKind {
        self.kinds
            .get(chain)
            .copied()
            .unwrap_or(ChainKind::Blockcypher)
    }
}

impl fmt::Debug for BlockchainConfig {
    /// Endpoint URLs may carry JSON-RPC credentials: passwords are printed as `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let endpoints: BTreeMap<&String, String> = self
            .api_endpoints
            .iter()
            .map(|(k, v)| (k, shown_url(v)))
            .collect();
        f.debug_struct("BlockchainConfig")
            .field("enabled_chains", &self.enabled_chains)
            .field("cache_duration", &self.cache_duration)
            .field("timeout", &self.timeout)
            .field("retry_attempts", &self.retry_attempts)
            .field("api_endpoints", &endpoints)
            .field("kinds", &self.kinds)
            .finish()
    }
}

/// An endpoint URL safe to show: its password replaced by `***`; a URL without a scheme
/// that may still hold credentials (`user:pass@host`) is not shown at all.
pub(crate) fn shown_url(url: &str) -> String {
    if url.contains("://") {
        redact_url_password(url)
    } else if url.contains('@') {
        "<not shown: may hold credentials>".into()
    } else {
        url.to_string()
    }
}

impl Default for BlockchainConfig {
    fn default() -> Self {
        BlockchainConfig {
            enabled_chains: vec!["bitcoin".into(), "ethereum".into()],
            cache_duration: 300.0,
            timeout: 10.0,
            retry_attempts: 3,
            api_endpoints: [
                ("bitcoin", "https://api.blockcypher.com/v1/btc/main"),
                ("ethereum", "https://api.blockcypher.com/v1/eth/main"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            kinds: BTreeMap::new(),
        }
    }
}

/// `[time]`: the seed's `time_settings`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeConfig {
    /// SNTP servers, `host` or `host:port` (`[::1]:123` for IPv6 literals).
    pub time_servers: Vec<String>,
    /// Seconds a time measurement is reused.
    pub update_interval: f64,
    /// Seconds allowed per server.
    pub timeout: f64,
    /// Seconds a server may differ from the others' median before it is an outlier, and
    /// how far a frame's timestamp may be ahead of a verifier's clock.
    pub max_drift: f64,
    /// Use the system clock when no server answers.
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
            update_interval: 60.0,
            timeout: 5.0,
            max_drift: 30.0,
            fallback_to_system: true,
        }
    }
}

/// `[identity]`: the seed's `identity_settings`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityConfig {
    /// The identity file (signing keys, mode 0600); empty for `<storage.data_dir>/identity.json`.
    pub identity_file: String,
    /// Create the identity file with new keys when it does not exist.
    pub auto_generate: bool,
    /// Report the host name, OS and architecture in the statistics. (The identity hash is
    /// the SHA-256 of the signing key, so that offline verifiers can check it.)
    pub include_system_info: bool,
    /// sha256 or sha512, accepted for the seed's files; identity hashes are SHA-256.
    pub hash_algorithm: String,
    /// Extra name → value pairs reported with the identity in the statistics.
    pub custom_data: BTreeMap<String, String>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            identity_file: String::new(),
            auto_generate: true,
            include_system_info: true,
            hash_algorithm: "sha256".into(),
            custom_data: BTreeMap::new(),
        }
    }
}

impl IdentityConfig {
    /// The identity file path: `identity_file`, or `identity.json` under `data_dir`.
    pub fn identity_path(&self, data_dir: &str) -> std::path::PathBuf {
        if self.identity_file.trim().is_empty() {
            std::path::Path::new(data_dir).join("identity.json")
        } else {
            std::path::PathBuf::from(&self.identity_file)
        }
    }
}

/// The signature algorithms this product implements, as named in
/// `verification.allowed_signature_algorithms`.
pub const SIGNATURE_ALGORITHMS: &[&str] = &["ed25519", "fn-dsa-512", "hybrid"];

/// `[verification]`: the seed's `verification_settings`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerificationConfig {
    /// Seconds a frame without its own ttl (JSON) stays valid.
    pub max_time_drift: f64,
    /// Refuse frames whose anchors are not current or recent chain heads.
    pub require_blockchain: bool,
    /// Refuse frames without agreeing time-server evidence.
    pub require_time_server: bool,
    /// Refuse frames whose identity hash is not this issuer's.
    pub require_identity: bool,
    /// Signature algorithms accepted: ed25519, fn-dsa-512, hybrid.
    pub allowed_signature_algorithms: Vec<String>,
}

impl Default for VerificationConfig {
    fn default() -> Self {
        VerificationConfig {
            max_time_drift: 300.0,
            require_blockchain: false,
            require_time_server: false,
            require_identity: true,
            allowed_signature_algorithms: SIGNATURE_ALGORITHMS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

/// `[security]`: the seed's `security_settings`, plus the secrets behind them.
///
/// `Debug` never prints the secrets.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    /// Encrypt user data of live frames.
    pub encrypt_qr_data: bool,
    /// Encryption of user data: chacha20-poly1305.
    pub encryption_algorithm: String,
    /// Sign live frames.
    pub sign_qr_data: bool,
    /// HMAC of every frame: sha256.
    pub hmac_algorithm: String,
    /// Secret the HMAC key is derived from (its UTF-8 bytes, at least 16); empty to use
    /// `<storage.data_dir>/hmac.secret`, created with mode 0600 on first use (like the
    /// identity), so processes sharing the data directory check each other's frames.
    pub hmac_secret: String,
    /// Name of the HMAC key carried in frames (`_hmac_key_id`).
    pub hmac_key_id: String,
    /// Secret the user-data encryption key is derived from (at least 16 bytes); empty for
    /// none (then frames cannot be encrypted).
    pub data_key_secret: String,
    /// Name of the data key carried in encrypted frames.
    pub data_key_id: String,
    /// Days after which the signing key is replaced at start-up; 0 never.
    pub key_rotation_days: u32,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            encrypt_qr_data: false,
            encryption_algorithm: "chacha20-poly1305".into(),
            sign_qr_data: true,
            hmac_algorithm: "sha256".into(),
            hmac_secret: String::new(),
            hmac_key_id: "hmac-1".into(),
            data_key_secret: String::new(),
            data_key_id: "data-1".into(),
            key_rotation_days: 90,
        }
    }
}

fn redacted(secret: &str) -> &'static str {
    if secret.is_empty() {
        "<empty>"
    } else {
        "<redacted>"
    }
}

impl fmt::Debug for SecurityConfig {
    /// Never prints `hmac_secret` or `data_key_secret`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecurityConfig")
            .field("encrypt_qr_data", &self.encrypt_qr_data)
            .field("encryption_algorithm", &self.encryption_algorithm)
            .field("sign_qr_data", &self.sign_qr_data)
            .field("hmac_algorithm", &self.hmac_algorithm)
            .field("hmac_secret", &redacted(&self.hmac_secret))
            .field("hmac_key_id", &self.hmac_key_id)
            .field("data_key_secret", &redacted(&self.data_key_secret))
            .field("data_key_id", &self.data_key_id)
            .field("key_rotation_days", &self.key_rotation_days)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::{Config, Override};

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    fn problems(c: &Config) -> Vec<String> {
        c.validate()
            .err()
            .map(|e| e.problems.iter().map(|p| p.to_string()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn defaults_follow_the_seed() {
        let c = Config::default();
        assert_eq!(c.live.update_interval_secs, 1.0);
        assert_eq!(c.blockchain.enabled_chains, ["bitcoin", "ethereum"]);
        assert_eq!(c.blockchain.cache_duration, 300.0);
        assert_eq!(c.blockchain.kind("bitcoin"), super::ChainKind::Blockcypher);
        assert_eq!(c.time.time_servers.len(), 4);
        assert_eq!(c.verification.max_time_drift, 300.0);
        assert!(c.verification.require_identity);
        assert_eq!(c.security.encryption_algorithm, "chacha20-poly1305");
        assert_eq!(
            c.identity.identity_path("/d"),
            std::path::Path::new("/d/identity.json")
        );
    }

    #[test]
    fn environment_maps_lists_and_aliases() {
        let c = Config::load_with(
            None,
            env_of(&[
                (
                    "QRLP_BLOCKCHAIN_API_ENDPOINTS",
                    "bitcoin=http://127.0.0.1:8332/, ethereum=http://127.0.0.1:8545/",
                ),
                (
                    "QRLP_BLOCKCHAIN_KINDS",
                    "bitcoin=bitcoin-rpc,ethereum=ethereum-rpc",
                ),
                ("QRLP_TIME_TIME_SERVERS", "127.0.0.1:1123,[::1]:123"),
                ("QRLP_TIME_TIMEOUT", "0.25"),
                ("QRLP_HMAC_SECRET", "0123456789abcdef0123456789abcdef"),
                ("QRLP_IDENTITY_CUSTOM_DATA", "site=berlin"),
                ("QRLP_LIVE_SIGNATURE", "hybrid"),
            ]),
            &[Override::new(
                "live.update_interval_secs",
                "0.5",
                "--interval",
            )],
        )
        .unwrap();
        assert_eq!(c.blockchain.kind("ethereum"), super::ChainKind::EthereumRpc);
        assert_eq!(
            c.blockchain.endpoint("bitcoin").as_deref(),
            Some("http://127.0.0.1:8332/")
        );
        assert_eq!(c.time.time_servers, ["127.0.0.1:1123", "[::1]:123"]);
        assert_eq!(c.time.timeout, 0.25);
        assert_eq!(c.security.hmac_secret.len(), 32);
        assert_eq!(c.identity.custom_data["site"], "berlin");
        assert_eq!(c.live.signature, super::SignatureSuite::Hybrid);
        assert_eq!(c.live.update_interval_secs, 0.5);
    }

    #[test]
    fn seed_groups_load_from_yaml() {
        let dir = std::env::temp_dir().join(format!("qrlp-config-proto-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("seed.yaml");
        std::fs::write(
            &path,
            "blockchain:\n  enabled_chains: [bitcoin]\n  timeout: 2.5\n  api_endpoints:\n    bitcoin: http://127.0.0.1:3000/btc\n\
             identity:\n  hash_algorithm: sha512\nverification:\n  allowed_signature_algorithms: [ed25519]\n",
        )
        .unwrap();
        let c = Config::load_with(Some(&path), |_| None, &[]).unwrap();
        assert_eq!(c.blockchain.timeout, 2.5);
        assert_eq!(c.identity.hash_algorithm, "sha512");
    }

    #[test]
    fn seed_algorithms_we_do_not_implement_are_refused_together() {
        let mut c = Config::default();
        c.identity.hash_algorithm = "md5".into();
        c.verification.allowed_signature_algorithms =
            vec!["rsa-sha256".into(), "ecdsa-sha256".into()];
        c.security.encryption_algorithm = "aes256".into();
        c.security.encrypt_qr_data = true;
        c.live.ttl_secs = 0.5;
        c.time.time_servers = vec![];
        c.time.fallback_to_system = false;
        c.blockchain.enabled_chains = vec!["monero".into()];
        c.qr.version = 41;
        let p = problems(&c);
        let text = p.join("\n");
        for expected in [
            "identity.hash_algorithm: md5 is broken and refused: use sha256 or sha512",
            "\"rsa-sha256\" is not supported: this product signs and verifies ed25519, fn-dsa-512 and hybrid",
            "\"ecdsa-sha256\" is not supported",
            "does not list ed25519",
            "security.encryption_algorithm: \"aes256\" is not supported: use chacha20-poly1305",
            "security.data_key_secret: security.encrypt_qr_data is true",
            "live.ttl_secs: 0.5 s is shorter",
            "time.time_servers: is empty",
            "chain \"monero\" is enabled but has no endpoint",
            "qr.version: must be 0",
        ] {
            assert!(text.contains(expected), "{expected:?} not in\n{text}");
        }
        assert_eq!(p.len(), 10, "{text}");
    }

    #[test]
    fn secrets_never_appear_in_debug_or_problems() {
        let mut c = Config::default();
        c.security.hmac_secret = "hunter2".into();
        c.security.data_key_secret = "correct horse battery staple".into();
        c.blockchain
            .api_endpoints
            .insert("bitcoin".into(), "ftp://rpc:swordfish@127.0.0.1/".into());
        c.blockchain
            .api_endpoints
            .insert("ethereum".into(), "rpc:swordfish@127.0.0.1".into());
        let debug = format!("{c:?}");
        let p = problems(&c).join("\n");
        for secret in ["hunter2", "correct horse", "swordfish"] {
            assert!(!debug.contains(secret), "{debug}");
            assert!(!p.contains(secret), "{p}");
        }
        assert!(p.contains("security.hmac_secret: is 7 bytes long"), "{p}");

        // A wrongly typed secret in a file: the parser's message would quote it.
        let dir = std::env::temp_dir().join(format!("qrlp-config-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.toml");
        std::fs::write(&path, "[security]\nhmac_secret = 987654321\n").unwrap();
        let err = Config::load_with(Some(&path), |_| None, &[]).unwrap_err();
        assert!(!err.to_string().contains("987654321"), "{err}");
        assert!(err.to_string().contains("security.hmac_secret"), "{err}");
        std::fs::write(
            &path,
            "[blockchain]\napi_endpoints = \"http://rpc:swordfish@h\"\n",
        )
        .unwrap();
        let err = Config::load_with(Some(&path), |_| None, &[]).unwrap_err();
        assert!(!err.to_string().contains("swordfish"), "{err}");

        // A malformed map in the environment is reported without its value.
        let err = Config::load_with(
            None,
            env_of(&[("QRLP_BLOCKCHAIN_API_ENDPOINTS", "http://u:swordfish@h")]),
            &[],
        )
        .unwrap_err();
        assert!(!err.to_string().contains("swordfish"), "{err}");
    }
}
