//! # qrlp-config: the one typed configuration of qrlp
//!
//! Every setting of the product lives in [`Config`], one serde struct per section, each with
//! a [`Default`] that lets `qrlp serve` start with no configuration at all.
//!
//! Sources, later ones winning:
//! 1. the defaults;
//! 2. a config file, TOML, JSON or YAML by its extension ([`Config::load`]);
//! 3. environment variables: `QRLP_<SECTION>_<KEY>` for every key (e.g. `QRLP_SERVER_PORT`),
//!    and the names the qr-api seed documents (`PORT`, `REDIS_URL`, `QR_DEFAULT_*`), which
//!    lose to the `QRLP_` name of the same key;
//! 4. command-line flags, given to [`Config::load`] as [`Override`]s.
//!
//! Every value is checked as it is applied, then [`Config::validate`] checks the result;
//! [`Config::load`] reports every problem of both kinds at once, each with its key and source.
//! [`default_toml`] writes the full default file for `qrlp config-init`.
//!
//! ```
//! use qrlp_config::{Config, Override};
//! let env = |name: &str| (name == "PORT").then(|| "9000".to_string());
//! let flags = [Override::new("server.host", "0.0.0.0", "--host")];
//! let config = Config::load_with(None, env, &flags).unwrap();
//! assert_eq!((config.server.host.as_str(), config.server.port), ("0.0.0.0", 9000));
//! ```
//!
//! This crate does file and environment reads only; it never opens a socket.
//!
//! # The QR Live Protocol's settings groups
//!
//! The seed's `QRLPConfig` groups map onto this configuration as follows. Seed names are
//! kept wherever a key is new; where the product already had the setting, the seed's name
//! maps to the existing key.
//!
//! | seed group / key | here |
//! |---|---|
//! | `update_interval` | `live.update_interval_secs` |
//! | `qr_settings.error_correction_level` | `qr.default_error_correction` |
//! | `qr_settings.box_size` | `qr.default_box_size` |
//! | `qr_settings.border_size` | `qr.default_border` |
//! | `qr_settings.fill_color`, `back_color` | `qr.default_fill_color`, `qr.default_back_color` |
//! | `qr_settings.version`, `style` | `qr.version` (0 = auto), `qr.style` |
//! | `web_settings.host`, `port` | `server.host`, `server.port` |
//! | `web_settings.cors_enabled` | `cors.enabled` (with `cors.allowed_origins`) |
//! | `web_settings.debug` | `log.level = "debug"` |
//! | `web_settings.auto_open_browser`, `viewer_theme` | not kept (a server does not open browsers) |
//! | `blockchain_settings.*` | `[blockchain]`: `enabled_chains`, `cache_duration`, `timeout`, `retry_attempts`, `api_endpoints`, plus `kinds` (the protocol each endpoint speaks) |
//! | `time_settings.*` | `[time]`: `time_servers`, `update_interval`, `timeout`, `max_drift`, `fallback_to_system` |
//! | `identity_settings.*` | `[identity]`: `identity_file`, `auto_generate`, `include_system_info`, `hash_algorithm`, `custom_data` |
//! | `verification_settings.*` | `[verification]`: `max_time_drift`, `require_blockchain`, `require_time_server`, `require_identity`, `allowed_signature_algorithms` |
//! | `security_settings.*` | `[security]`: `encrypt_qr_data`, `encryption_algorithm`, `sign_qr_data`, `hmac_algorithm`, `key_rotation_days`, plus the secrets `hmac_secret` and `data_key_secret` and their key names |
//! | `logging_settings.level` | `log.level`; `format` → `log.format` (json or pretty); file rotation is left to the service manager |
//!
//! Durations in the protocol groups are seconds, integer or fractional, as in the seed.
//! Maps (`blockchain.api_endpoints`, `blockchain.kinds`, `identity.custom_data`) are
//! written in the environment as `name=value,name=value`.
//!
//! The seed's algorithm names that this product does not implement are refused by
//! [`Config::validate`] with a message naming what it supports: `md5` identity hashes,
//! `rsa-sha256`/`ecdsa-sha256` signatures, `aes256` encryption.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod keys;
mod load;
mod protocol;
mod template;
mod validate;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use keys::{env_var_name, KeyDoc, KEYS, SECRET_KEYS};
pub use load::{ConfigError, Override, Problem};
pub use protocol::{
    BlockchainConfig, ChainKind, FrameFormat, IdentityConfig, LiveConfig, SecurityConfig,
    SignatureSuite, TimeConfig, VerificationConfig, SIGNATURE_ALGORITHMS,
};
pub use qrlp_qr::EcLevel;
pub use qrlp_render::Color;
pub use template::default_toml;

