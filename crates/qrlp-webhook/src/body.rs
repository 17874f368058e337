//! Webhook bodies: compact JSON that survives a JavaScript parse and re-serialization
//! byte for byte.
//!
//! The seed's verifier computes its HMAC over `JSON.stringify(req.body)` after Express has
//! parsed the body, not over the bytes received. So the bytes we sign must be exactly what
//! `JSON.stringify` writes for the parsed value:
//! - **key order**: JavaScript puts array-index keys (`"0"`, `"17"`, …) first in numeric
//!   order, then the other keys in the order they appeared. We write them in that order.
//! - **strings**: only `"`, `\`, and control characters are escaped: `\b \f \n \r \t`, the
//!   others as `\u00xx` in lowercase hex. Everything else, `/` and non-ASCII included, is
//!   written as it is.
//! - **numbers**: integers up to 2^53 as they are; anything else as JavaScript's
//!   `Number.prototype.toString` writes the double (`ryu-js`).
//! - no whitespace.

use serde_json::Value;

/// Largest integer a JavaScript number holds exactly.
const MAX_SAFE: u64 = (1 << 53) - 1;

/// An event payload: top-level fields in the order given (the seed's order), the first
/// being `event`. Nested objects are written with their keys in JavaScript order too.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    fields: Vec<(String, Value)>,
}

impl Payload {
    /// A payload whose first field is `"event": event`.
    pub fn new(event: &str) -> Payload {
        Payload {
            fields: vec![("event".to_string(), Value::String(event.to_string()))],
        }
    }

    /// Adds (or replaces, keeping its place) a field.
    #[must_use]
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Payload {
        let value = value.into();
        match self.fields.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((key.to_string(), value)),
        }
        self
    }

    /// A field's value.
    pub fn field(&self, key: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The event type (the `event` field).
    pub fn event(&self) -> &str {
        self.fields
            .first()
            .and_then(|(_, v)| v.as_str())
            .unwrap_or_default()
    }

    /// The body: compact JSON in the form `JSON.stringify` reproduces.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(256);
        write_object(
            &mut out,
            self.fields.iter().map(|(k, v)| (k.as_str(), v)).collect(),
        );
        out
    }
}

/// `value` as `JSON.stringify(JSON.parse(serde_json::to_string(value)))` writes it.
pub fn to_js_json(value: &Value) -> String {
    let mut out = String::with_capacity(128);
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => write_object(out, map.iter().map(|(k, v)| (k.as_str(), v)).collect()),
    }
}

/// Whether JavaScript treats `key` as an array index: the canonical decimal form of an
/// integer below 2^32 - 1.
fn array_index(key: &str) -> Option<u32> {
    if key.is_empty() || key.len() > 10 || !key.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if key.len() > 1 && key.starts_with('0') {
        return None;
    }
    key.parse::<u64>()
        .ok()
        .filter(|&n| n < u64::from(u32::MAX))
        .and_then(|n| u32::try_from(n).ok())
}

fn write_object(out: &mut String, fields: Vec<(&str, &Value)>) {
    let mut indexed: Vec<(u32, &str, &Value)> = fields
        .iter()
        .filter_map(|&(k, v)| array_index(k).map(|n| (n, k, v)))
        .collect();
    indexed.sort_by_key(|&(n, _, _)| n);
    let rest = fields.iter().filter(|(k, _)| array_index(k).is_none());
    out.push('{');
    let mut first = true;
    for (k, v) in indexed
        .iter()
        .map(|&(_, k, v)| (k, v))
        .chain(rest.map(|&(k, v)| (k, v)))
    {
        if !first {
            out.push(',');
        }
        first = false;
        write_string(out, k);
        out.push(':');
        write_value(out, v);
    }
    out.push('}');
}

fn write_number(out: &mut String, n: &serde_json::Number) {
    if let Some(u) = n.as_u64().filter(|&u| u <= MAX_SAFE) {
        out.push_str(&u.to_string());
    } else if let Some(i) = n.as_i64().filter(|&i| i.unsigned_abs() <= MAX_SAFE) {
        out.push_str(&i.to_string());
    } else {
        // Beyond 2^53 (or a fraction): what JavaScript keeps and prints of it.
        let f = n.as_f64().unwrap_or(0.0);
        if f == 0.0 {
            out.push('0'); // -0 too
        } else {
            let mut buf = ryu_js::Buffer::new();
            out.push_str(buf.format(f));
        }
    }
}

fn write_string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let b = c as u32 as usize;
                out.push_str("\\u00");
                out.push(char::from(HEX[b >> 4]));
                out.push(char::from(HEX[b & 15]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn seed_payload_in_seed_order() {
        let p = Payload::new("scan.success")
            .with("chainId", 42)
            .with("chainName", "Product Authentication Batch #42")
            .with("hashValue", "a3f5")
            .with("index", 499)
            .with("remaining", 499)
            .with("timestamp", "2025-01-15T10:30:00Z");
        assert_eq!(
            p.to_json(),
            r#"{"event":"scan.success","chainId":42,"chainName":"Product Authentication Batch #42","hashValue":"a3f5","index":499,"remaining":499,"timestamp":"2025-01-15T10:30:00Z"}"#
        );
        assert_eq!(p.event(), "scan.success");
    }

    #[test]
    fn javascript_key_order() {
        let p = Payload::new("x")
            .with("b", 1)
            .with("10", 2)
            .with("2", 3)
            .with("01", 4)
            .with("a", json!({"z": 1, "5": 2, "y": {"1": true}}));
        assert_eq!(
            p.to_json(),
            r#"{"2":3,"10":2,"event":"x","b":1,"01":4,"a":{"5":2,"y":{"1":true},"z":1}}"#
        );
        // 2^32 - 1 is not an array index.
        let p = Payload::new("x")
            .with("4294967295", 1)
            .with("4294967294", 2);
        assert_eq!(
            p.to_json(),
            r#"{"4294967294":2,"event":"x","4294967295":1}"#
        );
    }

    #[test]
    fn string_escapes_as_json_stringify() {
        let s = "q\"b\\s/\u{8}\u{c}\n\r\t\u{1}\u{1f}\u{7f}é\u{2028}😀";
        assert_eq!(
            to_js_json(&json!(s)),
            "\"q\\\"b\\\\s/\\b\\f\\n\\r\\t\\u0001\\u001f\u{7f}é\u{2028}😀\""
        );
    }

    #[test]
    fn numbers_as_javascript_prints_them() {
        for (v, s) in [
            (json!(0), "0"),
            (json!(-5), "-5"),
            (json!(9_007_199_254_740_991u64), "9007199254740991"),
            (json!(9_007_199_254_740_993u64), "9007199254740992"),
            (json!(u64::MAX), "18446744073709552000"),
            (json!(1.0), "1"),
            (json!(-0.0), "0"),
            (json!(0.1), "0.1"),
            (json!(1e21), "1e+21"),
            (json!(1.5e-7), "1.5e-7"),
        ] {
            assert_eq!(to_js_json(&v), s, "{v}");
        }
        assert_eq!(
            to_js_json(&json!([1, null, true, "a"])),
            r#"[1,null,true,"a"]"#
        );
    }

    #[test]
    fn replacing_keeps_the_place() {
        let p = Payload::new("e").with("a", 1).with("b", 2).with("a", 3);
        assert_eq!(p.to_json(), r#"{"event":"e","a":3,"b":2}"#);
    }
}
