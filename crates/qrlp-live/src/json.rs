//! The JSON frame: the seed's `QRData`, with its field names, compact and deterministic.

use std::collections::BTreeMap;
use std::fmt;

use rand_core::{CryptoRng, RngCore};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::crypto::{DataKey, HmacKey, SigningIdentity, Suite};
use crate::error::malformed;
use crate::jcs::{jcs, write_jcs, write_str};
use crate::text::{b64, format_timestamp, hex, parse_timestamp, unhex};
use crate::{FrameContent, FrameError, TimeEvidence, UserData};

pub(crate) const LABEL_SIG: &[u8] = b"QRLP/2 json signature\0";
pub(crate) const LABEL_HMAC: &[u8] = b"QRLP/2 json hmac\0";
pub(crate) const LABEL_AAD: &[u8] = b"QRLP/2 json user-data\0";

/// The `_hmac_algorithm` value.
pub const JSON_HMAC_ALGORITHM: &str = "sha256";
/// The field name listed in `_encrypted_fields` when user data is encrypted.
pub const ENCRYPTED_USER_DATA: &str = "user_data";

/// The seed's `QRData`: one JSON frame. Field names are the seed's; the `_`-prefixed
/// fields are the Rust fields without the underscore.
///
/// [`QrData::to_json`] writes the fields in declaration order, without whitespace, leaving
/// out `None`s; objects inside are written with sorted keys. [`QrData::from_json`] is
/// strict: unknown or repeated fields, repeated keys in nested objects, a timestamp that is
/// not ISO-8601 UTC or an identity hash that is not hex are errors.
///
/// ```
/// use qrlp_live::QrData;
/// let json = r#"{"timestamp":"2025-01-11T15:30:45.000Z","identity_hash":"00112233445566778899aabbccddeeff","blockchain_hashes":{},"time_server_verification":{},"sequence_number":7}"#;
/// let data = QrData::from_json(json)?;
/// assert_eq!(data.sequence_number, 7);
/// assert_eq!(data.to_json(), json);
/// assert!(QrData::from_json("{\"timestamp\":").is_err());
/// # Ok::<(), qrlp_live::FrameError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Default)]
pub struct QrData {
    /// ISO-8601 UTC time, e.g. `2025-01-11T15:30:45.123Z` (this generator writes ms).
    pub timestamp: String,
    /// Hex of the identity hash (this generator: the full SHA-256, 64 digits).
    pub identity_hash: String,
    /// Chain name → block hash as fetched.
    pub blockchain_hashes: BTreeMap<String, String>,
    /// Time evidence ([`TimeEvidence::to_json_object`]) or whatever a seed client put.
    pub time_server_verification: Map<String, Value>,
    /// User data; when encrypted, `{"ciphertext": b64, "nonce": b64}`.
    pub user_data: Option<Map<String, Value>>,
    /// Sequence number.
    pub sequence_number: u64,
    /// Base64 of the signature (hybrid: Ed25519's 64 bytes then FN-DSA's 666).
    pub digital_signature: Option<String>,
    /// Hex key id of the signing key.
    pub signing_key_id: Option<String>,
    /// Suite name: `ed25519`, `fn-dsa-512` or `ed25519+fn-dsa-512`.
    pub signature_algorithm: Option<String>,
    /// `_hmac`: hex of the full HMAC-SHA256 tag.
    pub hmac: Option<String>,
    /// `_hmac_key_id`: name of the HMAC key.
    pub hmac_key_id: Option<String>,
    /// `_hmac_algorithm`: `sha256`.
    pub hmac_algorithm: Option<String>,
    /// `_integrity_checked_at` (seed field; not written by this generator).
    pub integrity_checked_at: Option<String>,
    /// `_encrypted_fields`: `["user_data"]` when user data is encrypted.
    pub encrypted_fields: Option<Vec<String>>,
    /// `_encryption_key_id`: name of the data key.
    pub encryption_key_id: Option<String>,
    /// `_data_key_id` (seed field; not written by this generator).
    pub data_key_id: Option<String>,
}

/// Which fields a canonical view of the frame leaves out.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum View {
    /// Without `digital_signature`: what the signature covers (the HMAC tag included).
    Signed,
    /// Also without `_hmac`: what the HMAC covers.
    Hmac,
    /// Also without `user_data`: the encryption AAD.
    Aad,
}

