//! `qrlp generate` and `qrlp verify` as a user runs them: files written, photos decoded,
//! tampering caught, exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A private data directory for one test, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("qrlp-live-cli-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// `qrlp` with this directory as its data directory and nothing from the caller's
    /// environment that could change its behaviour.
    fn qrlp(&self, args: &[&str]) -> Output {
        self.qrlp_with(&[], args)
    }

    /// As [`Dir::qrlp`], with `env` set.
    fn qrlp_with(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_qrlp"));
        for var in [
            "PORT",
            "REDIS_URL",
            "QRLP_CONFIG",
            "DATABASE_URL",
            "RUST_LOG",
            "QRLP_HMAC_SECRET",
            "QRLP_DATA_KEY_SECRET",
        ] {
            c.env_remove(var);
        }
        // No time or chain servers: the tests stay on this machine.
        c.env("QRLP_DATA_DIR", &self.0)
            .env("QRLP_TIME_TIME_SERVERS", "[]")
            .env("QRLP_BLOCKCHAIN_ENABLED_CHAINS", "[]")
            .envs(env.iter().copied())
            .args(args);
        c.output().unwrap()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Generates with `--format both` plus `extra`, checks both files, and verifies the PNG
/// (decoded by the command) and the JSON document. Returns the document.
fn both_then_verify_image(name: &str, extra: &[&str]) -> serde_json::Value {
    let dir = Dir::new(name);
    let base = dir.path("qr");
    let mut args = vec!["generate", "--format", "both", "--output", s(&base)];
    args.extend_from_slice(extra);
    let g = dir.qrlp(&args);
    assert_eq!(code(&g), 0, "generate {extra:?}: {}", stderr(&g));
    let png = dir.path("qr.png");
    let json = dir.path("qr.json");
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();

    let v = dir.qrlp(&["verify", "--image", s(&png)]);
    assert_eq!(
        code(&v),
        0,
        "verify {extra:?}: {} {}",
        stdout(&v),
        stderr(&v)
    );
    assert!(stdout(&v).starts_with("valid (key "), "{}", stdout(&v));

    let v = dir.qrlp(&["verify", "--file", s(&json)]);
    assert_eq!(code(&v), 0, "verify document {extra:?}: {}", stdout(&v));
    doc
}

#[test]
fn default_ed25519_compact_png_verifies() {
    let doc = both_then_verify_image("default", &[]);
    assert_eq!(doc["format"], "compact");
    assert_eq!(doc["algorithm"], "ed25519");
    assert!(doc["frame"].as_str().unwrap().starts_with("QL2:"));
    assert!(doc["version"].as_u64().unwrap() <= 10, "{doc}");
    assert_eq!(doc["ecc"], "M");
}

#[test]
fn fn_dsa_png_verifies() {
    let doc = both_then_verify_image("pq", &["--pq"]);
    assert_eq!(doc["algorithm"], "fn-dsa-512");
    assert!(doc["version"].as_u64().unwrap() <= 24, "{doc}");
}

#[test]
fn live_style_with_caption_png_verifies() {
    both_then_verify_image("caption", &["--include-text", "--style", "live"]);
}

#[test]
fn json_frame_png_verifies() {
    let doc = both_then_verify_image("jsonframe", &["--json-frame", "--ecc", "L"]);
    assert_eq!(doc["format"], "json");
    assert!(doc["frame"]
        .as_str()
        .unwrap()
        .starts_with("{\"timestamp\":"));
}

#[test]
fn identity_and_hmac_secret_are_private_and_sequence_increases() {
    let dir = Dir::new("identity");
    let seq = |dir: &Dir| {
        let g = dir.qrlp(&["generate", "--format", "json"]);
        assert_eq!(code(&g), 0, "{}", stderr(&g));
        let doc: serde_json::Value = serde_json::from_str(&stdout(&g)).unwrap();
        doc["sequence_number"].as_u64().unwrap()
    };
    let first = seq(&dir);
    assert!(seq(&dir) > first);
    // The protocol's sequence: it starts at the Unix time in ms, and no file keeps it.
    assert!(first > 1_700_000_000_000, "{first}");
    assert!(!dir.path("identity.seq").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for file in ["identity.json", "hmac.secret"] {
            let meta = std::fs::metadata(dir.path(file)).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{file}");
        }
    }
}

/// Changes the character at byte `at` of `text` to a different one of the same kind.
fn flip(text: &str, at: usize) -> String {
    let mut b = text.as_bytes().to_vec();
    b[at] = match b[at] {
        b'0' => b'1',
        b'9' => b'8',
        c if c.is_ascii_digit() => c + 1,
        b'A' => b'B',
        b'a' => b'b',
        c if c.is_ascii_alphabetic() => c - 1,
        _ => b'0',
    };
    String::from_utf8(b).unwrap()
}

#[test]
fn one_changed_character_in_a_json_frame_is_invalid() {
    let dir = Dir::new("tamper-json");
    let g = dir.qrlp(&["generate", "--json-frame", "--format", "json"]);
    assert_eq!(code(&g), 0, "{}", stderr(&g));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&g)).unwrap();
    let frame = doc["frame"].as_str().unwrap().to_string();
    let ok = dir.qrlp(&["verify", &frame]);
    assert_eq!(code(&ok), 0, "{}", stdout(&ok));

    let id_at = frame.find("\"identity_hash\":\"").unwrap() + 17;
    let ms_at = frame.find("Z\"").unwrap() - 1; // last millisecond digit
    for at in [id_at, id_at + 20, ms_at] {
        let bad = flip(&frame, at);
        assert_ne!(bad, frame);
        let v = dir.qrlp(&["verify", &bad]);
        assert_eq!(code(&v), 1, "{bad}: {}", stdout(&v));
        assert!(
            stdout(&v).starts_with("invalid: bad_signature: "),
            "{}",
            stdout(&v)
        );
    }
    // The document's qr_data of a JSON frame is the frame itself.
    let qr_data = doc["qr_data"].to_string();
    let v = dir.qrlp(&["verify", &qr_data]);
    assert_eq!(code(&v), 0, "{}", stdout(&v));
}

