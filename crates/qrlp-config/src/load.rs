//! Layering: defaults, then a file, then the environment.
//!
//! Each source is applied key by key onto a JSON tree of the defaults. Every key is checked
//! on its own as it is applied (the whole tree is deserialized again, which costs
//! microseconds for this many keys), so one bad value does not hide the next: all of them
//! are reported together, with the key and the source that set it.

use std::fmt;
use std::path::Path;

use serde_json::{Map, Value};

use crate::keys::{self, env_var_name, KEYS};
use crate::Config;

/// One thing wrong with the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The dotted key, e.g. `server.port`, or empty for a problem with a whole source.
    pub key: String,
    /// Where the value came from, e.g. `environment variable PORT` or `file qrlp.toml`;
    /// empty when it is the combination that is wrong.
    pub source: String,
    /// What is wrong, in words.
    pub message: String,
}

impl Problem {
    pub(crate) fn new(key: &str, message: impl Into<String>) -> Problem {
        Problem {
            key: key.to_string(),
            source: String::new(),
            message: message.into(),
        }
    }

    fn from_source(key: &str, source: &str, message: impl Into<String>) -> Problem {
        Problem {
            key: key.to_string(),
            source: source.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.key.is_empty(), self.source.is_empty()) {
            (false, false) => write!(f, "{}: {} (from {})", self.key, self.message, self.source),
            (false, true) => write!(f, "{}: {}", self.key, self.message),
            (true, false) => write!(f, "{}: {}", self.source, self.message),
            (true, true) => f.write_str(&self.message),
        }
    }
}

/// Every problem found while loading or validating, in the order found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// At least one.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "invalid configuration ({n} problem{}):",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

/// A value set on the command line, applied after the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Override {
    /// Dotted key, e.g. `server.port`.
    pub key: String,
    /// The value as typed; read like an environment value (numbers, booleans, and
    /// comma-separated lists where the key takes a list).
    pub value: String,
    /// What set it, for problem reports, e.g. `--port`.
    pub flag: String,
}

impl Override {
    /// `key` set to `value` by `flag`.
    pub fn new(key: &str, value: impl Into<String>, flag: &str) -> Override {
        Override {
            key: key.to_string(),
            value: value.into(),
            flag: flag.to_string(),
        }
    }
}

impl Config {
    /// Defaults, then `file` if given, then the process environment, then `overrides`
    /// (command-line flags). Validates the result.
    ///
    /// # Errors
    /// Every problem found: an unreadable or unparsable file, unknown keys, values of the
    /// wrong type, and everything [`Config::validate`] reports. A value that a later source
    /// replaces with a good one is not reported.
    pub fn load(file: Option<&Path>, overrides: &[Override]) -> Result<Config, ConfigError> {
        Config::load_with(file, |name| std::env::var(name).ok(), overrides)
    }

    /// [`Config::load`] with the environment given as a function, for tests and embedding.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn load_with(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        overrides: &[Override],
    ) -> Result<Config, ConfigError> {
        let mut layers = Layers::new();
        if let Some(path) = file {
            layers.apply_file(path);
        }
        layers.apply_env(&env);
        layers.apply_overrides(overrides);
        let Layers { tree, mut problems } = layers;
        let config: Config = serde_json::from_value(tree)
            .expect("every value was checked as it was applied, so the tree deserializes");
        if let Err(e) = config.validate() {
            // A key already reported as unreadable kept its default; no need to say more.
            for p in e.problems {
                if p.key.is_empty() || !problems.iter().any(|q| q.key == p.key) {
                    problems.push(p);
                }
            }
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError { problems })
        }
    }
}

/// The tree of values being built, and what went wrong so far.
struct Layers {
    tree: Value,
    problems: Vec<Problem>,
}

impl Layers {
    fn new() -> Layers {
        Layers {
            tree: serde_json::to_value(Config::default()).expect("the defaults serialize"),
            problems: Vec::new(),
        }
    }

