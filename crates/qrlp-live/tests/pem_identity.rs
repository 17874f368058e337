//! An Ed25519 private key in PKCS#8 PEM (as `openssl genpkey -algorithm ed25519` writes
//! it) is an identity file: it signs, is never rewritten, and cannot be rotated.

use qrlp_live::{KeyStore, SigningIdentity, Suite};

/// RFC 8410, section 10.3.
const RFC8410_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC
-----END PRIVATE KEY-----
";

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("qrlp-live-pem-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write_private(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    p
}

#[test]
fn a_pkcs8_pem_key_is_an_identity() {
    let dir = temp_dir("ok");
    let p = write_private(&dir, "my-key.pem", RFC8410_PEM);
    let mut store = KeyStore::load_or_generate(&p, false, 1_000).unwrap();
    assert!(store.is_external());
    assert_eq!(store.generations().len(), 1);
    // The secret of RFC 8410's example.
    let seed: [u8; 32] = [
        0xd4, 0xee, 0x72, 0xdb, 0xf9, 0x13, 0x58, 0x4a, 0xd5, 0xb6, 0xd8, 0xf1, 0xf7, 0x69, 0xf8,
        0xad, 0x3a, 0xfe, 0x7c, 0x28, 0xcb, 0xf1, 0xd4, 0xfb, 0xe0, 0x97, 0xa8, 0x8f, 0x44, 0x75,
        0x58, 0x42,
    ];
    let expected = SigningIdentity::from_ed25519_seed(seed);
    assert_eq!(
        store.current().key_id(Suite::Ed25519),
        expected.key_id(Suite::Ed25519)
    );
    assert!(store.rotate(2_000, 0, false).is_err());
    assert!(KeyStore::load_or_generate(&p, true, 1_000).is_err());
    assert_eq!(std::fs::read_to_string(&p).unwrap(), RFC8410_PEM);
}

#[test]
fn a_bad_pem_is_refused_with_a_reason() {
    let dir = temp_dir("bad");
    let p = write_private(
        &dir,
        "bad.pem",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    );
    let e = KeyStore::load(&p).unwrap_err().to_string();
    assert!(e.contains("PKCS#8"), "{e}");
}
