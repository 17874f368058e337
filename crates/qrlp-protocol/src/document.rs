//! The frame document: the JSON object `qrlp generate --format json|both` writes beside a
//! code, and its check. A document shows more than the frame (the seed's `QRData` fields,
//! the QR version, the key); [`verify_document`] checks every field it shows against the
//! frame it carries, so a document can never say something its frame does not.
//!
//! ```json
//! {"format": "compact", "frame": "QL2:…", "qr_data": {…}, "version": 9, "ecc": "M",
//!  "key_id": "3097e2dee2cb4a34", "algorithm": "ed25519", "sequence_number": 1736609445123,
//!  "timestamp": "2025-01-11T15:30:45.123Z", "ttl_ms": 300000}
//! ```
//!
//! - `qr_data`: the frame itself for JSON frames; for compact frames what the frame says
//!   in the seed's shape ([`qrlp_live::CompactFrame::describe`]): the full identity hash is
//!   the signing key's and each block hash must end in the frame's anchor tag.
//! - `version`, `ecc`: a QR version and level at which the frame fits.
//! - `key_id`, `algorithm`: absent for an unsigned frame. `ttl_ms`: compact frames only
//!   (JSON frames carry no ttl).

use std::collections::BTreeMap;

use qrlp_live::{
    format_timestamp, CompactFrame, QrData, Reason, ReasonCode, Verdict, VerificationReport,
    Verifier, COMPACT_PREFIX,
};
use qrlp_qr::{EcLevel, Options, QrCode, SymbolKind, Version};
use serde_json::{json, Map, Value};

use crate::image::version_number;
use crate::LiveFrame;

/// The fields a document may have.
const FIELDS: [&str; 10] = [
    "format",
    "frame",
    "qr_data",
    "version",
    "ecc",
    "key_id",
    "algorithm",
    "sequence_number",
    "timestamp",
    "ttl_ms",
];

/// The document of a frame (see the module documentation).
pub fn document(frame: &LiveFrame) -> Value {
    let qr_data: Value = serde_json::from_str(&frame.qr_data.to_json()).unwrap_or(Value::Null);
    let mut doc = Map::new();
    doc.insert(
        "format".into(),
        json!(if frame.text.starts_with(COMPACT_PREFIX) {
            "compact"
        } else {
            "json"
        }),
    );
    doc.insert("frame".into(), json!(frame.text));
    doc.insert("qr_data".into(), qr_data);
    doc.insert("version".into(), json!(frame.qr_version));
    doc.insert("ecc".into(), json!(frame.ecc.to_string()));
    if let Some(k) = &frame.key_id {
        doc.insert("key_id".into(), json!(k));
    }
    if let Some(a) = frame.algorithm {
        doc.insert("algorithm".into(), json!(a));
    }
    doc.insert("sequence_number".into(), json!(frame.sequence));
    doc.insert(
        "timestamp".into(),
        json!(format_timestamp(frame.timestamp_ms)),
    );
    if frame.text.starts_with(COMPACT_PREFIX) {
        doc.insert("ttl_ms".into(), json!(frame.ttl_ms));
    }
    Value::Object(doc)
}

/// The frame a document carries: `Some` when `text` is a JSON object with a string
/// `frame` (a document), `None` otherwise (a frame itself, or anything else).
pub fn frame_of(text: &str) -> Option<String> {
    if !text.trim_start().starts_with('{') {
        return None;
    }
    match serde_json::from_str::<Value>(text).ok()? {
        Value::Object(m) => m.get("frame")?.as_str().map(str::to_owned),
        _ => None,
    }
}

/// Verifies a document: its frame with `verifier` at `now_ms`, then every field the
/// document shows against that frame. `None` when `text` is not a document
/// ([`frame_of`]). A valid frame in a document that disagrees with it, or that has a
/// field this check does not know, is invalid with reason `document_mismatch`.
pub fn verify_document(verifier: &Verifier, text: &str, now_ms: u64) -> Option<VerificationReport> {
    let frame = frame_of(text)?;
    let mut report = verifier.verify(&frame, now_ms);
    if !report.is_valid() {
        return Some(report);
    }
    let doc = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => m,
        _ => return Some(report),
    };
    if let Err(field_problem) = check(&doc, &frame, &report, verifier) {
        report.verdict = Verdict::Invalid;
        report.reason = Reason {
            code: ReasonCode::DocumentMismatch,
            message: format!("the document disagrees with its frame: {field_problem}"),
        };
    }
    Some(report)
}

