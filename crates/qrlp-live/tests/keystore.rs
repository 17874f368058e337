//! The identity file adapter: creation mode, reload, refusal of readable files, rotation.

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::sync::Arc;

use qrlp_live::{
    FrameContent, Generator, KeySet, KeyStore, KeyStoreError, ReasonCode, Seal, Suite, Verifier,
    VerifierOptions,
};

const T0: u64 = 1_736_609_445_000;
const DAY: u64 = 86_400_000;

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("qrlp-live-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{e}"));
    d
}

fn frame(g: &Generator, ts: u64) -> String {
    let c = FrameContent {
        sequence: ts,
        timestamp_ms: ts,
        ttl_ms: 10_000,
        ..FrameContent::default()
    };
    g.compact_os(&c, Seal::default())
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn created_0600_reloaded_same_key() {
    let dir = temp_dir("create");
    let path = dir.join("identity.json");
    let a = KeyStore::load_or_generate(&path, false, T0).unwrap_or_else(|e| panic!("{e}"));
    let mode = std::fs::metadata(&path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0);
    assert_eq!(mode, 0o600);
    let b = KeyStore::load_or_generate(&path, false, T0 + 5).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        a.current().key_id(Suite::Ed25519),
        b.current().key_id(Suite::Ed25519)
    );
    assert_eq!(b.generations().len(), 1);
    // No temporary files left behind.
    assert_eq!(std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0), 1);
    // Asking for post-quantum keys adds them to the current generation, same Ed25519 key.
    let c = KeyStore::load_or_generate(&path, true, T0 + 6).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.current().supports(Suite::Hybrid));
    assert_eq!(
        c.current().key_id(Suite::Ed25519),
        a.current().key_id(Suite::Ed25519)
    );
    let d = KeyStore::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        d.current().key_id(Suite::Hybrid),
        c.current().key_id(Suite::Hybrid)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn readable_file_is_refused() {
    let dir = temp_dir("perm");
    let path = dir.join("identity.json");
    KeyStore::load_or_generate(&path, false, T0).unwrap_or_else(|e| panic!("{e}"));
    for mode in [0o644, 0o640, 0o604, 0o660] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("{e}"));
        match KeyStore::load(&path) {
            Err(e @ KeyStoreError::InsecurePermissions { .. }) => {
                assert!(e.to_string().contains("chmod 600"), "{e}");
            }
            other => panic!("mode {mode:o}: {other:?}"),
        }
        assert!(KeyStore::load_or_generate(&path, false, T0).is_err());
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(KeyStore::load(&path).is_ok());
    // Garbage is an error, not a panic.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&path, "{\"version\":1,\"generations\":[]}").unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        KeyStore::load(&path),
        Err(KeyStoreError::Invalid { .. })
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rotation_and_exported_key_set() {
    let dir = temp_dir("rotate");
    let path = dir.join("identity.json");
    let mut store = KeyStore::load_or_generate(&path, false, T0).unwrap_or_else(|e| panic!("{e}"));
    let old = Generator::new(store.current());
    let old_frame = frame(&old, T0 + DAY);

    // Rotate one day later with one hour of grace.
    store
        .rotate(T0 + DAY, 3_600_000, false)
        .unwrap_or_else(|e| panic!("{e}"));
    let new = Generator::new(store.current());
    assert_ne!(
        old.identity().key_id(Suite::Ed25519),
        new.identity().key_id(Suite::Ed25519)
    );
    let new_frame = frame(&new, T0 + DAY + 1000);

    // The exported key set, loaded offline, verifies both while the old key is in grace.
    let json = store.key_set().to_json();
    assert!(json.contains("\"not_after\""));
    let offline = KeySet::from_json(&json).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(offline.len(), 2);
    let v = Verifier::new(offline.clone(), VerifierOptions::default());
    assert!(v.verify(&old_frame, T0 + DAY + 5000).is_valid());
    assert!(v.verify(&new_frame, T0 + DAY + 5000).is_valid());
    // After the grace period the old key verifies nothing.
    let late = frame(&old, T0 + DAY + 3_600_001);
    let r = v.verify(&late, T0 + DAY + 3_600_002);
    assert_eq!(r.reason.code, ReasonCode::KeyExpired, "{}", r.to_json());
    // Reloading keeps both generations; the next rotation after grace drops the old one.
    let mut again = KeyStore::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.generations().len(), 2);
    assert_eq!(
        again.current().key_id(Suite::Ed25519),
        new.identity().key_id(Suite::Ed25519)
    );
    again
        .rotate(T0 + 3 * DAY, 0, false)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.generations().len(), 2);
    // A tampered key set (kid not matching its key) is refused.
    let bad = json
        .replacen("\"kid\": \"", "\"kid\": \"0", 1)
        .replacen("0\"", "\"", 0);
    assert!(KeySet::from_json(&bad).is_err());
    let _ = Arc::strong_count(&store.current());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shared_secret_file_is_created_private_once_and_reread() {
    let dir = temp_dir("secret");
    let path = dir.join("hmac.secret");
    assert!(qrlp_live::load_secret(&path)
        .unwrap_or_else(|e| panic!("{e}"))
        .is_none());
    // Several threads racing to create it all end up with the one secret on disk.
    let secrets: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    qrlp_live::load_or_generate_secret(&path)
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_else(|e| panic!("{e}"))
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    assert_eq!(secrets.len(), 4);
    assert!(secrets.iter().all(|s| s == &secrets[0]));
    assert_eq!(secrets[0].len(), 64);
    assert!(secrets[0].bytes().all(|c| c.is_ascii_hexdigit()));
    let mode = std::fs::metadata(&path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0);
    assert_eq!(mode, 0o600);
    let again = qrlp_live::load_or_generate_secret(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.as_str(), secrets[0]);
    // No temporary files left behind.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert_eq!(names.len(), 1, "{names:?}");
    // A readable secret is refused, like a readable identity.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        qrlp_live::load_secret(&path),
        Err(KeyStoreError::InsecurePermissions { .. })
    ));
    // A configured-style secret written by hand is read as its text.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&path, "a shared secret of 32 characters\n").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        qrlp_live::load_secret(&path)
            .unwrap_or_else(|e| panic!("{e}"))
            .map(|s| s.as_str().to_owned())
            .as_deref(),
        Some("a shared secret of 32 characters")
    );
    let _ = std::fs::remove_dir_all(&dir);
}
