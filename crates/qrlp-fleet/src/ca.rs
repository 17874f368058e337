//! The organization's device CA and the certificates it issues, through `rcgen`.
//!
//! The CA key is Ed25519 (ed25519-dalek); rcgen builds and encodes the certificates and
//! calls back into [`CaKey`] for the signature, so no other crypto backend is linked. The
//! CA's distinguished name depends only on the organization id (renaming the organization
//! does not change it), which lets the issuer of every device certificate be rebuilt from
//! the id alone.
//!
//! - CA: `CN=qrlp device CA, O=qrlp, OU=<org id>`, basicConstraints CA:TRUE pathlen:0,
//!   keyUsage keyCertSign + cRLSign + digitalSignature, 20 years.
//! - Device: `CN=<device id>, O=qrlp, OU=<org id>`, SAN `URI:urn:qrlp:device:<device id>`,
//!   keyUsage digitalSignature, extendedKeyUsage clientAuth, the device's Ed25519 key.

use ed25519_dalek::Signer as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyIdMethod, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber, SignatureAlgorithm,
    SigningKey, PKCS_ED25519,
};
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use crate::{random_bytes, sha256, FleetError};

/// How long a CA certificate is valid.
pub const CA_VALIDITY: Duration = Duration::days(20 * 365);

/// A CA's Ed25519 signing key, as rcgen's signer. `Debug` hides it.
pub struct CaKey(ed25519_dalek::SigningKey);

impl std::fmt::Debug for CaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CaKey(<redacted>)")
    }
}

impl CaKey {
    /// A new random CA key.
    pub fn generate() -> CaKey {
        let seed = Zeroizing::new(random_bytes::<32>());
        CaKey(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// The key of a 32-byte secret.
    ///
    /// # Errors
    /// When `secret` is not 32 bytes.
    pub fn from_secret(secret: &[u8]) -> Result<CaKey, FleetError> {
        let b = <[u8; 32]>::try_from(secret)
            .map_err(|_| FleetError::InvalidKey("a CA key is 32 bytes"))?;
        Ok(CaKey(ed25519_dalek::SigningKey::from_bytes(&b)))
    }

    /// The 32-byte secret, to be sealed at rest.
    pub fn secret(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }
}

impl PublicKeyData for CaKey {
    fn der_bytes(&self) -> &[u8] {
        self.0.as_ref().as_bytes()
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_ED25519
    }
}

impl SigningKey for CaKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        Ok(self.0.sign(msg).to_bytes().to_vec())
    }
}

/// A device's Ed25519 public key, as rcgen's subject key.
struct DevicePublic([u8; 32]);

impl PublicKeyData for DevicePublic {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_ED25519
    }
}

fn key_id(key: &impl PublicKeyData) -> KeyIdMethod {
    // RFC 7093 method 1: the leftmost 160 bits of the SHA-256 of the SubjectPublicKeyInfo.
    KeyIdMethod::PreSpecified(sha256(&key.subject_public_key_info())[..20].to_vec())
}

fn serial() -> SerialNumber {
    let mut b = random_bytes::<16>();
    b[0] &= 0x7f; // a positive INTEGER
    b[0] |= 0x01; // and no leading zero octet to strip
    SerialNumber::from_slice(&b)
}

fn ca_params(org_id: &str, ca: &CaKey, not_before: OffsetDateTime) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "qrlp device CA");
    dn.push(DnType::OrganizationName, "qrlp");
    dn.push(DnType::OrganizationalUnitName, org_id);
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.key_identifier_method = key_id(ca);
    p.not_before = not_before;
    p.not_after = not_before + CA_VALIDITY;
    p
}

/// A new CA certificate (PEM) for organization `org_id`, self-signed by `ca`.
///
/// # Errors
/// When rcgen cannot encode it.
pub fn ca_certificate(
    org_id: &str,
    ca: &CaKey,
    not_before: OffsetDateTime,
) -> Result<String, FleetError> {
    let mut p = ca_params(org_id, ca, not_before);
    p.serial_number = Some(serial());
    p.self_signed(ca)
        .map(|c| c.pem())
        .map_err(|e| FleetError::Certificate(e.to_string()))
}

/// What a device certificate says.
#[derive(Debug, Clone)]
pub struct DeviceCertRequest<'a> {
    /// The organization (the CA's).
    pub org_id: &'a str,
    /// `dev_…`.
    pub device_id: &'a str,
    /// The device's Ed25519 public key.
    pub device_public_key: [u8; 32],
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

/// Issues a device certificate (PEM) signed by the organization's CA key.
///
/// # Errors
/// When the device key is not a valid Ed25519 point or rcgen cannot encode.
pub fn device_certificate(ca: &CaKey, req: &DeviceCertRequest<'_>) -> Result<String, FleetError> {
    ed25519_dalek::VerifyingKey::from_bytes(&req.device_public_key)
        .map_err(|_| FleetError::InvalidKey("not a valid Ed25519 public key"))?;
    let subject = DevicePublic(req.device_public_key);
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, req.device_id);
    dn.push(DnType::OrganizationName, "qrlp");
    dn.push(DnType::OrganizationalUnitName, req.org_id);
    p.distinguished_name = dn;
    p.subject_alt_names = vec![SanType::URI(
        format!("urn:qrlp:device:{}", req.device_id)
            .try_into()
            .map_err(|e: rcgen::Error| FleetError::Certificate(e.to_string()))?,
    )];
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p.use_authority_key_identifier_extension = true;
    p.key_identifier_method = key_id(&subject);
    p.not_before = req.not_before;
    p.not_after = req.not_after;
    p.serial_number = Some(serial());
    let issuer_params = ca_params(req.org_id, ca, req.not_before);
    let issuer = Issuer::from_params(&issuer_params, ca);
    p.signed_by(&subject, &issuer)
        .map(|c| c.pem())
        .map_err(|e| FleetError::Certificate(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_are_pem() {
        let ca = CaKey::generate();
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let pem = ca_certificate("org-1", &ca, now).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let dev = crate::signing::DeviceKey::generate();
        let cert = device_certificate(
            &ca,
            &DeviceCertRequest {
                org_id: "org-1",
                device_id: "dev_abc",
                device_public_key: dev.public_key(),
                not_before: now,
                not_after: now + Duration::days(180),
            },
        )
        .unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_ne!(cert, pem);
    }
}