#[test]
fn one_changed_character_in_a_compact_frame_is_invalid() {
    let dir = Dir::new("tamper-compact");
    let g = dir.qrlp(&["generate", "--format", "json"]);
    assert_eq!(code(&g), 0, "{}", stderr(&g));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&g)).unwrap();
    let frame = doc["frame"].as_str().unwrap().to_string();
    for at in [4, frame.len() / 2, frame.len() - 1] {
        let bad = flip(&frame, at);
        let v = dir.qrlp(&["verify", &bad]);
        assert_eq!(code(&v), 1, "{bad}: {}", stdout(&v));
        assert!(stdout(&v).starts_with("invalid: "), "{}", stdout(&v));
    }
}

#[test]
fn another_identity_does_not_know_the_key() {
    let issuer = Dir::new("issuer");
    let other = Dir::new("other");
    let g = issuer.qrlp(&["generate", "--format", "json"]);
    assert_eq!(code(&g), 0, "{}", stderr(&g));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&g)).unwrap();
    let frame = doc["frame"].as_str().unwrap();
    assert_eq!(code(&other.qrlp(&["generate", "--format", "json"])), 0);
    let id = other.path("identity.json");
    let v = other.qrlp(&["verify", "--identity-file", s(&id), frame]);
    assert_eq!(code(&v), 1);
    assert!(
        stdout(&v).starts_with("invalid: unknown_key_id: "),
        "{}",
        stdout(&v)
    );
}

#[test]
fn an_exported_key_set_verifies_offline() {
    let dir = Dir::new("keyset");
    let g = dir.qrlp(&["generate", "--format", "json"]);
    assert_eq!(code(&g), 0, "{}", stderr(&g));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&g)).unwrap();
    let keys = dir.path("keys.json");
    let e = dir.qrlp(&["keys", "export", "--output", s(&keys)]);
    assert_eq!(code(&e), 0, "{}", stderr(&e));
    // Moving the identity away proves the key set alone is used.
    std::fs::remove_file(dir.path("identity.json")).unwrap();
    let v = dir.qrlp(&[
        "verify",
        "--keys",
        s(&keys),
        "--json",
        doc["frame"].as_str().unwrap(),
    ]);
    assert_eq!(code(&v), 0, "{}", stdout(&v));
    let report: serde_json::Value = serde_json::from_str(&stdout(&v)).unwrap();
    assert_eq!(report["verdict"], "valid");
    assert_eq!(report["identity_verified"], true);
}

#[test]
fn input_errors_exit_2() {
    let dir = Dir::new("inputs");
    // A PNG with no QR code in it.
    let blank = dir.path("blank.png");
    {
        let f = std::fs::File::create(&blank).unwrap();
        let mut enc = png::Encoder::new(std::io::BufWriter::new(f), 64, 64);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&[255; 64 * 64]).unwrap();
    }
    assert_eq!(code(&dir.qrlp(&["generate", "--format", "json"])), 0);
    let check = |args: &[&str], says: &str| {
        let v = dir.qrlp(args);
        assert_eq!(code(&v), 2, "{args:?}: {}", stdout(&v));
        assert!(stderr(&v).contains(says), "{args:?}: {}", stderr(&v));
    };
    check(&["verify", "--image", s(&blank)], "no readable QR code");
    check(
        &["verify", "--image", s(&dir.path("missing.png"))],
        "cannot read",
    );
    check(
        &["verify", "--file", s(&dir.path("missing.json"))],
        "cannot read",
    );
    let none = dir.path("none.json");
    check(
        &["verify", "--identity-file", s(&none), "QL2:X"],
        "no identity file",
    );
    assert!(!none.exists(), "verify must never create an identity");
}

