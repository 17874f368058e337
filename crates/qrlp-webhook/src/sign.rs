//! Signing secrets and signatures.
//!
//! A secret is shown to its owner once, in the Standard Webhooks form `whsec_<base64>`
//! (32 random bytes). Two signatures go with every delivery:
//! - `X-Webhook-Signature` (the seed's): lowercase hex of HMAC-SHA256 over the body, keyed
//!   with the secret **string as shown**, `whsec_…` included, because the seed's verifier
//!   passes the string it was given to `crypto.createHmac('sha256', secret)`.
//! - `webhook-signature` (Standard Webhooks): `v1,` + base64 of HMAC-SHA256 over
//!   `{webhook-id}.{webhook-timestamp}.{body}`, keyed with the base64-decoded bytes after
//!   `whsec_`. The id and timestamp inside the signature defend against replay.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// The prefix of every secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// A webhook signing secret. `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    text: String,
    key: Vec<u8>,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A secret string that is not `whsec_` + base64 of 24 to 64 bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a webhook secret is whsec_ followed by base64 of 24 to 64 bytes")]
pub struct BadSecret;

impl Secret {
    /// A secret from 32 random bytes (the caller's random source).
    pub fn from_random(bytes: [u8; 32]) -> Secret {
        Secret {
            text: format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes)),
            key: bytes.to_vec(),
        }
    }

    /// A secret from its text, `whsec_<base64>`.
    ///
    /// # Errors
    /// [`BadSecret`] for anything else.
    pub fn parse(text: &str) -> Result<Secret, BadSecret> {
        let b64 = text.strip_prefix(SECRET_PREFIX).ok_or(BadSecret)?;
        let key = STANDARD.decode(b64).map_err(|_| BadSecret)?;
        if !(24..=64).contains(&key.len()) {
            return Err(BadSecret);
        }
        Ok(Secret {
            text: text.to_string(),
            key,
        })
    }

    /// The secret as shown to its owner, `whsec_…`.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The seed's `X-Webhook-Signature` of `body`.
    pub fn seed_signature(&self, body: &str) -> String {
        hex::encode(hmac(self.text.as_bytes(), &[body.as_bytes()]))
    }

    /// The Standard Webhooks signature of `body` sent as message `id` at `timestamp`
    /// (Unix seconds): `v1,<base64>`.
    pub fn standard_signature(&self, id: &str, timestamp: i64, body: &str) -> String {
        let ts = timestamp.to_string();
        let mac = hmac(
            &self.key,
            &[id.as_bytes(), b".", ts.as_bytes(), b".", body.as_bytes()],
        );
        format!("v1,{}", STANDARD.encode(mac))
    }

    /// The four signature headers of one delivery attempt.
    pub fn sign(&self, id: &str, timestamp: i64, body: &str) -> SignedHeaders {
        SignedHeaders {
            webhook_id: id.to_string(),
            webhook_timestamp: timestamp.to_string(),
            webhook_signature: self.standard_signature(id, timestamp, body),
            x_webhook_signature: self.seed_signature(body),
        }
    }

    /// Checks Standard Webhooks headers as a receiver would: one of the space-separated
    /// `v1,` signatures matches and the timestamp is within `tolerance_secs` of `now`.
    pub fn verify_standard(
        &self,
        id: &str,
        timestamp: &str,
        signatures: &str,
        body: &str,
        now: i64,
        tolerance_secs: i64,
    ) -> bool {
        let Ok(ts) = timestamp.parse::<i64>() else {
            return false;
        };
        if (now - ts).abs() > tolerance_secs {
            return false;
        }
        let expected = self.standard_signature(id, ts, body);
        signatures
            .split(' ')
            .any(|s| bool::from(s.as_bytes().ct_eq(expected.as_bytes())))
    }
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    #[allow(clippy::expect_used)]
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// The signature headers of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `webhook-id`: the event's id, the same for every attempt (receivers deduplicate by it).
    pub webhook_id: String,
    /// `webhook-timestamp`: Unix seconds of this attempt.
    pub webhook_timestamp: String,
    /// `webhook-signature`: `v1,<base64>`.
    pub webhook_signature: String,
    /// `X-Webhook-Signature`: the seed's hex signature of the body.
    pub x_webhook_signature: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_text_round_trips() {
        let s = Secret::from_random([7; 32]);
        assert!(s.expose().starts_with("whsec_"));
        assert_eq!(Secret::parse(s.expose()).unwrap(), s);
        assert!(Secret::parse("whsec_short").is_err());
        assert!(Secret::parse("nope").is_err());
        assert!(!format!("{s:?}").contains("whsec_"));
    }

    /// The Standard Webhooks reference vector (from the specification's libraries).
    #[test]
    fn standard_webhooks_vector() {
        let s = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = s.standard_signature(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(s.verify_standard(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            &format!("v1,bogus {sig}"),
            r#"{"test": 2432232314}"#,
            1614265331,
            300
        ));
        assert!(!s.verify_standard(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            &sig,
            r#"{"test": 2432232315}"#,
            1614265331,
            300
        ));
        assert!(!s.verify_standard(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            &sig,
            r#"{"test": 2432232314}"#,
            1614265330 + 301,
            300
        ));
    }

    #[test]
    fn seed_signature_keys_with_the_shown_string() {
        let s = Secret::from_random([1; 32]);
        let body = r#"{"event":"scan.success"}"#;
        let expected = hex::encode(hmac(s.expose().as_bytes(), &[body.as_bytes()]));
        assert_eq!(s.seed_signature(body), expected);
        assert_eq!(expected.len(), 64);
        let h = s.sign("evt_1", 5, body);
        assert_eq!(h.webhook_timestamp, "5");
        assert_eq!(h.x_webhook_signature, expected);
    }
}
