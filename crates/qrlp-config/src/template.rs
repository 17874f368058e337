//! The full default file, written by `qrlp config-init`.

use std::fmt::Write;

use crate::keys::{env_var_name, KEYS};
use crate::Config;

/// One line of documentation for each section header.
const SECTIONS: &[(&str, &str)] = &[
    ("server", "The HTTP listener of `qrlp serve`."),
    ("log", "Structured logs, written to standard error."),
    (
        "cors",
        "Cross-origin requests from browser pages. Off by default.",
    ),
    ("redis", "Optional Redis. One node runs without it."),
    (
        "qr",
        "The QR image API (POST and GET /v1/qr): defaults for fields a request leaves out.",
    ),
    ("metrics", "Prometheus text exposition."),
    (
        "storage",
        "The database: embedded SQLite by default, PostgreSQL when database_url says so.",
    ),
    ("auth", "API keys and web sessions."),
    ("rate_limit", "Plan budgets per organization and a per-address limit."),
    ("mail", "Mail for invitations and password resets (none by default)."),
    (
        "live",
        "Live frames of the QR Live Protocol (the seed's update_interval and frame choices).",
    ),
    (
        "blockchain",
        "Chains whose latest block anchors each frame (the seed's blockchain_settings).",
    ),
    (
        "time",
        "SNTP servers giving evidence of time (the seed's time_settings). Advisory.",
    ),
    (
        "identity",
        "The issuer's identity file and identity hash (the seed's identity_settings).",
    ),
    (
        "verification",
        "What verification requires (the seed's verification_settings).",
    ),
    (
        "security",
        "Signatures, HMAC, encryption and keys (the seed's security_settings). Secrets are never logged.",
    ),
    (
        "webhooks",
        "Webhook delivery: which targets are allowed, timeouts, the retry schedule, workers.",
    ),
    (
        "fleet",
        "The device fleet (seed 002): heartbeats, signed device requests, key rotation, certificates.",
    ),
];

/// The whole default configuration as TOML, every key with its default value. With
/// `with_comments`, each key is preceded by what it does and its environment names.
///
/// The result loads back to [`Config::default`]:
/// ```
/// use qrlp_config::{default_toml, Config};
/// let dir = std::env::temp_dir().join(format!("qrlp-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("qrlp.toml");
/// std::fs::write(&path, default_toml(true)).unwrap();
/// assert_eq!(Config::load_with(Some(&path), |_| None, &[]).unwrap(), Config::default());
/// ```
pub fn default_toml(with_comments: bool) -> String {
    let tree = toml::Value::try_from(Config::default()).expect("the defaults serialize");
    let mut out = String::new();
    if with_comments {
        out.push_str(
            "# qrlp configuration, written by `qrlp config-init` with every default.\n\
             # Sources, later ones winning: defaults, this file (TOML, JSON or YAML),\n\
             # environment variables, command-line flags. Delete the keys you keep as they are.\n",
        );
    }
    let mut section = "";
    for doc in KEYS {
        let (sec, name) = doc.key.split_once('.').expect("keys are section.name");
        if sec != section {
            section = sec;
            if !out.is_empty() && !out.ends_with("\n\n") {
                out.push('\n');
            }
            if with_comments {
                if let Some((_, about)) = SECTIONS.iter().find(|(s, _)| *s == sec) {
                    let _ = writeln!(out, "# {about}");
                }
            }
            let _ = writeln!(out, "[{sec}]");
        }
        if with_comments {
            for line in doc.doc.lines() {
                let _ = writeln!(out, "# {line}");
            }
            let mut names = vec![env_var_name(doc.key)];
            names.extend(doc.aliases.iter().map(|a| a.to_string()));
            let _ = writeln!(out, "# Environment: {}", names.join(", "));
        }
        let value = &tree[sec][name];
        let _ = writeln!(out, "{name} = {value}");
        if with_comments {
            out.push('\n');
        }
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_parse_back_to_the_defaults() {
        for with_comments in [false, true] {
            let text = default_toml(with_comments);
            let parsed: Config = toml::from_str(&text).unwrap();
            assert_eq!(parsed, Config::default(), "{text}");
        }
    }

    #[test]
    fn every_section_is_documented() {
        let text = default_toml(true);
        for doc in KEYS {
            let (sec, _) = doc.key.split_once('.').unwrap();
            assert!(SECTIONS.iter().any(|(s, _)| *s == sec), "{sec}");
            assert!(text.contains(&env_var_name(doc.key)));
        }
        assert!(text.contains("# Environment: QRLP_SERVER_PORT, PORT\nport = 8000\n"));
        assert!(text.contains("default_error_correction = \"M\"\n"));
    }

    #[test]
    fn plain_form_has_no_comments() {
        let text = default_toml(false);
        assert!(!text.contains('#') || text.lines().all(|l| !l.starts_with('#')));
        assert!(text.starts_with("[server]\nhost = \"127.0.0.1\"\nport = 8000\n"));
    }
}
