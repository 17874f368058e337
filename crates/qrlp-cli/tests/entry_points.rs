//! The entry points agree: a frame made by `qrlp generate` verifies with the protocol
//! object, and a frame made by the protocol object verifies with `qrlp verify`, in both
//! formats and every suite, HMAC included (the two share the data directory's secret). A
//! generate document that disagrees with its frame is `document_mismatch`. Keys export,
//! list and rotate as a user runs them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use qrlp_config::{Config, FrameFormat, SignatureSuite};
use qrlp_protocol::QrLiveProtocol;
use serde_json::Value;

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("qrlp-entry-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn qrlp(&self, args: &[&str]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_qrlp"));
        for var in [
            "QRLP_CONFIG",
            "RUST_LOG",
            "QRLP_HMAC_SECRET",
            "QRLP_DATA_KEY_SECRET",
        ] {
            c.env_remove(var);
        }
        c.env("QRLP_DATA_DIR", &self.0)
            .env("QRLP_TIME_TIME_SERVERS", "[]")
            .env("QRLP_BLOCKCHAIN_ENABLED_CHAINS", "[]")
            .args(args);
        c.output().unwrap()
    }

    /// The configuration the protocol object gets: the same data directory, no network.
    fn config(&self, suite: SignatureSuite, format: FrameFormat) -> Config {
        let mut c = Config::default();
        c.storage.data_dir = self.0.display().to_string();
        c.time.time_servers = vec![];
        c.blockchain.enabled_chains = vec![];
        c.live.signature = suite;
        c.live.frame_format = format;
        c.live.ttl_secs = 300.0;
        c
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn out(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn report(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", out(o)))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const SUITES: [(SignatureSuite, &[&str]); 3] = [
    (SignatureSuite::Ed25519, &[]),
    (SignatureSuite::FnDsa, &["--pq"]),
    (SignatureSuite::Hybrid, &["--hybrid"]),
];
const FORMATS: [(FrameFormat, &[&str]); 2] = [
    (FrameFormat::Compact, &["--compact"]),
    (FrameFormat::Json, &["--json-frame"]),
];

#[test]
fn cli_frames_verify_with_the_protocol_object_and_back() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (suite, suite_flags) in SUITES {
        let dir = Dir::new(suite.as_str());
        for (format, format_flags) in FORMATS {
            let what = format!("{suite:?} {format:?}");
            // CLI → protocol object.
            let mut args = vec!["generate", "--format", "json"];
            args.extend_from_slice(suite_flags);
            args.extend_from_slice(format_flags);
            let g = dir.qrlp(&args);
            assert_eq!(g.status.code(), Some(0), "{what}: {}", out(&g));
            let doc: Value = serde_json::from_slice(&g.stdout).unwrap();
            let cli_frame = doc["frame"].as_str().unwrap().to_owned();
            let protocol = QrLiveProtocol::new(&dir.config(suite, format)).unwrap();
            let r = protocol.verify(&cli_frame);
            assert!(
                r.is_valid(),
                "{what}: CLI frame, protocol verify: {}",
                r.to_json()
            );
            assert!(
                r.hmac_verified && r.identity_verified && r.signature_verified,
                "{what}"
            );

            // Protocol object → CLI.
            let (frame, png) = runtime
                .block_on(protocol.generate_single(None, true, false))
                .unwrap();
            assert!(png.starts_with(b"\x89PNG"));
            let v = dir.qrlp(&["verify", "--json", &frame.text]);
            assert_eq!(
                v.status.code(),
                Some(0),
                "{what}: protocol frame, CLI verify: {}",
                out(&v)
            );
            let r = report(&v);
            assert_eq!(r["hmac_verified"], true, "{what}");
            assert_eq!(r["identity_verified"], true, "{what}");
            assert_eq!(r["algorithm"], doc["algorithm"], "{what}");
            // The identity hash is the same definition on both sides.
            assert_eq!(
                frame.qr_data.identity_hash, doc["qr_data"]["identity_hash"],
                "{what}"
            );
            // The protocol's PNG, decoded by the CLI, verifies too.
            let png_path = dir.path("protocol.png");
            std::fs::write(&png_path, &png).unwrap();
            let v = dir.qrlp(&["verify", "--image", s(&png_path)]);
            assert_eq!(v.status.code(), Some(0), "{what}: {}", out(&v));
        }
    }
}

#[test]
fn hmac_secret_is_shared_through_the_data_directory() {
    let issuer = Dir::new("hmac-issuer");
    let g = issuer.qrlp(&["generate", "--format", "json"]);
    assert_eq!(g.status.code(), Some(0), "{}", out(&g));
    let doc: Value = serde_json::from_slice(&g.stdout).unwrap();
    let frame = doc["frame"].as_str().unwrap();
    assert!(issuer.path("hmac.secret").exists());
    let v = issuer.qrlp(&["verify", "--json", frame]);
    assert_eq!(report(&v)["hmac_verified"], true, "{}", out(&v));
    // Another machine with only the public keys: valid, HMAC not checked.
    let keys = issuer.path("keys.json");
    assert_eq!(
        issuer
            .qrlp(&["keys", "export", "-o", s(&keys)])
            .status
            .code(),
        Some(0)
    );
    let other = Dir::new("hmac-other");
    let v = other.qrlp(&["verify", "--json", "--keys", s(&keys), frame]);
    assert_eq!(v.status.code(), Some(0), "{}", out(&v));
    assert_eq!(report(&v)["hmac_verified"], false);
    assert!(
        !other.path("hmac.secret").exists(),
        "verify never creates a secret"
    );
    // With a different secret file under the same key name: refused.
    std::fs::copy(issuer.path("hmac.secret"), other.path("hmac.secret")).unwrap();
    let v = other.qrlp(&["verify", "--json", "--keys", s(&keys), frame]);
    assert_eq!(report(&v)["hmac_verified"], true, "{}", out(&v));
    std::fs::write(
        other.path("hmac.secret"),
        "0123456789abcdef0123456789abcdef\n",
    )
    .unwrap();
    let v = other.qrlp(&["verify", "--keys", s(&keys), frame]);
    assert_eq!(v.status.code(), Some(1), "{}", out(&v));
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("invalid: hmac_mismatch"));
}