/// Bounds of the QR image API that the seeds document, shared by the configuration (for its
/// defaults) and the API (for requests).
pub mod limits {
    use std::ops::RangeInclusive;

    /// `box_size`: pixels per module.
    pub const BOX_SIZE: RangeInclusive<u32> = 5..=20;
    /// `border`: quiet zone width in modules.
    pub const BORDER: RangeInclusive<u32> = 1..=10;
    /// `size`: exact image width in pixels.
    pub const SIZE: RangeInclusive<u32> = 100..=2000;
    /// `url`: longest accepted, in characters.
    pub const URL_MAX_CHARS: usize = 2000;
}

/// The whole configuration of qrlp.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The HTTP listener and its limits.
    pub server: ServerConfig,
    /// Logging.
    pub log: LogConfig,
    /// Cross-origin requests from browsers.
    pub cors: CorsConfig,
    /// Redis, optional on one node.
    pub redis: RedisConfig,
    /// Defaults and caching of the QR image API.
    pub qr: QrConfig,
    /// The Prometheus endpoint.
    pub metrics: MetricsConfig,
    /// Where organizations, users, keys and the audit log are kept.
    pub storage: StorageConfig,
    /// API keys and web sessions.
    pub auth: AuthConfig,
    /// Plan and per-address request limits.
    pub rate_limit: RateLimitConfig,
    /// Mail for invitations and password resets.
    pub mail: MailConfig,
    /// Live frames of the QR Live Protocol: how often, how long valid, which format.
    pub live: LiveConfig,
    /// The seed's `blockchain_settings`: chains whose latest block anchors live frames.
    pub blockchain: BlockchainConfig,
    /// The seed's `time_settings`: SNTP servers giving evidence of time.
    pub time: TimeConfig,
    /// The seed's `identity_settings`: the issuer's identity file and identity hash.
    pub identity: IdentityConfig,
    /// The seed's `verification_settings`: what `verify` requires.
    pub verification: VerificationConfig,
    /// The seed's `security_settings`: signatures, HMAC, encryption, keys.
    pub security: SecurityConfig,
    /// Webhook delivery: targets, timeouts, retries, workers.
    pub webhooks: WebhooksConfig,
    /// The device fleet (seed 002): heartbeats, signed requests, rotation, certificates.
    pub fleet: FleetConfig,
}

/// `[server]`: where `qrlp serve` listens and how it treats requests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to bind: an IP address or a host name.
    pub host: String,
    /// TCP port; 0 picks a free one.
    pub port: u16,
    /// Largest request body accepted, in bytes; larger ones get 413.
    pub body_limit_bytes: u64,
    /// After SIGINT or SIGTERM, how long requests in flight may take to finish.
    pub shutdown_timeout_secs: u64,
    /// The address people reach this server at, e.g. `https://qr.example.com`: links that
    /// codes encode (one-time scan pages, tracked-code redirects) start with it. Empty: the
    /// listen address, see [`ServerConfig::public_base_url`].
    pub public_base_url: String,
    /// Reverse proxies whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed, as
    /// CIDR blocks (`10.0.0.0/8`, `::1/128`); empty: none, the TCP peer is the client.
    pub trusted_proxies: Vec<String>,
    /// How long a client may take to send a request's headers, in seconds; also how long an
    /// idle keep-alive connection may wait for its next request. Then the connection closes.
    pub header_read_timeout_secs: u64,
    /// How long a handler may take to produce its response head, in seconds; then 503
    /// `UNAVAILABLE`. Streaming bodies are not limited once their head is sent.
    pub request_timeout_secs: u64,
    /// Largest number of open client connections; connections beyond it are closed at once.
    pub max_connections: u32,
    /// How long a keep-alive connection may stay idle between requests, in seconds.
    pub keepalive_timeout_secs: u64,
}