impl QrData {
    /// The compact JSON text: fields in the seed's order, no whitespace, values in their
    /// RFC 8785 (JCS) form.
    pub fn to_json(&self) -> String {
        let mut o = String::with_capacity(512);
        o.push('{');
        for (i, (name, value)) in self.fields().into_iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            write_str(&mut o, name);
            o.push(':');
            // Every value either came out of a checked frame or was checked by the
            // generator (numbers exact), so JCS cannot fail here.
            let _ = write_jcs(&mut o, &value);
        }
        o.push('}');
        o
    }

    /// The fields present, in the seed's order, as JSON values.
    fn fields(&self) -> Vec<(&'static str, Value)> {
        let s = |v: &String| Value::String(v.clone());
        let mut f: Vec<(&'static str, Value)> = vec![
            ("timestamp", s(&self.timestamp)),
            ("identity_hash", s(&self.identity_hash)),
            (
                "blockchain_hashes",
                Value::Object(
                    self.blockchain_hashes
                        .iter()
                        .map(|(k, v)| (k.clone(), s(v)))
                        .collect(),
                ),
            ),
            (
                "time_server_verification",
                Value::Object(self.time_server_verification.clone()),
            ),
        ];
        if let Some(u) = &self.user_data {
            f.push(("user_data", Value::Object(u.clone())));
        }
        f.push(("sequence_number", Value::from(self.sequence_number)));
        let optional = [
            ("digital_signature", &self.digital_signature),
            ("signing_key_id", &self.signing_key_id),
            ("signature_algorithm", &self.signature_algorithm),
            ("_hmac", &self.hmac),
            ("_hmac_key_id", &self.hmac_key_id),
            ("_hmac_algorithm", &self.hmac_algorithm),
            ("_integrity_checked_at", &self.integrity_checked_at),
        ];
        for (name, v) in optional {
            if let Some(v) = v {
                f.push((name, s(v)));
            }
        }
        if let Some(list) = &self.encrypted_fields {
            f.push((
                "_encrypted_fields",
                Value::Array(list.iter().map(s).collect()),
            ));
        }
        for (name, v) in [
            ("_encryption_key_id", &self.encryption_key_id),
            ("_data_key_id", &self.data_key_id),
        ] {
            if let Some(v) = v {
                f.push((name, s(v)));
            }
        }
        f
    }

    /// The JCS text of the frame object without the fields `view` leaves out.
    pub(crate) fn view(&self, view: View) -> Result<String, FrameError> {
        let left_out: &[&str] = match view {
            View::Signed => &["digital_signature"],
            View::Hmac => &["digital_signature", "_hmac"],
            View::Aad => &["digital_signature", "_hmac", "user_data"],
        };
        let map: Map<String, Value> = self
            .fields()
            .into_iter()
            .filter(|(name, _)| !left_out.contains(name))
            .map(|(name, v)| (name.to_owned(), v))
            .collect();
        jcs(&Value::Object(map))
    }

    /// Parses a JSON frame; any malformed input is an error, never a panic.
    pub fn from_json(json: &str) -> Result<QrData, FrameError> {
        if json.len() > crate::MAX_FRAME_TEXT {
            return Err(malformed("frame text too long"));
        }
        crate::jcs::check_canonical_tokens(json)?;
        let StrictValue(value) =
            serde_json::from_str(json).map_err(|e| malformed(format!("JSON: {e}")))?;
        match &value {
            Value::Object(m) => {
                if let Some((k, _)) = m.iter().find(|(_, v)| v.is_null()) {
                    return Err(malformed(format!("{k} is null (leave it out)")));
                }
            }
            _ => return Err(malformed("a JSON frame is an object")),
        }
        let raw: Raw =
            serde_json::from_value(value).map_err(|e| malformed(format!("JSON: {e}")))?;
        let obj = |v: StrictValue, what: &str| match v.0 {
            Value::Object(m) => Ok(m),
            _ => Err(malformed(format!("{what} is not an object"))),
        };
        let mut blockchain_hashes = BTreeMap::new();
        for (k, v) in obj(raw.blockchain_hashes, "blockchain_hashes")? {
            match v {
                Value::String(s) => {
                    blockchain_hashes.insert(k, s);
                }
                _ => return Err(malformed("a blockchain hash is not a string")),
            }
        }
        let data = QrData {
            timestamp: raw.timestamp,
            identity_hash: raw.identity_hash,
            blockchain_hashes,
            time_server_verification: obj(
                raw.time_server_verification,
                "time_server_verification",
            )?,
            user_data: raw.user_data.map(|u| obj(u, "user_data")).transpose()?,
            sequence_number: raw.sequence_number,
            digital_signature: raw.digital_signature,
            signing_key_id: raw.signing_key_id,
            signature_algorithm: raw.signature_algorithm,
            hmac: raw.hmac,
            hmac_key_id: raw.hmac_key_id,
            hmac_algorithm: raw.hmac_algorithm,
            integrity_checked_at: raw.integrity_checked_at,
            encrypted_fields: raw.encrypted_fields,
            encryption_key_id: raw.encryption_key_id,
            data_key_id: raw.data_key_id,
        };
        if data.timestamp_ms().is_none() {
            return Err(malformed("timestamp is not ISO-8601 UTC (…Z)"));
        }
        let id_ok = unhex(&data.identity_hash).is_some_and(|b| (8..=64).contains(&b.len()));
        if !id_ok {
            return Err(malformed("identity_hash is not 8 to 64 bytes of hex"));
        }
        Ok(data)
    }

    /// The timestamp in ms since the Unix epoch, if it parses.
    pub fn timestamp_ms(&self) -> Option<u64> {
        parse_timestamp(&self.timestamp)
    }

    /// The time evidence, if `time_server_verification` holds this crate's summary.
    pub fn time_evidence(&self) -> Option<TimeEvidence> {
        TimeEvidence::from_json_object(&self.time_server_verification)
    }

    /// Whether user data is encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.encrypted_fields
            .as_ref()
            .is_some_and(|f| f.iter().any(|x| x == ENCRYPTED_USER_DATA))
    }

    /// The seed's `is_enhanced()`: signed or encrypted.
    pub fn is_enhanced(&self) -> bool {
        self.digital_signature.is_some() || self.is_encrypted()
    }

    /// The seed's `get_size_estimate()`: bytes of the JSON text.
    pub fn size_estimate(&self) -> usize {
        self.to_json().len()
    }
}