    fn default_leaf(&self, key: &str) -> Option<&Value> {
        let (section, name) = key.split_once('.')?;
        self.tree.get(section)?.get(name)
    }

    /// Sets one key if the whole configuration still deserializes; records a problem if not.
    fn set(&mut self, key: &str, value: Value, source: &str) {
        let (section, name) = key.split_once('.').expect("keys are section.name");
        let slot = self
            .tree
            .get_mut(section)
            .and_then(|s| s.get_mut(name))
            .expect("only known keys are set");
        let old = std::mem::replace(slot, value);
        match serde_json::from_value::<Config>(self.tree.clone()) {
            // A good value from a later source replaces a bad one from an earlier source.
            Ok(_) => self.problems.retain(|p| p.key != key),
            Err(e) => {
                // A secret's value must not reach the message through the parser's error.
                let message = if keys::SECRET_KEYS.contains(&key) {
                    "invalid value (not shown: this key is secret); expected a string".to_string()
                } else if key == "blockchain.api_endpoints" {
                    // Endpoint URLs may carry passwords.
                    "invalid value (not shown: it may hold credentials); expected a table of chain = URL".to_string()
                } else {
                    e.to_string()
                };
                self.problems
                    .push(Problem::from_source(key, source, message));
                *self
                    .tree
                    .get_mut(section)
                    .and_then(|s| s.get_mut(name))
                    .expect("still there") = old;
            }
        }
    }