impl ServerConfig {
    /// The base of links that codes encode, without a trailing slash: `public_base_url`
    /// when set, else `http://{host}:{port}` (an unspecified host shows as `127.0.0.1`).
    pub fn public_base_url(&self) -> String {
        let configured = self.public_base_url.trim().trim_end_matches('/');
        if !configured.is_empty() {
            return configured.to_string();
        }
        let host = match self.host.as_str() {
            "0.0.0.0" | "::" | "[::]" => "127.0.0.1",
            h => h,
        };
        if host.contains(':') && !host.starts_with('[') {
            format!("http://[{host}]:{}", self.port)
        } else {
            format!("http://{host}:{}", self.port)
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "127.0.0.1".into(),
            port: 8000,
            body_limit_bytes: 64 * 1024,
            shutdown_timeout_secs: 30,
            public_base_url: String::new(),
            trusted_proxies: Vec::new(),
            header_read_timeout_secs: 10,
            request_timeout_secs: 30,
            max_connections: 1024,
            keepalive_timeout_secs: 5,
        }
    }
}

/// `[log]`: structured logs on standard error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `json` (one object per line) or `pretty` (one readable line per event).
    pub format: LogFormat,
    /// Filter directives: a level (`info`) or `target=level` pairs separated by commas.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Pretty,
            level: "info".into(),
        }
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line, for machines.
    Json,
    /// One readable line per event, for people.
    Pretty,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(LogFormat::Json),
            "pretty" => Ok(LogFormat::Pretty),
            _ => Err(format!("unknown log format {s:?}: choose json or pretty")),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Json => "json",
            LogFormat::Pretty => "pretty",
        })
    }
}

/// `[cors]`: which browser origins may call the API. Off by default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsConfig {
    /// Whether CORS headers are sent at all.
    pub enabled: bool,
    /// Origins such as `https://app.example.com`, or `["*"]` for any.
    pub allowed_origins: Vec<String>,
    /// Methods a cross-origin request may use.
    pub allowed_methods: Vec<String>,
    /// Request headers a cross-origin request may send.
    pub allowed_headers: Vec<String>,
    /// Response headers a browser script may read.
    pub expose_headers: Vec<String>,
    /// How long a browser may cache a preflight answer, in seconds.
    pub max_age_secs: u64,
}

impl Default for CorsConfig {
    fn default() -> Self {
        CorsConfig {
            enabled: false,
            allowed_origins: Vec::new(),
            allowed_methods: vec!["GET".into(), "POST".into()],
            allowed_headers: vec!["content-type".into(), "x-request-id".into()],
            expose_headers: vec!["x-request-id".into(), "etag".into()],
            max_age_secs: 600,
        }
    }
}

/// `[redis]`: optional; when set, `/readyz` reports 503 while it cannot be reached.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`, `rediss://...` or `unix://...`; empty for none.
    pub url: String,
    /// Connect and command timeout of the readiness ping, in milliseconds.
    pub timeout_ms: u64,
}

impl RedisConfig {
    /// Whether a Redis is configured.
    pub fn is_configured(&self) -> bool {
        !self.url.is_empty()
    }

    /// The URL with any password replaced by `***`, safe to log.
    pub fn redacted_url(&self) -> String {
        redact_url_password(&self.url)
    }
}

impl fmt::Debug for RedisConfig {
    /// Never prints the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.redacted_url())
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: String::new(),
            timeout_ms: 1000,
        }
    }
}

/// Replaces the password of `scheme://user:password@host...` with `***`.
///
/// ```
/// assert_eq!(
///     qrlp_config::redact_url_password("redis://:hunter2@cache:6379/0"),
///     "redis://:***@cache:6379/0"
/// );
/// assert_eq!(qrlp_config::redact_url_password("redis://cache"), "redis://cache");
/// ```
pub fn redact_url_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_string();
    };
    let userinfo = &rest[..at];
    let user = match userinfo.find(':') {
        Some(colon) => &userinfo[..colon],
        // A lone user name is how some URLs carry a password (redis://secret@host).
        None => "",
    };
    format!("{}{}:***{}", &url[..scheme_end], user, &rest[at..])
}

