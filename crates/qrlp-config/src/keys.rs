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
        key: "metrics.enabled",
        doc: "Serve Prometheus text at GET /metrics.",
        aliases: &[],
    },
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