/// The message a JSON signature covers: label, suite id, the [`View::Signed`] text.
pub(crate) fn signed_message(suite: Suite, signed_view: &str) -> Vec<u8> {
    [LABEL_SIG, &[suite.id()], signed_view.as_bytes()].concat()
}

/// Builds and signs a JSON frame.
#[allow(clippy::too_many_arguments)]
pub(crate) fn seal<R: RngCore + CryptoRng>(
    content: &FrameContent,
    identity: &SigningIdentity,
    identity_hash: &[u8],
    suite: Option<Suite>,
    hmac: Option<&HmacKey>,
    encrypt: Option<&DataKey>,
    rng: &mut R,
) -> Result<QrData, FrameError> {
    content.check()?;
    let mut d = QrData {
        timestamp: format_timestamp(content.timestamp_ms),
        identity_hash: hex(identity_hash),
        blockchain_hashes: content.anchors.clone(),
        time_server_verification: content
            .time_evidence
            .map(|t| t.to_json_object())
            .unwrap_or_default(),
        user_data: content.user_data.clone(),
        sequence_number: content.sequence,
        ..QrData::default()
    };
    if let Some(s) = suite {
        let kid = identity.key_id(s).ok_or(FrameError::SuiteUnavailable(s))?;
        d.signing_key_id = Some(kid.to_string());
        d.signature_algorithm = Some(s.name().to_owned());
    }
    if let Some(k) = hmac {
        d.hmac_key_id = Some(k.id().to_owned());
        d.hmac_algorithm = Some(JSON_HMAC_ALGORITHM.to_owned());
    }
    if let Some((key, user)) = encrypt.and_then(|k| Some((k, d.user_data.take()?))) {
        d.encrypted_fields = Some(vec![ENCRYPTED_USER_DATA.to_owned()]);
        d.encryption_key_id = Some(key.id().to_owned());
        let aad = [LABEL_AAD, d.view(View::Aad)?.as_bytes()].concat();
        let plain = jcs(&Value::Object(user))?;
        let (nonce, ct) = key.seal(&aad, plain.as_bytes(), rng)?;
        let mut sealed = Map::new();
        sealed.insert("ciphertext".into(), Value::String(b64(&ct)));
        sealed.insert("nonce".into(), Value::String(b64(&nonce)));
        d.user_data = Some(sealed);
    }
    // Every value must have a JCS form (exact numbers) before anything is signed.
    if let Some(k) = hmac {
        d.hmac = Some(hex(&k.tag(LABEL_HMAC, d.view(View::Hmac)?.as_bytes())));
    }
    let signed = d.view(View::Signed)?;
    if let Some(s) = suite {
        let sigs = identity.sign(s, &signed_message(s, &signed), rng)?;
        d.digital_signature = Some(b64(&sigs.concat()));
    }
    Ok(d)
}