/// `[qr]`: the QR image API. The defaults apply to requests that leave a field out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QrConfig {
    /// Error correction level: L, M, Q or H.
    #[serde(with = "as_string")]
    pub default_error_correction: EcLevel,
    /// Pixels per module, 5 to 20.
    pub default_box_size: u32,
    /// Quiet zone width in modules, 1 to 10.
    pub default_border: u32,
    /// Colour of dark modules, `#RGB`, `#RRGGBB` or `#RRGGBBAA`.
    #[serde(with = "as_string")]
    pub default_fill_color: Color,
    /// Colour of light modules and the quiet zone.
    #[serde(with = "as_string")]
    pub default_back_color: Color,
    /// Image format when a request names none: png or svg.
    pub default_format: ImageFormat,
    /// `Cache-Control: public, max-age=N` on images, in seconds.
    pub cache_max_age_secs: u64,
    /// The seed's `qr_settings.style` for live codes: live, professional or minimal.
    pub style: QrStyle,
    /// The seed's `qr_settings.version` for live codes: 0 picks the smallest version that
    /// fits, 1 to 40 is the smallest version used (so the symbol keeps its size while frames
    /// change length; a longer frame still gets a larger version).
    pub version: u8,
}

impl Default for QrConfig {
    fn default() -> Self {
        QrConfig {
            default_error_correction: EcLevel::M,
            default_box_size: 10,
            default_border: 1,
            default_fill_color: Color::BLACK,
            default_back_color: Color::WHITE,
            default_format: ImageFormat::Png,
            cache_max_age_secs: 86_400,
            style: QrStyle::Live,
            version: 0,
        }
    }
}

/// The seed's QR styles for live codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QrStyle {
    /// The live look: the configured colours, with a caption where the front end adds one.
    Live,
    /// A sober look for print and slides.
    Professional,
    /// The bare symbol, nothing around it but the quiet zone.
    Minimal,
}

impl QrStyle {
    /// `live`, `professional` or `minimal`.
    pub fn as_str(self) -> &'static str {
        match self {
            QrStyle::Live => "live",
            QrStyle::Professional => "professional",
            QrStyle::Minimal => "minimal",
        }
    }
}

impl FromStr for QrStyle {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "live" => Ok(QrStyle::Live),
            "professional" => Ok(QrStyle::Professional),
            "minimal" => Ok(QrStyle::Minimal),
            _ => Err(format!(
                "unknown style {s:?}: choose live, professional or minimal"
            )),
        }
    }
}

impl fmt::Display for QrStyle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An image format the API can return.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    /// `image/png`.
    Png,
    /// `image/svg+xml`.
    Svg,
}

impl ImageFormat {
    /// The lower-case name: `png` or `svg`.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Svg => "svg",
        }
    }
}

impl FromStr for ImageFormat {
    type Err = String;

    /// `png` or `svg`, in either case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("png") {
            Ok(ImageFormat::Png)
        } else if s.eq_ignore_ascii_case("svg") {
            Ok(ImageFormat::Svg)
        } else {
            Err(format!("unknown image format {s:?}: choose png or svg"))
        }
    }
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[metrics]`: the Prometheus text endpoint. Off the public listener unless a token is
/// set; `listen` serves it, without a token, on an address of its own.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Whether metrics are collected and served at all.
    pub enabled: bool,
    /// A bearer token: when set, `GET /metrics` on the public listener answers requests
    /// with `Authorization: Bearer <token>` (and 401 to others). Empty: not served there.
    pub token: String,
    /// A separate listener for `GET /metrics` without a token, e.g. `127.0.0.1:9100`.
    /// Empty: none.
    pub listen: String,
}

impl fmt::Debug for MetricsConfig {
    /// Never prints the token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsConfig")
            .field("enabled", &self.enabled)
            .field("token", &(!self.token.is_empty()).then_some("<redacted>"))
            .field("listen", &self.listen)
            .finish()
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            token: String::new(),
            listen: String::new(),
        }
    }
}

/// `[mail]`: how invitations and password resets reach people.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    /// SMTP server: `smtp://host:port` (plain, for a local relay), `smtp://host?tls=required`
    /// (STARTTLS) or `smtps://user:password@host` (TLS). Empty: no mail; invitation links
    /// are returned to the inviting admin instead.
    pub smtp_url: String,
    /// The `From` address of the mails.
    pub from: String,
}

