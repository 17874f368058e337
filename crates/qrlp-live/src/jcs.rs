//! JSON canonical form (RFC 8785, JCS) and the canonical-token rule of JSON frames.
//!
//! JCS is what signatures, HMACs and encryption AADs of JSON frames cover, and how user
//! data is written in compact frames: no whitespace; object members sorted by the UTF-16
//! code units of their names; strings escaped as ECMAScript's `JSON.stringify` does (`"`,
//! `\`, control characters; `\b \t \n \f \r` short, others `\u00xx` in lowercase hex;
//! everything else as UTF-8); numbers as ECMAScript's `Number.prototype.toString` writes
//! the IEEE-754 double (`1e-7`, `100`, `1e+21`), formatted by `ryu-js`. Only numbers that
//! are exactly doubles are accepted, so two values never share a canonical form.
//!
//! The walker is written here because it is a few lines over `serde_json::Value`; the one
//! hard part, ECMAScript number formatting, is the `ryu-js` crate.

use serde_json::{Number, Value};

use crate::error::malformed;
use crate::FrameError;

/// The JCS text of `v`.
///
/// # Errors
/// [`FrameError::InvalidContent`] for an integer beyond 2^53 that JCS would rewrite.
pub(crate) fn jcs(v: &Value) -> Result<String, FrameError> {
    let mut s = String::new();
    write_jcs(&mut s, v)?;
    Ok(s)
}

/// Appends the JCS text of `v` to `out`.
pub(crate) fn write_jcs(out: &mut String, v: &Value) -> Result<(), FrameError> {
    match v {
        Value::Object(m) => {
            let mut members: Vec<(&String, &Value)> = m.iter().collect();
            members.sort_unstable_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push('{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, k);
                out.push(':');
                write_jcs(out, v)?;
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_jcs(out, v)?;
            }
            out.push(']');
        }
        Value::String(s) => write_str(out, s),
        Value::Number(n) => out.push_str(&es_number(n).ok_or_else(|| {
            FrameError::InvalidContent(format!(
                "the number {n} has no exact RFC 8785 form (integers beyond 2^53)"
            ))
        })?),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Null => out.push_str("null"),
    }
    Ok(())
}

/// A JSON string literal as JCS writes it (serde_json escapes exactly the same characters,
/// with the same short forms and lowercase `\u00xx`).
pub(crate) fn write_str(out: &mut String, s: &str) {
    // Serialising a &str cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

/// ECMAScript's text of a number, or `None` when JCS cannot carry it unchanged: an integer
/// whose decimal digits differ from the ECMAScript text of the nearest double (anything
/// past 2^53 that is not exactly a double with those digits).
pub(crate) fn es_number(n: &Number) -> Option<String> {
    let f = n.as_f64()?;
    if !f.is_finite() {
        return None;
    }
    let text = ryu_js::Buffer::new().format_finite(f).to_owned();
    if (n.is_u64() || n.is_i64()) && text != n.to_string() {
        return None;
    }
    Some(text)
}

/// Checks that every number and string escape in the JSON `text` is written in its one
/// canonical form: numbers exactly as [`es_number`] writes their value, and `\u` escapes
/// with lowercase hex digits. Other rules of the grammar are left to the parser.
///
/// Without this rule a transport could change one character of a signed frame (`1e-7` →
/// `1E-7`, `\u001f` → `\u001F`, a 17th significant digit) without changing any value, and
/// the changed text would still verify.
pub(crate) fn check_canonical_tokens(text: &str) -> Result<(), FrameError> {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        if b.get(i + 1) == Some(&b'u') {
                            let hex = b.get(i + 2..i + 6).unwrap_or(&[]);
                            let lower = hex.len() == 4
                                && hex.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
                            if !lower {
                                return Err(malformed(
                                    "a \\u escape is not four lowercase hex digits",
                                ));
                            }
                            i += 6;
                            continue;
                        }
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < b.len() && matches!(b[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    i += 1;
                }
                let token = &text[start..i];
                let canonical = serde_json::from_str::<Number>(token)
                    .ok()
                    .and_then(|n| es_number(&n));
                if canonical.as_deref() != Some(token) {
                    return Err(malformed(format!(
                        "the number {token} is not written in its canonical (RFC 8785) form"
                    )));
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(text: &str) -> String {
        jcs(&serde_json::from_str(text).unwrap_or(Value::Null)).unwrap_or_default()
    }

    #[test]
    fn rfc_8785_forms() {
        // Numbers as ECMAScript writes them (RFC 8785 appendix B samples).
        assert_eq!(
            j("[1e-7, 100, 1e21, 0.000001, 123456789012345680000, -0.0, 4.50, 2e-3, 1E30]"),
            "[1e-7,100,1e+21,0.000001,123456789012345680000,0,4.5,0.002,1e+30]"
        );
        // Members sorted by UTF-16 code units: U+E000 (one unit, 0xE000) after U+1F600
        // (surrogates 0xD83D 0xDE00), which UTF-8 byte order would put the other way.
        assert_eq!(
            j(r#"{"\ue000":1,"😀":2,"a":{"z":[1,{"y":2,"x":"é\n\u001f"}],"c":null},"B":true}"#),
            "{\"B\":true,\"a\":{\"c\":null,\"z\":[1,{\"x\":\"é\\n\\u001f\",\"y\":2}]},\"😀\":2,\"\u{e000}\":1}"
        );
        // Integers JCS would rewrite are refused: not doubles, or doubles ECMAScript
        // writes with other digits (2^53 + 4 is a double, written 9007199254740996, fine;
        // 2^60 is written 1152921504606847000).
        assert!(jcs(&serde_json::json!(9_007_199_254_740_993u64)).is_err());
        assert!(jcs(&serde_json::json!(u64::MAX)).is_err());
        assert!(jcs(&serde_json::json!(1u64 << 60)).is_err());
        assert!(jcs(&serde_json::json!(1_152_921_504_606_847_000u64)).is_ok());
        assert_eq!(
            jcs(&serde_json::json!(9_007_199_254_740_992u64))
                .ok()
                .as_deref(),
            Some("9007199254740992")
        );
    }

    #[test]
    fn canonical_tokens() {
        for ok in [
            r#"{"a":1,"b":-12,"c":1e-7,"d":"x\u001fy","e":[0,1.5,1e+21]}"#,
            r#"{"s":"-1e5 in a string is text","t":"\"\\"}"#,
            "{ \"spaced\" : 1 }",
        ] {
            assert!(check_canonical_tokens(ok).is_ok(), "{ok}");
        }
        for bad in [
            r#"{"a":1E-7}"#,
            r#"{"a":1.0}"#,
            r#"{"a":-0}"#,
            r#"{"a":1e2}"#,
            r#"{"a":9007199254740993}"#,
            r#"{"a":1152921504606846976}"#,
            r#"{"a":0.30000000000000005}"#,
            r#"{"a":"\u001F"}"#,
            r#"{"a":"\u00e"}"#,
        ] {
            assert!(check_canonical_tokens(bad).is_err(), "{bad}");
        }
    }
}