/// Writes `doc` changed by `change` and returns `qrlp verify --file`'s output.
fn verify_changed(dir: &Dir, doc: &Value, change: impl FnOnce(&mut Value)) -> Output {
    let mut d = doc.clone();
    change(&mut d);
    let path = dir.path("changed.json");
    std::fs::write(&path, serde_json::to_string_pretty(&d).unwrap()).unwrap();
    dir.qrlp(&["verify", "--file", s(&path)])
}

#[test]
fn a_document_that_disagrees_with_its_frame_is_document_mismatch() {
    let dir = Dir::new("document");
    for (format, flags) in FORMATS {
        let mut args = vec!["generate", "--format", "both", "-o"];
        let base = dir.path(&format!("{format:?}"));
        args.push(s(&base));
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--user-data", r#"{"user_text":"hello"}"#]);
        let g = dir.qrlp(&args);
        assert_eq!(g.status.code(), Some(0), "{}", out(&g));
        let json_path = PathBuf::from(format!("{}.json", base.display()));
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
        let ok = dir.qrlp(&["verify", "--file", s(&json_path)]);
        assert_eq!(ok.status.code(), Some(0), "{format:?}: {}", out(&ok));

        type Change = Box<dyn Fn(&mut Value)>;
        let changes: Vec<(&str, Change)> = vec![
            (
                "qr_data.user_data",
                Box::new(|d| d["qr_data"]["user_data"]["user_text"] = "hellp".into()),
            ),
            (
                "qr_data.sequence_number",
                Box::new(|d| {
                    let n = d["qr_data"]["sequence_number"].as_u64().unwrap();
                    d["qr_data"]["sequence_number"] = (n + 1).into();
                }),
            ),
            (
                "qr_data.identity_hash",
                Box::new(|d| d["qr_data"]["identity_hash"] = "00".repeat(32).into()),
            ),
            (
                "qr_data.signature_algorithm",
                Box::new(|d| d["qr_data"]["signature_algorithm"] = "fn-dsa-512".into()),
            ),
            (
                "qr_data extra field",
                Box::new(|d| d["qr_data"]["_data_key_id"] = "x".into()),
            ),
            (
                "qr_data removed field",
                Box::new(|d| {
                    d["qr_data"].as_object_mut().unwrap().remove("_hmac_key_id");
                }),
            ),
            (
                "sequence_number",
                Box::new(|d| {
                    let n = d["sequence_number"].as_u64().unwrap();
                    d["sequence_number"] = (n - 1).into();
                }),
            ),
            (
                "timestamp",
                Box::new(|d| d["timestamp"] = "2020-01-01T00:00:00.000Z".into()),
            ),
            (
                "key_id",
                Box::new(|d| d["key_id"] = "0011223344556677".into()),
            ),
            ("algorithm", Box::new(|d| d["algorithm"] = "hybrid".into())),
            (
                "format",
                Box::new(|d| {
                    let other = if d["format"] == "json" {
                        "compact"
                    } else {
                        "json"
                    };
                    d["format"] = other.into();
                }),
            ),
            ("version", Box::new(|d| d["version"] = 1.into())),
            ("ecc", Box::new(|d| d["ecc"] = "X".into())),
            ("ttl_ms", Box::new(|d| d["ttl_ms"] = 1.into())),
            ("unknown field", Box::new(|d| d["note"] = "trust me".into())),
        ];
        for (what, change) in changes {
            let v = verify_changed(&dir, &doc, change);
            assert_eq!(v.status.code(), Some(1), "{format:?} {what}: {}", out(&v));
            let text = String::from_utf8_lossy(&v.stdout);
            assert!(
                text.starts_with("invalid: document_mismatch"),
                "{format:?} {what}: {}",
                out(&v)
            );
        }
        // The qr_data of a compact document is a description, not a frame: it names a key
        // but carries no signature, so on its own it never verifies.
        if format == FrameFormat::Compact {
            let v = dir.qrlp(&["verify", &doc["qr_data"].to_string()]);
            assert_eq!(v.status.code(), Some(1), "{}", out(&v));
            assert!(
                String::from_utf8_lossy(&v.stdout).starts_with("invalid: bad_signature"),
                "{}",
                out(&v)
            );
        }
        // A changed frame inside the document fails on its own reason first.
        let v = verify_changed(&dir, &doc, |d| {
            let f = d["frame"].as_str().unwrap().replacen(
                "\"sequence_number\":1",
                "\"sequence_number\":2",
                1,
            );
            let f = if f == d["frame"].as_str().unwrap() {
                let mut b = f.into_bytes();
                let i = b.len() - 2;
                b[i] = if b[i] == b'A' { b'B' } else { b'A' };
                String::from_utf8(b).unwrap()
            } else {
                f
            };
            d["frame"] = f.into();
        });
        assert_eq!(v.status.code(), Some(1), "{}", out(&v));
        assert!(!String::from_utf8_lossy(&v.stdout).contains("document_mismatch"));
    }
}