impl fmt::Debug for MailConfig {
    /// Never prints the URL (it may hold a password).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailConfig")
            .field(
                "smtp_url",
                &(!self.smtp_url.is_empty()).then_some("<redacted>"),
            )
            .field("from", &self.from)
            .finish()
    }
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            smtp_url: String::new(),
            from: "qrlp <noreply@localhost>".into(),
        }
    }
}

/// `[storage]`: the database. SQLite under `data_dir` unless `database_url` names PostgreSQL.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Directory for the embedded SQLite database (`qrlp.db`) and other local state;
    /// created on first start.
    pub data_dir: String,
    /// `postgres://user:password@host/db` for PostgreSQL, `sqlite:PATH` for another SQLite
    /// file, or empty for `data_dir/qrlp.db`.
    pub database_url: String,
    /// Largest number of pooled database connections.
    pub max_connections: u32,
    /// The data key that encrypts secrets at rest (chain checkpoints, webhook signing
    /// secrets): 64 hex digits or base64 of 32 bytes. Empty: read `encryption_key_file`.
    pub encryption_key: String,
    /// File holding the data key; empty for `<data_dir>/data.key`. Created with a random key
    /// and mode 0600 on first start when it does not exist.
    pub encryption_key_file: String,
}

impl StorageConfig {
    /// The data key file: `encryption_key_file`, or `data.key` under `data_dir`.
    pub fn encryption_key_path(&self) -> std::path::PathBuf {
        if self.encryption_key_file.trim().is_empty() {
            std::path::Path::new(&self.data_dir).join("data.key")
        } else {
            std::path::PathBuf::from(self.encryption_key_file.trim())
        }
    }

    /// `database_url` with any password replaced by `***`, safe to log.
    pub fn redacted_url(&self) -> String {
        redact_url_password(&self.database_url)
    }
}

impl fmt::Debug for StorageConfig {
    /// Never prints the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageConfig")
            .field("data_dir", &self.data_dir)
            .field("database_url", &self.redacted_url())
            .field("max_connections", &self.max_connections)
            .field(
                "encryption_key",
                &if self.encryption_key.is_empty() {
                    "<empty>"
                } else {
                    "<redacted>"
                },
            )
            .field("encryption_key_file", &self.encryption_key_file)
            .finish()
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            data_dir: "./qrlp-data".into(),
            database_url: String::new(),
            max_connections: 8,
            encryption_key: String::new(),
            encryption_key_file: String::new(),
        }
    }
}

/// When the session cookie carries the `Secure` attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecureCookies {
    /// When the request came over HTTPS: `X-Forwarded-Proto: https` from a proxy.
    Auto,
    /// Always.
    Always,
    /// Never (plain-HTTP development only).
    Never,
}

impl FromStr for SecureCookies {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(SecureCookies::Auto),
            "always" => Ok(SecureCookies::Always),
            "never" => Ok(SecureCookies::Never),
            _ => Err(format!(
                "unknown secure_cookies {s:?}: choose auto, always or never"
            )),
        }
    }
}