/// The first field of `doc` that disagrees with the (valid) frame, as a message.
fn check(
    doc: &Map<String, Value>,
    frame: &str,
    report: &VerificationReport,
    verifier: &Verifier,
) -> Result<(), String> {
    if let Some(unknown) = doc.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(format!("unknown field {unknown:?}"));
    }
    let compact = frame.starts_with(COMPACT_PREFIX);
    let same = |field: &str, want: Option<Value>| -> Result<(), String> {
        if doc.get(field) == want.as_ref() {
            Ok(())
        } else {
            Err(format!(
                "{field} is {} but the frame says {}",
                doc.get(field).map_or("absent".into(), Value::to_string),
                want.map_or("nothing".into(), |v| v.to_string())
            ))
        }
    };
    same("format", report.format.map(|f| json!(f)))?;
    same("key_id", report.key_id.as_ref().map(|k| json!(k)))?;
    same("algorithm", report.algorithm.as_ref().map(|a| json!(a)))?;
    same("sequence_number", report.sequence_number.map(|s| json!(s)))?;
    same(
        "timestamp",
        report.timestamp_ms.map(|t| json!(format_timestamp(t))),
    )?;
    let decoded = if compact {
        Some(CompactFrame::decode(frame).map_err(|e| e.to_string())?)
    } else {
        None
    };
    same("ttl_ms", decoded.as_ref().map(|f| json!(f.payload.ttl_ms)))?;
    check_symbol(doc, frame)?;

    let shown = doc.get("qr_data").ok_or("qr_data is absent")?;
    let expected = match &decoded {
        None => QrData::from_json(frame).map_err(|e| e.to_string())?,
        Some(f) => {
            let hashes: BTreeMap<String, String> = shown
                .get("blockchain_hashes")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            if !f.anchors_agree(&hashes) {
                return Err("qr_data.blockchain_hashes do not end in the frame's anchors".into());
            }
            // The full identity hash: the signing key's (the verifier checked the frame's
            // prefix against it).
            let identity = report
                .key_id
                .as_deref()
                .and_then(|k| k.parse().ok())
                .and_then(|k| verifier.keys().get(&k))
                .map(|e| e.key.identity_hash().to_vec())
                .ok_or("qr_data.identity_hash cannot be checked without a verified key")?;
            f.describe(&identity, &hashes)
        }
    };
    let want: Value = serde_json::from_str(&expected.to_json()).map_err(|e| e.to_string())?;
    if shown != &want {
        let field = want
            .as_object()
            .zip(shown.as_object())
            .and_then(|(w, s)| {
                w.keys()
                    .chain(s.keys())
                    .find(|k| w.get(*k) != s.get(*k))
                    .cloned()
            })
            .unwrap_or_default();
        return Err(format!("qr_data.{field} differs from the frame's"));
    }
    Ok(())
}

/// `version` and `ecc`: a level and a version (1-40) at which the frame fits.
fn check_symbol(doc: &Map<String, Value>, frame: &str) -> Result<(), String> {
    let ecc: EcLevel = doc
        .get("ecc")
        .and_then(Value::as_str)
        .and_then(|e| e.parse().ok())
        .ok_or("ecc is not L, M, Q or H")?;
    let version = doc
        .get("version")
        .and_then(Value::as_u64)
        .and_then(|v| u8::try_from(v).ok())
        .and_then(Version::new)
        .ok_or("version is not 1 to 40")?;
    let opts = Options {
        ecc,
        symbol: SymbolKind::Qr {
            min: version,
            max: version,
        },
        boost_ecc: false,
        ..Options::default()
    };
    match QrCode::encode_text_with(frame, &opts) {
        Ok(code) if version_number(&code) == version.number() => Ok(()),
        _ => Err(format!(
            "the frame does not fit QR version {} at level {ecc}",
            version.number()
        )),
    }
}