#[test]
fn keys_export_list_rotate() {
    let dir = Dir::new("keys");
    let none = dir.qrlp(&["keys", "list"]);
    assert_ne!(none.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no identity file"));
    assert!(!dir.path("identity.json").exists());

    let g = dir.qrlp(&["generate", "--format", "json", "--hybrid"]);
    assert_eq!(g.status.code(), Some(0), "{}", out(&g));
    let old: Value = serde_json::from_slice(&g.stdout).unwrap();
    let l = dir.qrlp(&["keys", "list"]);
    let listing = String::from_utf8_lossy(&l.stdout).into_owned();
    assert_eq!(listing.lines().count(), 2, "{listing}");
    assert!(
        listing.contains(old["key_id"].as_str().unwrap()),
        "{listing}"
    );

    let exported = dir.qrlp(&["keys", "export"]);
    let set: Value = serde_json::from_slice(&exported.stdout).unwrap();
    assert_eq!(set["keys"].as_array().unwrap().len(), 3, "{set}");

    let r = dir.qrlp(&["keys", "rotate", "--grace", "3600"]);
    assert_eq!(r.status.code(), Some(0), "{}", out(&r));
    let listing = String::from_utf8_lossy(&r.stdout).into_owned();
    assert_eq!(listing.lines().count(), 3, "{listing}");
    assert!(listing.contains("2 current"), "{listing}");
    let keys = dir.path("keys.json");
    assert_eq!(
        dir.qrlp(&["keys", "export", "--output", s(&keys)])
            .status
            .code(),
        Some(0)
    );
    let set: Value = serde_json::from_str(&std::fs::read_to_string(&keys).unwrap()).unwrap();
    assert_eq!(
        set["keys"].as_array().unwrap().len(),
        6,
        "both generations, hybrid kept"
    );
    // The old frame still verifies during the grace period; a new frame with the new key.
    let g = dir.qrlp(&["generate", "--format", "json", "--hybrid"]);
    let new: Value = serde_json::from_slice(&g.stdout).unwrap();
    assert_ne!(new["key_id"], old["key_id"]);
    std::fs::remove_file(dir.path("identity.json")).unwrap();
    for doc in [&old, &new] {
        let v = dir.qrlp(&["verify", "--keys", s(&keys), doc["frame"].as_str().unwrap()]);
        assert_eq!(v.status.code(), Some(0), "{}", out(&v));
    }
}
