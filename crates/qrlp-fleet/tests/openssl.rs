//! The certificates verify with Debian's `openssl` (skipped, saying so, when it is absent;
//! fails under CI).

use std::process::Command;

use qrlp_fleet::ca::{ca_certificate, device_certificate, CaKey, DeviceCertRequest};
use qrlp_fleet::signing::DeviceKey;
use time::{Duration, OffsetDateTime};

fn openssl(args: &[&str]) -> Option<(bool, String)> {
    let out = Command::new("openssl").args(args).output().ok()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), text))
}

#[test]
fn device_certificate_verifies_against_the_ca() {
    if openssl(&["version"]).is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "openssl is required in CI"
        );
        eprintln!("skipped: openssl not installed");
        return;
    }
    let dir = std::env::temp_dir().join(format!("qrlp-fleet-openssl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let now = OffsetDateTime::now_utc() - Duration::minutes(1);
    let ca = CaKey::generate();
    let org = "0190f3b2-0000-7000-8000-000000000001";
    let ca_pem = ca_certificate(org, &ca, now).unwrap();
    let device = DeviceKey::generate();
    let cert = device_certificate(
        &ca,
        &DeviceCertRequest {
            org_id: org,
            device_id: "dev_abc123",
            device_public_key: device.public_key(),
            not_before: now,
            not_after: now + Duration::days(180),
        },
    )
    .unwrap();
    let ca_path = dir.join("ca.pem");
    let dev_path = dir.join("device.pem");
    std::fs::write(&ca_path, &ca_pem).unwrap();
    std::fs::write(&dev_path, &cert).unwrap();
    let (ok, text) = openssl(&[
        "verify",
        "-CAfile",
        ca_path.to_str().unwrap(),
        dev_path.to_str().unwrap(),
    ])
    .unwrap();
    assert!(ok, "{text}");
    assert!(text.contains(": OK"), "{text}");
    let (ok, text) =
        openssl(&["x509", "-noout", "-text", "-in", dev_path.to_str().unwrap()]).unwrap();
    assert!(ok, "{text}");
    assert!(text.contains("ED25519"), "{text}");
    assert!(
        text.contains("CN=dev_abc123") || text.contains("CN = dev_abc123"),
        "{text}"
    );
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    // the public key bytes appear in the dump, colon-separated
    let hexed: Vec<String> = device
        .public_key()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join("");
    assert!(flat.contains(&hexed.join(":")), "{text}");
    // a certificate from another CA does not verify
    let other = CaKey::generate();
    std::fs::write(&ca_path, ca_certificate(org, &other, now).unwrap()).unwrap();
    let (ok, _) = openssl(&[
        "verify",
        "-CAfile",
        ca_path.to_str().unwrap(),
        dev_path.to_str().unwrap(),
    ])
    .unwrap();
    assert!(!ok);
    std::fs::remove_dir_all(&dir).ok();
}