/// `[auth]`: API keys and the web UI's sessions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// How long a login session lasts, in seconds.
    pub session_ttl_secs: u64,
    /// When the session cookie is marked `Secure`.
    pub secure_cookies: SecureCookies,
    /// How long a server process may reuse what it read about an API key, in
    /// milliseconds; a revoked key stops working everywhere within this time (at most 5000).
    pub key_cache_ttl_ms: u64,
    /// How long an invitation can be redeemed, in seconds.
    pub invitation_ttl_secs: u64,
    /// How long a "forgot password" link works, in seconds.
    pub password_reset_ttl_secs: u64,
    /// How often expired sessions, invitations and reset links are deleted, in seconds.
    pub purge_interval_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            session_ttl_secs: 7 * 24 * 3600,
            secure_cookies: SecureCookies::Auto,
            key_cache_ttl_ms: 2000,
            invitation_ttl_secs: 7 * 24 * 3600,
            password_reset_ttl_secs: 3600,
            purge_interval_secs: 3600,
        }
    }
}

/// What the rate limiter does while Redis cannot be reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    /// Let requests through (and report Redis as unavailable on `/readyz`).
    Open,
    /// Refuse requests with 503 until Redis is back.
    Closed,
}

impl FromStr for FailMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "open" => Ok(FailMode::Open),
            "closed" => Ok(FailMode::Closed),
            _ => Err(format!("unknown fail mode {s:?}: choose open or closed")),
        }
    }
}

/// `[rate_limit]`: per-organization plan budgets and a per-address limit for
/// unauthenticated routes. Shared through Redis when `redis.url` is set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Whether limits are enforced at all.
    pub enabled: bool,
    /// With Redis configured: `open` lets requests through while Redis is down, `closed`
    /// refuses them with 503.
    pub redis_fail_mode: FailMode,
    /// Requests per hour per client address on unauthenticated routes; 0 turns it off.
    pub ip_per_hour: u32,
    /// Whether the per-address limit also applies to the public QR image API `/v1/qr`.
    pub ip_limit_qr: bool,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            enabled: true,
            redis_fail_mode: FailMode::Open,
            ip_per_hour: 60,
            ip_limit_qr: false,
        }
    }
}

/// `[webhooks]`: how events reach customers' endpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Let endpoints reach loopback, private, link-local and other non-public addresses
    /// (development and tests only).
    pub allow_private_targets: bool,
    /// How long one delivery attempt may take, in milliseconds.
    pub timeout_ms: u64,
    /// Multiplies every wait of the retry schedule (and the five days after which a failing
    /// endpoint is disabled); 1.0 in production, small in tests.
    pub retry_time_scale: f64,
    /// Deliveries in flight at once per server process; 0 runs no delivery worker here.
    pub concurrency: u32,
    /// How often an idle worker looks for due deliveries, in milliseconds (events written by
    /// this process wake it at once).
    pub poll_interval_ms: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            allow_private_targets: false,
            timeout_ms: 10_000,
            retry_time_scale: 1.0,
            concurrency: 32,
            poll_interval_ms: 1000,
        }
    }
}

/// Serde through `Display` and `FromStr`, for the core types that have no serde of their own.
mod as_string {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{de, Deserialize, Deserializer, Serializer};

    pub fn serialize<T: Display, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(value)
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

/// `[fleet]`: the device fleet of seed 002.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FleetConfig {
    /// Seconds between a device's heartbeats, sent to devices at registration (the seed's
    /// `update_interval`); a device is offline after three missed intervals.
    pub update_interval_secs: u32,
    /// How often each server looks for devices that went offline, in milliseconds.
    pub offline_check_interval_ms: u64,
    /// How far a signed request's timestamp may be from the server clock, in seconds.
    pub signature_tolerance_secs: u32,
    /// Requests per minute per device on the device endpoints.
    pub device_requests_per_minute: u32,
    /// Days between scheduled key rotations.
    pub rotation_interval_days: u32,
    /// Seconds a replaced key version stays valid.
    pub rotation_grace_secs: u64,
    /// Days a device certificate is valid.
    pub certificate_days: u32,
    /// Default lifetime of an enrollment token, in seconds.
    pub enrollment_token_ttl_secs: u64,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            update_interval_secs: 300,
            offline_check_interval_ms: 5_000,
            signature_tolerance_secs: 300,
            device_requests_per_minute: 100,
            rotation_interval_days: 30,
            rotation_grace_secs: 86_400,
            certificate_days: 180,
            enrollment_token_ttl_secs: 86_400,
        }
    }
}
