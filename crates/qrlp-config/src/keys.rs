//! The list of every configuration key: its documentation and its environment names.
//!
//! A test checks that this list and the fields of [`crate::Config`] name the same keys, so
//! the commented default file and the environment mapping cannot miss one.

/// One configuration key.
#[derive(Clone, Copy, Debug)]
pub struct KeyDoc {
    /// Dotted path, `section.key`.
    pub key: &'static str,
    /// One or two sentences for the commented default file.
    pub doc: &'static str,
    /// Environment names besides `QRLP_<SECTION>_<KEY>`, from the seeds; the `QRLP_` name
    /// wins when both are set.
    pub aliases: &'static [&'static str],
}

/// Every key, in the order of the default file.
pub const KEYS: &[KeyDoc] = &[
    KeyDoc {
        key: "server.host",
        doc: "Address to listen on: an IP address or a host name. Use 0.0.0.0 to accept\nconnections from other machines.",
        aliases: &[],
    },
    KeyDoc {
        key: "server.port",
        doc: "TCP port to listen on; 0 picks a free one.",
        aliases: &["PORT"],
    },
    KeyDoc {
        key: "server.body_limit_bytes",
        doc: "Largest request body accepted, in bytes (1024 to 67108864); larger bodies get 413.",
        aliases: &[],
    },
    KeyDoc {
        key: "server.shutdown_timeout_secs",
        doc: "After SIGINT or SIGTERM the server stops accepting connections and gives the\nrequests in flight this many seconds to finish (0 to 3600).",
        aliases: &[],
    },
    KeyDoc {
        key: "server.trusted_proxies",
        doc: "Reverse proxies (CIDR blocks, e.g. [\"10.0.0.0/8\"]) whose X-Forwarded-For and\nX-Forwarded-Proto are believed; empty: the TCP peer is the client.",
        aliases: &[],
    },
    KeyDoc {
        key: "server.header_read_timeout_secs",
        doc: "Seconds a client may take to send a request's headers (1 to 300); then the\nconnection closes.",
        aliases: &[],
    },
    KeyDoc {
        key: "server.request_timeout_secs",
        doc: "Seconds a handler may take to start its response (1 to 3600); then 503.\nStreaming bodies are not cut once started.",
        aliases: &[],
    },
    KeyDoc {
        key: "server.max_connections",
        doc: "Largest number of open client connections (1 to 1000000); more are closed at once.",
        aliases: &[],
    },
    KeyDoc {
        key: "server.keepalive_timeout_secs",
        doc: "Seconds a keep-alive connection may stay idle between requests (1 to 3600).",
        aliases: &[],
    },
    KeyDoc {
        key: "server.public_base_url",
        doc: "The address people reach this server at, e.g. \"https://qr.example.com\": links that\ncodes encode start with it. Empty: http://{host}:{port}.",
        aliases: &[],
    },
    KeyDoc {
        key: "log.format",
        doc: "\"json\" (one object per line) or \"pretty\" (one readable line per event).",
        aliases: &[],
    },
    KeyDoc {
        key: "log.level",
        doc: "Filter: a level (trace, debug, info, warn, error, off) or target=level pairs\nseparated by commas, e.g. \"info,qrlp_server=debug\".",
        aliases: &[],
    },
    KeyDoc {
        key: "cors.enabled",
        doc: "Send CORS headers so that browser pages on other origins can call the API.",
        aliases: &[],
    },
    KeyDoc {
        key: "cors.allowed_origins",
        doc: "Origins allowed when CORS is enabled, e.g. [\"https://app.example.com\"], or [\"*\"]\nfor any. In the environment, lists are comma-separated.",
        aliases: &[],
    },
    KeyDoc {
        key: "cors.allowed_methods",
        doc: "Methods a cross-origin request may use.",
        aliases: &[],
    },
    KeyDoc {
        key: "cors.allowed_headers",
        doc: "Request headers a cross-origin request may send.",
        aliases: &[],
    },
    KeyDoc {
        key: "cors.expose_headers",
        doc: "Response headers a browser script may read.",
        aliases: &[],
    },
    KeyDoc {
        key: "cors.max_age_secs",
        doc: "How long a browser may cache a preflight answer, in seconds.",
        aliases: &[],
    },
    KeyDoc {
        key: "redis.url",
        doc: "Redis URL, e.g. \"redis://127.0.0.1:6379\"; empty for none. When set, /readyz\nanswers 503 while Redis cannot be reached. The password is never logged.",
        aliases: &["REDIS_URL"],
    },
    KeyDoc {
        key: "redis.timeout_ms",
        doc: "Timeout of the readiness ping (connect and PING), in milliseconds.",
        aliases: &[],
    },
    KeyDoc {
        key: "qr.default_error_correction",
        doc: "Error correction when a request names none: L (~7%), M (~15%), Q (~25%), H (~30%).",
        aliases: &["QR_DEFAULT_ERROR_CORRECTION"],
    },
    KeyDoc {
        key: "qr.default_box_size",
        doc: "Pixels per module when a request gives neither box_size nor size (5 to 20).",
        aliases: &["QR_DEFAULT_BOX_SIZE"],
    },
    KeyDoc {
        key: "qr.default_border",
        doc: "Quiet zone width in modules when a request gives none (1 to 10).",
        aliases: &["QR_DEFAULT_BORDER"],
    },
    KeyDoc {
        key: "qr.default_fill_color",
        doc: "Colour of dark modules: #RGB, #RRGGBB or #RRGGBBAA.",
        aliases: &["QR_DEFAULT_FILL_COLOR"],
    },
    KeyDoc {
        key: "qr.default_back_color",
        doc: "Colour of light modules and the quiet zone.",
        aliases: &["QR_DEFAULT_BACK_COLOR"],
    },
    KeyDoc {
        key: "qr.default_format",
        doc: "Image format when a request names none: \"png\" or \"svg\".",
        aliases: &[],
    },
    KeyDoc {
        key: "qr.cache_max_age_secs",
        doc: "Images are sent with Cache-Control: public, max-age=N (0 to 31536000).",
        aliases: &[],
    },
    KeyDoc {
        key: "qr.style",
        doc: "Style of live codes (the seed's qr_settings.style): \"live\", \"professional\" or\n\"minimal\".",
        aliases: &[],
    },
    KeyDoc {
        key: "qr.version",
        doc: "Smallest QR version of live codes, 1 to 40, so the symbol keeps its size as frames\nchange; 0 picks the smallest that fits.",
        aliases: &[],
    },
    KeyDoc {
        key: "metrics.enabled",
        doc: "Collect metrics and serve Prometheus text at GET /metrics (where: see token and\nlisten; with neither, nowhere).",
        aliases: &[],
    },
    KeyDoc {
        key: "metrics.token",
        doc: "Bearer token for GET /metrics on the public listener; empty: not served there.",
        aliases: &[],
    },
    KeyDoc {
        key: "metrics.listen",
        doc: "A separate address for GET /metrics without a token, e.g. \"127.0.0.1:9100\";\nempty: none.",
        aliases: &[],
    },
    KeyDoc {
        key: "storage.data_dir",
        doc: "Directory of the embedded SQLite database (qrlp.db); created on first start.",
        aliases: &["QRLP_DATA_DIR"],
    },
    KeyDoc {
        key: "storage.database_url",
        doc: "postgres://user:password@host/db to use PostgreSQL, or sqlite:PATH; empty for\nSQLite under data_dir. The password is never logged.",
        aliases: &["DATABASE_URL"],
    },
    KeyDoc {
        key: "storage.max_connections",
        doc: "Largest number of pooled database connections (1 to 1000).",
        aliases: &[],
    },
    KeyDoc {
        key: "storage.encryption_key",
        doc: "Data key encrypting secrets at rest (chain checkpoints, webhook secrets): 64 hex\ndigits or base64 of 32 bytes. Empty: use encryption_key_file. Never logged.",
        aliases: &[],
    },
    KeyDoc {
        key: "storage.encryption_key_file",
        doc: "File holding the data key; empty for <data_dir>/data.key, created with a random key\nand mode 0600 on first start. Keep a copy: without it sealed secrets are lost.",
        aliases: &[],
    },
    KeyDoc {
        key: "auth.session_ttl_secs",
        doc: "How long a web login session lasts, in seconds (60 to 31536000).",
        aliases: &[],
    },
    KeyDoc {
        key: "auth.secure_cookies",
        doc: "Mark the session cookie Secure: \"auto\" (when X-Forwarded-Proto is https),\n\"always\" or \"never\".",
        aliases: &[],
    },
    KeyDoc {
        key: "auth.key_cache_ttl_ms",
        doc: "How long a server may reuse an API key lookup, in milliseconds (0 to 5000); a\nrevoked key stops working on every server within this time.",
        aliases: &[],
    },
    KeyDoc {
        key: "auth.invitation_ttl_secs",
        doc: "How long an invitation can be redeemed, in seconds (60 to 2592000).",
        aliases: &[],
    },
    KeyDoc {
        key: "auth.password_reset_ttl_secs",
        doc: "How long a \"forgot password\" link works, in seconds (60 to 86400).",
        aliases: &[],
    },
    KeyDoc {
        key: "auth.purge_interval_secs",
        doc: "How often expired sessions, invitations and reset links are deleted, in seconds\n(1 to 86400).",
        aliases: &[],
    },
    KeyDoc {
        key: "rate_limit.enabled",
        doc: "Enforce the plan budgets (free 100, starter 1000, professional 10000,\nenterprise 100000 requests per hour per organization) and the per-address limit.",
        aliases: &[],
    },
    KeyDoc {
        key: "rate_limit.redis_fail_mode",
        doc: "With redis.url set the budgets live in Redis; while it is down, \"open\" lets\nrequests through and \"closed\" refuses them with 503.",
        aliases: &[],
    },
    KeyDoc {
        key: "rate_limit.ip_per_hour",
        doc: "Requests per hour per client address on unauthenticated routes; 0 for none.",
        aliases: &[],
    },
    KeyDoc {
        key: "rate_limit.ip_limit_qr",
        doc: "Apply the per-address limit to the public QR image API /v1/qr as well.",
        aliases: &[],
    },
    KeyDoc {
        key: "mail.smtp_url",
        doc: "SMTP server for invitations and password resets: smtp://host:port (plain),\nsmtp://host?tls=required (STARTTLS) or smtps://user:pass@host. Empty: no mail;\ninvitation links go back to the inviting admin.",
        aliases: &[],
    },
    KeyDoc {
        key: "mail.from",
        doc: "The From address of those mails.",
        aliases: &[],
    },
    KeyDoc {
        key: "live.update_interval_secs",
        doc: "Seconds between live frames (the seed's update_interval), 0.01 to 3600.",
        aliases: &[],
    },
    KeyDoc {
        key: "live.ttl_secs",
        doc: "How long a frame stays valid after its timestamp, in seconds: at least the update\ninterval, at most 86400.",
        aliases: &[],
    },
    KeyDoc {
        key: "live.frame_format",
        doc: "Text put in the QR code: \"compact\" (QL2: + base45, small) or \"json\" (the seed's\nQRData).",
        aliases: &[],
    },
    KeyDoc {
        key: "live.signature",
        doc: "Signature suite: \"ed25519\", \"fn-dsa\" (post-quantum FN-DSA-512) or \"hybrid\" (both).",
        aliases: &[],
    },
    KeyDoc {
        key: "live.evidence_timeout_secs",
        doc: "Longest a frame waits for time and chain evidence, in seconds (0.01 to 60); later\nanswers are cached for the next frame.",
        aliases: &[],
    },
    KeyDoc {
        key: "blockchain.enabled_chains",
        doc: "Chains whose latest block hash anchors each frame, e.g. [\"bitcoin\", \"ethereum\"];\nempty for none.",
        aliases: &[],
    },
    KeyDoc {
        key: "blockchain.cache_duration",
        doc: "Seconds a fetched block hash is reused without asking again.",
        aliases: &[],
    },
    KeyDoc {
        key: "blockchain.timeout",
        doc: "Seconds allowed for one request to a chain endpoint.",
        aliases: &[],
    },
    KeyDoc {
        key: "blockchain.retry_attempts",
        doc: "Retries after a timeout, connection error or HTTP 408/429/5xx (0 to 10).",
        aliases: &[],
    },
    KeyDoc {
        key: "blockchain.api_endpoints",
        doc: "Chain -> endpoint URL. Chains without one use BlockCypher's public endpoint. In the\nenvironment: name=url,name=url. Passwords in URLs are never logged.",
        aliases: &[],
    },
    KeyDoc {
        key: "blockchain.kinds",
        doc: "Chain -> protocol of its endpoint: \"bitcoin-rpc\", \"ethereum-rpc\" or \"blockcypher\"\n(the default for chains not listed). In the environment: name=kind,name=kind.",
        aliases: &[],
    },
    KeyDoc {
        key: "time.time_servers",
        doc: "SNTP servers, host or host:port; the median of their answers is the evidence of\ntime. Empty (with fallback_to_system) for none.",
        aliases: &[],
    },
    KeyDoc {
        key: "time.update_interval",
        doc: "Seconds a time measurement is reused before the servers are asked again.",
        aliases: &[],
    },
    KeyDoc {
        key: "time.timeout",
        doc: "Seconds allowed per time server.",
        aliases: &[],
    },
    KeyDoc {
        key: "time.max_drift",
        doc: "Seconds a server may differ from the median before it is ignored; also how far a\nframe may be ahead of the verifier's clock.",
        aliases: &[],
    },
    KeyDoc {
        key: "time.fallback_to_system",
        doc: "Use the system clock (marked as unchecked) when no time server answers.",
        aliases: &[],
    },
    KeyDoc {
        key: "identity.identity_file",
        doc: "Identity file holding the signing keys (mode 0600); empty for\n<storage.data_dir>/identity.json.",
        aliases: &[],
    },
    KeyDoc {
        key: "identity.auto_generate",
        doc: "Create the identity file with new keys when it does not exist.",
        aliases: &[],
    },
    KeyDoc {
        key: "identity.include_system_info",
        doc: "Report the host name, OS and architecture in the statistics (identity_stats). The\nidentity hash itself is the SHA-256 of the signing key, so offline verifiers can check it.",
        aliases: &[],
    },
    KeyDoc {
        key: "identity.hash_algorithm",
        doc: "\"sha256\" or \"sha512\", accepted for the seed's files; identity hashes are SHA-256 of\nthe signing key (docs/qrlp-frames.md).",
        aliases: &[],
    },
    KeyDoc {
        key: "identity.custom_data",
        doc: "Extra name -> value pairs reported with the identity in the statistics. In the\nenvironment: name=value,name=value.",
        aliases: &[],
    },
    KeyDoc {
        key: "verification.max_time_drift",
        doc: "Seconds a frame without its own ttl (the JSON format) stays valid.",
        aliases: &[],
    },
    KeyDoc {
        key: "verification.require_blockchain",
        doc: "Refuse frames whose anchors are not current or recent block hashes.",
        aliases: &[],
    },
    KeyDoc {
        key: "verification.require_time_server",
        doc: "Refuse frames without agreeing time-server evidence (SNTP is advisory by default).",
        aliases: &[],
    },
    KeyDoc {
        key: "verification.require_identity",
        doc: "Refuse frames whose identity hash is not this issuer's.",
        aliases: &[],
    },
    KeyDoc {
        key: "verification.allowed_signature_algorithms",
        doc: "Signature algorithms accepted: any of \"ed25519\", \"fn-dsa-512\", \"hybrid\".",
        aliases: &[],
    },
    KeyDoc {
        key: "security.encrypt_qr_data",
        doc: "Encrypt the user data of live frames (needs data_key_secret).",
        aliases: &[],
    },
    KeyDoc {
        key: "security.encryption_algorithm",
        doc: "Encryption of user data: \"chacha20-poly1305\" (the only one supported).",
        aliases: &[],
    },
    KeyDoc {
        key: "security.sign_qr_data",
        doc: "Sign live frames with the identity's key.",
        aliases: &[],
    },
    KeyDoc {
        key: "security.hmac_algorithm",
        doc: "HMAC of every frame: \"sha256\" (the only one supported).",
        aliases: &[],
    },
    KeyDoc {
        key: "security.hmac_secret",
        doc: "Secret the HMAC key is derived from (its UTF-8 bytes), at least 16 bytes (32 random\nbytes advised); empty to use <storage.data_dir>/hmac.secret, created (mode 0600) on first\nuse. Never logged.",
        aliases: &["QRLP_HMAC_SECRET"],
    },
    KeyDoc {
        key: "security.hmac_key_id",
        doc: "Name of the HMAC key, carried in frames: 1 to 32 of A-Z a-z 0-9 . _ -.",
        aliases: &[],
    },
    KeyDoc {
        key: "security.data_key_secret",
        doc: "Secret the user-data encryption key is derived from, at least 16 bytes; empty for\nnone (frames cannot then be encrypted). Never logged.",
        aliases: &["QRLP_DATA_KEY_SECRET"],
    },
    KeyDoc {
        key: "security.data_key_id",
        doc: "Name of the data key, carried in encrypted frames: 1 to 32 of A-Z a-z 0-9 . _ -.",
        aliases: &[],
    },
    KeyDoc {
        key: "security.key_rotation_days",
        doc: "Days after which the signing key is replaced at start-up (the old key keeps\nverifying for a day); 0 never.",
        aliases: &[],
    },
    KeyDoc {
        key: "webhooks.allow_private_targets",
        doc: "Let webhook endpoints reach loopback, private, link-local, unique-local, CGNAT and\ncloud-metadata addresses. For development and tests only.",
        aliases: &[],
    },
    KeyDoc {
        key: "webhooks.timeout_ms",
        doc: "How long one delivery attempt may take, in milliseconds (100 to 60000).",
        aliases: &[],
    },
    KeyDoc {
        key: "webhooks.retry_time_scale",
        doc: "Multiplies every wait of the retry schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h,\n20 h, 24 h) and the 5 days after which a failing endpoint is disabled. 1.0 in production.",
        aliases: &[],
    },
    KeyDoc {
        key: "webhooks.concurrency",
        doc: "Deliveries in flight at once in this process (0 to 1024); 0 runs no delivery worker\nhere (another process delivers).",
        aliases: &[],
    },
    KeyDoc {
        key: "webhooks.poll_interval_ms",
        doc: "How often an idle delivery worker looks for due deliveries, in milliseconds (10 to\n60000). Events written by the same process wake it at once.",
        aliases: &[],
    },
    KeyDoc {
        key: "fleet.update_interval_secs",
        doc: "Seconds between device heartbeats (1 to 86400), sent to devices when they\nregister; a device is offline after three missed intervals.",
        aliases: &[],
    },
    KeyDoc {
        key: "fleet.offline_check_interval_ms",
        doc: "How often each server looks for devices gone offline, in milliseconds (100 to\n600000).",
        aliases: &[],
    },
    KeyDoc {
        key: "fleet.signature_tolerance_secs",
        doc: "How far a signed device request's timestamp may be from the server clock, in\nseconds (1 to 3600).",
        aliases: &[],
    },
    KeyDoc {
        key: "fleet.device_requests_per_minute",
        doc: "Requests per minute per device on the device endpoints (1 to 100000).",
        aliases: &[],
    },
    KeyDoc {
        key: "fleet.rotation_interval_days",
        doc: "Days between scheduled device key rotations (1 to 3650).",
        aliases: &[],
    },
    KeyDoc {
        key: "fleet.rotation_grace_secs",
        doc: "Seconds a replaced device key version stays valid (0 to 2592000).",
        aliases: &[],
    },
    KeyDoc {
        key: "fleet.certificate_days",
        doc: "Days a device certificate is valid (1 to 3650).",
        aliases: &[],
    },
    KeyDoc {
        key: "fleet.enrollment_token_ttl_secs",
        doc: "Default lifetime of an enrollment token, in seconds (60 to 31536000).",
        aliases: &[],
    },
];

/// Keys whose values are secrets: never shown in `Debug`, problems or logs.
pub const SECRET_KEYS: &[&str] = &[
    "security.hmac_secret",
    "security.data_key_secret",
    "metrics.token",
    "mail.smtp_url",
    "storage.encryption_key",
];

/// The `QRLP_` environment name of a dotted key: `server.port` → `QRLP_SERVER_PORT`.
///
/// ```
/// assert_eq!(qrlp_config::env_var_name("qr.default_box_size"), "QRLP_QR_DEFAULT_BOX_SIZE");
/// ```
pub fn env_var_name(key: &str) -> String {
    let mut name = String::with_capacity(key.len() + 5);
    name.push_str("QRLP_");
    for c in key.chars() {
        name.push(if c == '.' {
            '_'
        } else {
            c.to_ascii_uppercase()
        });
    }
    name
}

/// The documentation of a key, if it is one.
pub(crate) fn find(key: &str) -> Option<&'static KeyDoc> {
    KEYS.iter().find(|k| k.key == key)
}