    fn apply_file(&mut self, path: &Path) {
        let source = format!("file {}", path.display());
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                self.problems.push(Problem::from_source(
                    "",
                    &source,
                    format!("cannot read: {e}"),
                ));
                return;
            }
        };
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let parsed: Result<Value, String> = match ext.as_str() {
            "toml" => toml::from_str(&text).map_err(|e| e.to_string()),
            "json" => serde_json::from_str(&text).map_err(|e| e.to_string()),
            "yaml" | "yml" => serde_norway::from_str(&text).map_err(|e| e.to_string()),
            _ => Err("unknown file type: name it .toml, .json, .yaml or .yml".to_string()),
        };
        let root = match parsed {
            Ok(Value::Object(root)) => root,
            // An empty YAML document is null: nothing to apply.
            Ok(Value::Null) => Map::new(),
            Ok(_) => {
                self.problems.push(Problem::from_source(
                    "",
                    &source,
                    "expected a table of sections at the top level",
                ));
                return;
            }
            Err(e) => {
                self.problems
                    .push(Problem::from_source("", &source, e.trim_end().to_string()));
                return;
            }
        };
        for (section, body) in root {
            if self.tree.get(&section).is_none() {
                self.problems
                    .push(Problem::from_source(&section, &source, "unknown section"));
                continue;
            }
            let Value::Object(entries) = body else {
                self.problems.push(Problem::from_source(
                    &section,
                    &source,
                    "expected a table of keys",
                ));
                continue;
            };
            for (name, value) in entries {
                let key = format!("{section}.{name}");
                if keys::find(&key).is_none() {
                    self.problems
                        .push(Problem::from_source(&key, &source, "unknown key"));
                    continue;
                }
                self.set(&key, value, &source);
            }
        }
    }

    fn apply_env(&mut self, env: &impl Fn(&str) -> Option<String>) {
        for doc in KEYS {
            let qrlp_name = env_var_name(doc.key);
            // Aliases first so that the QRLP_ name, applied last, wins.
            let names = doc
                .aliases
                .iter()
                .map(|a| a.to_string())
                .chain(std::iter::once(qrlp_name));
            for name in names {
                let Some(raw) = env(&name) else { continue };
                let source = format!("environment variable {name}");
                match self.env_value(doc.key, &raw) {
                    Ok(Some(value)) => self.set(doc.key, value, &source),
                    Ok(None) => {}
                    Err(message) => self
                        .problems
                        .push(Problem::from_source(doc.key, &source, message)),
                }
            }
        }
    }

    fn apply_overrides(&mut self, overrides: &[Override]) {
        for o in overrides {
            let source = format!("command-line flag {}", o.flag);
            if keys::find(&o.key).is_none() {
                self.problems
                    .push(Problem::from_source(&o.key, &source, "unknown key"));
                continue;
            }
            match self.env_value(&o.key, &o.value) {
                Ok(Some(value)) => self.set(&o.key, value, &source),
                Ok(None) => {}
                Err(message) => self
                    .problems
                    .push(Problem::from_source(&o.key, &source, message)),
            }
        }
    }

    /// Reads an environment string as the type of the key's default. `None` for an empty
    /// string where a string is not the type (an empty variable counts as unset). Maps are
    /// `name=value,name=value` (or a JSON object); a malformed one is an error whose message
    /// does not repeat the value (endpoint URLs may hold passwords).
    fn env_value(&self, key: &str, raw: &str) -> Result<Option<Value>, String> {
        let default = self.default_leaf(key).expect("KEYS names known keys");
        let trimmed = raw.trim();
        if let Value::Object(_) = default {
            if trimmed.is_empty() {
                return Ok(Some(Value::Object(Map::new())));
            }
            if trimmed.starts_with('{') {
                return serde_json::from_str::<Map<String, Value>>(trimmed)
                    .map(|m| Some(Value::Object(m)))
                    .map_err(|e| {
                        format!(
                            "not a JSON object (line {}, column {})",
                            e.line(),
                            e.column()
                        )
                    });
            }
            let mut map = Map::new();
            for (i, pair) in trimmed.split(',').map(str::trim).enumerate() {
                if pair.is_empty() {
                    continue;
                }
                match pair.split_once('=') {
                    Some((name, value)) if !name.trim().is_empty() => {
                        map.insert(
                            name.trim().to_string(),
                            Value::String(value.trim().to_string()),
                        );
                    }
                    _ => {
                        return Err(format!(
                            "item {} is not name=value: write name=value,name=value",
                            i + 1
                        ))
                    }
                }
            }
            return Ok(Some(Value::Object(map)));
        }
        Ok(Some(match default {
            Value::String(_) => Value::String(raw.to_string()),
            _ if trimmed.is_empty() => return Ok(None),
            Value::Bool(_) => match trimmed.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Value::Bool(true),
                "false" | "0" | "no" | "off" => Value::Bool(false),
                _ => Value::String(raw.to_string()),
            },
            Value::Number(_) => serde_json::from_str::<serde_json::Number>(trimmed)
                .map(Value::Number)
                .unwrap_or_else(|_| Value::String(raw.to_string())),
            Value::Array(_) if trimmed.starts_with('[') => {
                serde_json::from_str(trimmed).unwrap_or_else(|_| Value::String(raw.to_string()))
            }
            Value::Array(_) => Value::Array(
                trimmed
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| Value::String(s.to_string()))
                    .collect(),
            ),
            Value::Null | Value::Object(_) => Value::String(raw.to_string()),
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::{EcLevel, ImageFormat, LogFormat};

    fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        Config::load_with(file, env, &[])
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "qrlp-config-test-{}-{}",
            std::process::id(),
            name.replace('.', "-")
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn keys_table_matches_the_struct() {
        let tree = serde_json::to_value(Config::default()).unwrap();
        let mut from_struct = BTreeSet::new();
        for (section, body) in tree.as_object().unwrap() {
            for name in body.as_object().unwrap().keys() {
                from_struct.insert(format!("{section}.{name}"));
            }
        }
        let from_table: BTreeSet<String> = KEYS.iter().map(|k| k.key.to_string()).collect();
        assert_eq!(from_struct, from_table);
        assert_eq!(KEYS.len(), from_table.len(), "a key is listed twice");
    }

    #[test]
    fn no_configuration_gives_the_defaults() {
        let c = load(None, env_of(&[])).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.server.host, "127.0.0.1");
        assert_eq!(c.server.port, 8000);
        assert_eq!(c.server.body_limit_bytes, 65536);
        assert_eq!(c.qr.default_error_correction, EcLevel::M);
        assert_eq!(c.qr.default_box_size, 10);
        assert_eq!(c.qr.default_border, 1);
        assert_eq!(c.qr.default_fill_color.to_hex(), "#000000");
        assert_eq!(c.qr.default_back_color.to_hex(), "#ffffff");
        assert!(!c.cors.enabled);
        assert!(!c.redis.is_configured());
    }

    #[test]
    fn seed_environment_names_are_read() {
        let c = load(
            None,
            env_of(&[
                ("PORT", "9001"),
                ("REDIS_URL", "redis://127.0.0.1:6379"),
                ("QR_DEFAULT_ERROR_CORRECTION", "H"),
                ("QR_DEFAULT_BOX_SIZE", "12"),
                ("QR_DEFAULT_BORDER", "4"),
                ("QR_DEFAULT_FILL_COLOR", "#1a1a2e"),
                ("QR_DEFAULT_BACK_COLOR", "#EAEAEA"),
            ]),
        )
        .unwrap();
        assert_eq!(c.server.port, 9001);
        assert_eq!(c.redis.url, "redis://127.0.0.1:6379");
        assert_eq!(c.qr.default_error_correction, EcLevel::H);
        assert_eq!(c.qr.default_box_size, 12);
        assert_eq!(c.qr.default_border, 4);
        assert_eq!(c.qr.default_fill_color.to_hex(), "#1a1a2e");
        assert_eq!(c.qr.default_back_color.to_hex(), "#eaeaea");
    }

    #[test]
    fn qrlp_names_win_over_seed_names_and_files_lose_to_both() {
        let file = temp_file(
            "precedence.toml",
            "[server]\nport = 7000\nhost = \"0.0.0.0\"\n[log]\nformat = \"json\"\n",
        );
        let c = load(
            Some(&file),
            env_of(&[("PORT", "9001"), ("QRLP_SERVER_PORT", "9002")]),
        )
        .unwrap();
        assert_eq!(c.server.port, 9002);
        assert_eq!(c.server.host, "0.0.0.0");
        assert_eq!(c.log.format, LogFormat::Json);

        let c = load(Some(&file), env_of(&[("PORT", "9001")])).unwrap();
        assert_eq!(c.server.port, 9001);
        let c = load(Some(&file), env_of(&[])).unwrap();
        assert_eq!(c.server.port, 7000);
    }

    #[test]
    fn json_and_yaml_files_are_read() {
        let json = temp_file(
            "c.json",
            r#"{"qr": {"default_format": "svg", "default_box_size": 8}, "cors": {"enabled": true, "allowed_origins": ["*"]}}"#,
        );
        let c = load(Some(&json), env_of(&[])).unwrap();
        assert_eq!(c.qr.default_format, ImageFormat::Svg);
        assert_eq!(c.qr.default_box_size, 8);
        assert!(c.cors.enabled);

        let yaml = temp_file(
            "c.yaml",
            "server:\n  port: 8123\ncors:\n  enabled: true\n  allowed_origins:\n    - https://a.example\n",
        );
        let c = load(Some(&yaml), env_of(&[])).unwrap();
        assert_eq!(c.server.port, 8123);
        assert_eq!(c.cors.allowed_origins, ["https://a.example"]);

        let empty = temp_file("empty.yml", "");
        assert_eq!(load(Some(&empty), env_of(&[])).unwrap(), Config::default());
    }

    #[test]
    fn env_lists_bools_and_empty_values() {
        let c = load(
            None,
            env_of(&[
                ("QRLP_CORS_ENABLED", "yes"),
                (
                    "QRLP_CORS_ALLOWED_ORIGINS",
                    "https://a.example, https://b.example,",
                ),
                ("QRLP_SERVER_SHUTDOWN_TIMEOUT_SECS", ""),
            ]),
        )
        .unwrap();
        assert!(c.cors.enabled);
        assert_eq!(
            c.cors.allowed_origins,
            ["https://a.example", "https://b.example"]
        );
        assert_eq!(c.server.shutdown_timeout_secs, 30);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let file = temp_file(
            "bad.toml",
            "[server]\nprot = 1\nport = \"eighty\"\n[qr]\ndefault_box_size = 50\n[nope]\nx = 1\n",
        );
        let err = load(
            Some(&file),
            env_of(&[
                ("QR_DEFAULT_ERROR_CORRECTION", "X"),
                ("QRLP_QR_DEFAULT_FILL_COLOR", "red"),
                ("QRLP_LOG_FORMAT", "xml"),
                ("QRLP_METRICS_ENABLED", "maybe"),
                ("QRLP_SERVER_BODY_LIMIT_BYTES", "-5"),
                ("QRLP_CORS_ENABLED", "true"),
            ]),
        )
        .unwrap_err();
        let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
        for expected in [
            "server.prot",
            "server.port",
            "nope",
            "qr.default_box_size",
            "qr.default_error_correction",
            "qr.default_fill_color",
            "log.format",
            "metrics.enabled",
            "server.body_limit_bytes",
            "cors.allowed_origins",
        ] {
            assert!(keys.contains(&expected), "{expected} missing from {err}");
        }
        let text = err.to_string();
        assert!(
            text.starts_with("invalid configuration (10 problems):"),
            "{text}"
        );
        assert!(
            text.contains("qr.default_error_correction: invalid error correction level \"X\": choose L, M, Q or H (from environment variable QR_DEFAULT_ERROR_CORRECTION)"),
            "{text}"
        );
        assert!(
            text.contains("server.prot: unknown key (from file "),
            "{text}"
        );
    }

    #[test]
    fn unreadable_files_are_problems() {
        let err = load(Some(Path::new("/nonexistent/qrlp.toml")), env_of(&[])).unwrap_err();
        assert!(err.problems[0].message.starts_with("cannot read"), "{err}");
        let bad = temp_file("bad-syntax.toml", "[server\nport = 1");
        let err = load(Some(&bad), env_of(&[])).unwrap_err();
        assert_eq!(err.problems.len(), 1, "{err}");
        let ini = temp_file("c.ini", "port=1");
        let err = load(Some(&ini), env_of(&[])).unwrap_err();
        assert!(err.to_string().contains("unknown file type"), "{err}");
    }

    #[test]
    fn redis_password_never_appears_in_problems_or_debug() {
        let err = load(
            None,
            env_of(&[("REDIS_URL", "http://user:hunter2@cache:6379")]),
        )
        .unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let c = load(None, env_of(&[("REDIS_URL", "redis://:hunter2@cache")])).unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn flags_win_over_everything_and_clear_earlier_problems() {
        let file = temp_file("flags.toml", "[server]\nport = 7000\n");
        let overrides = [
            Override::new("server.port", "9100", "--port"),
            Override::new("server.host", "0.0.0.0", "--host"),
            Override::new("log.format", "json", "--log-format"),
        ];
        let c = Config::load_with(
            Some(&file),
            env_of(&[("PORT", "abc"), ("QRLP_SERVER_HOST", "::1")]),
            &overrides,
        )
        .unwrap();
        assert_eq!(c.server.port, 9100);
        assert_eq!(c.server.host, "0.0.0.0");
        assert_eq!(c.log.format, LogFormat::Json);

        let err = Config::load_with(
            None,
            env_of(&[]),
            &[
                Override::new("server.port", "99999", "--port"),
                Override::new("log.format", "xml", "--log-format"),
                Override::new("nope.x", "1", "--x"),
            ],
        )
        .unwrap_err();
        assert_eq!(err.problems.len(), 3, "{err}");
        assert!(
            err.to_string().contains("(from command-line flag --port)"),
            "{err}"
        );
    }
}