/// Decrypts JSON user data `{"ciphertext","nonce"}`; `None` on any failure.
pub(crate) fn open_user_data(d: &QrData, key: &DataKey) -> Option<UserData> {
    let sealed = d.user_data.as_ref()?;
    let get = |k: &str| sealed.get(k)?.as_str().and_then(crate::text::unb64);
    let (ct, nonce) = (get("ciphertext")?, get("nonce")?);
    let aad = [LABEL_AAD, d.view(View::Aad).ok()?.as_bytes()].concat();
    let plain = key.open(&aad, &nonce, &ct)?;
    crate::compact::parse_user_json(std::str::from_utf8(&plain).ok()?).ok()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    timestamp: String,
    identity_hash: String,
    blockchain_hashes: StrictValue,
    time_server_verification: StrictValue,
    #[serde(default)]
    user_data: Option<StrictValue>,
    sequence_number: u64,
    #[serde(default)]
    digital_signature: Option<String>,
    #[serde(default)]
    signing_key_id: Option<String>,
    #[serde(default)]
    signature_algorithm: Option<String>,
    #[serde(default, rename = "_hmac")]
    hmac: Option<String>,
    #[serde(default, rename = "_hmac_key_id")]
    hmac_key_id: Option<String>,
    #[serde(default, rename = "_hmac_algorithm")]
    hmac_algorithm: Option<String>,
    #[serde(default, rename = "_integrity_checked_at")]
    integrity_checked_at: Option<String>,
    #[serde(default, rename = "_encrypted_fields")]
    encrypted_fields: Option<Vec<String>>,
    #[serde(default, rename = "_encryption_key_id")]
    encryption_key_id: Option<String>,
    #[serde(default, rename = "_data_key_id")]
    data_key_id: Option<String>,
}

/// A JSON value whose objects have no repeated keys (serde_json alone keeps the last one,
/// so two readers could disagree about what was signed).
pub(crate) struct StrictValue(pub(crate) Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut v = Vec::new();
        while let Some(StrictValue(x)) = seq.next_element()? {
            v.push(x);
        }
        Ok(Value::Array(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut m = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            let StrictValue(v) = map.next_value()?;
            if m.insert(k, v).is_some() {
                return Err(de::Error::custom("repeated key in an object"));
            }
        }
        Ok(Value::Object(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_parsing() {
        let base = r#""identity_hash":"00112233445566778899aabbccddeeff","blockchain_hashes":{},"time_server_verification":{},"sequence_number":1"#;
        let ok = format!(r#"{{"timestamp":"2025-01-11T15:30:45Z",{base}}}"#);
        assert!(QrData::from_json(&ok).is_ok());
        for bad in [
            format!(r#"{{"timestamp":"2025-01-11T15:30:45Z",{base},"extra":1}}"#),
            format!(r#"{{"timestamp":"2025-01-11T15:30:45Z","timestamp":"2025-01-11T15:30:45Z",{base}}}"#),
            format!(r#"{{"timestamp":"yesterday",{base}}}"#),
            format!(r#"{{"timestamp":"2025-01-11T15:30:45Z",{base},"user_data":{{"a":1,"a":2}}}}"#),
            format!(r#"{{"timestamp":"2025-01-11T15:30:45Z",{base},"user_data":[1]}}"#),
            r#"{"timestamp":"2025-01-11T15:30:45Z","identity_hash":"00112233445566778899aabbccddeeff","blockchain_hashes":{},"time_server_verification":{},"sequence_number":-1}"#.to_owned(),
            r#"{"timestamp":"2025-01-11T15:30:45Z","identity_hash":"00112233445566778899aabbccddeeff","blockchain_hashes":{},"time_server_verification":{}}"#.to_owned(),
            format!(r#"{{"timestamp":"2025-01-11T15:30:45Z",{base},"user_data":null}}"#),
            format!(r#"{{"timestamp":"2025-01-11T15:30:45Z",{base},"user_data":{{"n":1.0}}}}"#),
            r#"{"timestamp":"2025-01-11T15:30:45Z","identity_hash":"xyz","blockchain_hashes":{},"time_server_verification":{}}"#.to_owned(),
            r#"{"timestamp":"2025-01-11T15:30:45Z","identity_hash":"00112233445566778899aabbccddeeff","blockchain_hashes":{"btc":1},"time_server_verification":{}}"#.to_owned(),
            "[]".to_owned(),
            "".to_owned(),
            "{".to_owned(),
        ] {
            assert!(QrData::from_json(&bad).is_err(), "{bad}");
        }
    }
}