#[test]
fn verbose_prints_every_layer() {
    let dir = Dir::new("verbose");
    let g = dir.qrlp(&["generate", "--format", "json"]);
    assert_eq!(code(&g), 0, "{}", stderr(&g));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&g)).unwrap();
    let v = dir.qrlp(&["verify", "-v", doc["frame"].as_str().unwrap()]);
    assert_eq!(code(&v), 0, "{}", stdout(&v));
    let out = stdout(&v);
    for key in [
        "valid_json",
        "identity_verified",
        "time_verified",
        "blockchain_verified",
        "signature_verified",
        "hmac_verified",
        "encrypted",
        "error",
        "key_id",
        "algorithm",
        "age",
        "replayed",
        "verdict",
        "reason",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(key)),
            "{key} missing in\n{out}"
        );
    }
    // A malformed frame is invalid (exit 1) with the parse error shown, not a crash.
    let v = dir.qrlp(&["verify", "-v", "{\"timestamp\":"]);
    assert_eq!(code(&v), 1);
    assert!(
        stdout(&v).contains("valid_json           false"),
        "{}",
        stdout(&v)
    );
}

const HMAC: (&str, &str) = ("QRLP_HMAC_SECRET", "a shared hmac secret of 32 bytes");
const DATA: (&str, &str) = ("QRLP_DATA_KEY_SECRET", "a shared data key secret, 32 byt");

fn report(o: &Output) -> serde_json::Value {
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

#[test]
fn a_configured_hmac_secret_is_carried_and_checked() {
    let dir = Dir::new("hmac");
    for format in [&["--compact"][..], &["--json-frame"][..]] {
        let mut args = vec!["generate", "--format", "json"];
        args.extend_from_slice(format);
        let g = dir.qrlp_with(&[HMAC], &args);
        assert_eq!(code(&g), 0, "{}", stderr(&g));
        let doc: serde_json::Value = serde_json::from_str(&stdout(&g)).unwrap();
        let frame = doc["frame"].as_str().unwrap().to_string();

        // Same secret: the HMAC layer verifies.
        let v = dir.qrlp_with(&[HMAC], &["verify", "--json", &frame]);
        assert_eq!(code(&v), 0, "{}", stdout(&v));
        assert_eq!(report(&v)["hmac_verified"], true);
        // Without the secret: valid, the layer is not checked.
        let v = dir.qrlp(&["verify", "--json", &frame]);
        assert_eq!(code(&v), 0, "{}", stdout(&v));
        assert_eq!(report(&v)["hmac_verified"], false);
        // Another secret under the same key name: refused.
        let other = ("QRLP_HMAC_SECRET", "another secret, also long enough");
        let v = dir.qrlp_with(&[other], &["verify", &frame]);
        assert_eq!(code(&v), 1, "{}", stdout(&v));
        assert!(
            stdout(&v).starts_with("invalid: hmac_mismatch"),
            "{}",
            stdout(&v)
        );
    }
    // A frame made without a configured secret carries an HMAC under the data
    // directory's secret: a verifier with another secret under that name refuses it.
    let g = dir.qrlp(&["generate", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&g)).unwrap();
    let v = dir.qrlp_with(&[HMAC], &["verify", doc["frame"].as_str().unwrap()]);
    assert_eq!(code(&v), 1, "{}", stdout(&v));
    assert!(
        stdout(&v).starts_with("invalid: hmac_mismatch"),
        "{}",
        stdout(&v)
    );
}

#[test]
fn encrypted_user_data_is_read_with_the_key_and_reported_without_it() {
    let dir = Dir::new("encrypt");
    let user = r#"{"seat":"14C","holder":"A. Person"}"#;
    let no_key = dir.qrlp(&[
        "generate",
        "--format",
        "json",
        "--encrypt",
        "--user-data",
        user,
    ]);
    assert_eq!(code(&no_key), 1);
    assert!(
        stderr(&no_key).contains("--encrypt needs a data key"),
        "{}",
        stderr(&no_key)
    );

    for format in ["--compact", "--json-frame"] {
        let g = dir.qrlp_with(
            &[DATA],
            &[
                "generate",
                "--format",
                "json",
                format,
                "--encrypt",
                "--user-data",
                user,
            ],
        );
        assert_eq!(code(&g), 0, "{}", stderr(&g));
        let doc: serde_json::Value = serde_json::from_str(&stdout(&g)).unwrap();
        let frame = doc["frame"].as_str().unwrap().to_string();
        // "A. Person" cannot occur by chance in base45, base64 or hex text.
        assert!(!frame.contains("A. Person"), "{frame}");

        let with_key = dir.qrlp_with(&[DATA], &["verify", "--json", &frame]);
        assert_eq!(code(&with_key), 0, "{}", stdout(&with_key));
        let r = report(&with_key);
        assert_eq!(r["encrypted"], true);
        assert_eq!(r["user_data"]["seat"], "14C");
        assert_eq!(r["user_data"]["holder"], "A. Person");

        let without = dir.qrlp(&["verify", "--json", &frame]);
        assert_eq!(code(&without), 0, "{}", stdout(&without));
        let r = report(&without);
        assert_eq!(r["encrypted"], true);
        assert!(r["user_data"].get("seat").is_none(), "{r}");
        assert_eq!(r["signature_verified"], true);
    }
}
