//! Request bodies and strict response parsing for the chain protocols, with no I/O.

use serde_json::{json, Value};

use crate::chain::ChainError;

/// Bitcoin Core JSON-RPC 1.0 request for `method` with no parameters.
pub(crate) fn bitcoin_request(id: u64, method: &str) -> Value {
    json!({ "jsonrpc": "1.0", "id": id, "method": method, "params": [] })
}

/// Ethereum JSON-RPC 2.0 request for the latest block, without transactions.
pub(crate) fn ethereum_request(id: u64) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "method": "eth_getBlockByNumber",
        "params": ["latest", false],
    })
}

fn parse_json(body: &[u8]) -> Result<Value, ChainError> {
    serde_json::from_slice(body).map_err(|e| ChainError::InvalidJson(e.to_string()))
}

/// The JSON-RPC error object in `body`, if the body is a JSON-RPC response carrying one.
pub(crate) fn rpc_error(body: &[u8]) -> Option<ChainError> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let err = v.as_object()?.get("error")?;
    if err.is_null() {
        return None;
    }
    Some(describe_rpc_error(err))
}

fn describe_rpc_error(err: &Value) -> ChainError {
    match err {
        Value::Object(o) => ChainError::Rpc {
            code: o.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: o
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| err.to_string(), |m| truncate(m, 200)),
        },
        other => ChainError::Rpc {
            code: 0,
            message: truncate(&other.to_string(), 200),
        },
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

/// The `result` of a JSON-RPC response to request `id`: an `error` object becomes
/// [`ChainError::Rpc`]; a missing result or a different id is a malformed response.
pub(crate) fn rpc_result(body: &[u8], id: u64) -> Result<Value, ChainError> {
    let v = parse_json(body)?;
    let Value::Object(mut o) = v else {
        return Err(ChainError::InvalidResponse(
            "JSON-RPC response is not an object".into(),
        ));
    };
    if let Some(err) = o.get("error") {
        if !err.is_null() {
            return Err(describe_rpc_error(err));
        }
    }
    if o.get("id").and_then(Value::as_u64) != Some(id) {
        return Err(ChainError::InvalidResponse(format!(
            "JSON-RPC response id {} does not match request id {id}",
            o.get("id")
                .map_or_else(|| "missing".into(), |v| truncate(&v.to_string(), 40))
        )));
    }
    match o.remove("result") {
        None | Some(Value::Null) => Err(ChainError::InvalidResponse(
            "JSON-RPC response has no result".into(),
        )),
        Some(r) => Ok(r),
    }
}

/// Parses exactly 64 hex digits (either case) into 32 bytes.
pub(crate) fn parse_hash(hex: &str) -> Result<[u8; 32], ChainError> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return Err(ChainError::InvalidHash(format!(
            "expected 64 hex digits, got {} characters",
            hex.chars().count()
        )));
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let (Some(hi), Some(lo)) = (hex_digit(pair[0]), hex_digit(pair[1])) else {
            return Err(ChainError::InvalidHash(
                "non-hex character in block hash".into(),
            ));
        };
        out[i] = (hi << 4) | lo;
    }
    Ok(out)
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// `getbestblockhash`'s result: a bare 64-hex-digit string.
pub(crate) fn bitcoin_hash(result: &Value) -> Result<[u8; 32], ChainError> {
    let s = result.as_str().ok_or_else(|| {
        ChainError::InvalidResponse("getbestblockhash result is not a string".into())
    })?;
    parse_hash(s)
}

/// `getblockcount`'s result: a non-negative integer.
pub(crate) fn bitcoin_height(result: &Value) -> Result<u64, ChainError> {
    result.as_u64().ok_or_else(|| {
        ChainError::InvalidResponse("getblockcount result is not a non-negative integer".into())
    })
}

/// `eth_getBlockByNumber`'s result: an object with `hash` ("0x" + 64 hex) and `number`
/// (a "0x" hex quantity).
pub(crate) fn ethereum_block(result: &Value) -> Result<([u8; 32], u64), ChainError> {
    let o = result
        .as_object()
        .ok_or_else(|| ChainError::InvalidResponse("block is not an object".into()))?;
    let hash = o
        .get("hash")
        .and_then(Value::as_str)
        .ok_or_else(|| ChainError::InvalidResponse("block has no string hash".into()))?;
    let hash = hash
        .strip_prefix("0x")
        .ok_or_else(|| ChainError::InvalidHash("Ethereum block hash lacks 0x".into()))?;
    let number = o
        .get("number")
        .and_then(Value::as_str)
        .ok_or_else(|| ChainError::InvalidResponse("block has no string number".into()))?;
    Ok((parse_hash(hash)?, parse_quantity(number)?))
}

/// An Ethereum hex quantity: "0x" then 1 to 16 hex digits.
fn parse_quantity(q: &str) -> Result<u64, ChainError> {
    let digits = q.strip_prefix("0x").unwrap_or("");
    if digits.is_empty() || digits.len() > 16 {
        return Err(ChainError::InvalidResponse(format!(
            "bad block number {:?}",
            truncate(q, 40)
        )));
    }
    u64::from_str_radix(digits, 16)
        .map_err(|_| ChainError::InvalidResponse(format!("bad block number {:?}", truncate(q, 40))))
}

/// A BlockCypher-style chain object: `hash` (64 hex, "0x" tolerated) and optional `height`.
pub(crate) fn blockcypher_head(body: &[u8]) -> Result<([u8; 32], Option<u64>), ChainError> {
    let v = parse_json(body)?;
    let o = v
        .as_object()
        .ok_or_else(|| ChainError::InvalidResponse("chain response is not an object".into()))?;
    if let Some(err) = o.get("error").and_then(Value::as_str) {
        return Err(ChainError::Rpc {
            code: 0,
            message: truncate(err, 200),
        });
    }
    let hash = o
        .get("hash")
        .and_then(Value::as_str)
        .ok_or_else(|| ChainError::InvalidResponse("chain response has no string hash".into()))?;
    let hash = parse_hash(hash.strip_prefix("0x").unwrap_or(hash))?;
    let height = match o.get("height") {
        None | Some(Value::Null) => None,
        Some(h) => Some(h.as_u64().ok_or_else(|| {
            ChainError::InvalidResponse("height is not a non-negative integer".into())
        })?),
    };
    Ok((hash, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "00000000000000000002a7c4c1e48d76c5a37902165a270156b7a8d72728a054";

    #[test]
    fn hashes() {
        let h = parse_hash(H).unwrap();
        assert_eq!(to_hex(&h), H);
        assert_eq!(parse_hash(&H.to_uppercase()).unwrap(), h);
        assert!(parse_hash(&H[1..]).is_err());
        assert!(parse_hash(&format!("{H}0")).is_err());
        assert!(parse_hash(&H.replace('a', "g")).is_err());
        // Multi-byte characters with 64 bytes must not be split.
        assert!(parse_hash(&"é".repeat(32)).is_err());
    }

    #[test]
    fn rpc_results() {
        let ok = format!(r#"{{"result":"{H}","error":null,"id":7}}"#);
        assert_eq!(rpc_result(ok.as_bytes(), 7).unwrap(), json!(H));
        assert!(matches!(
            rpc_result(ok.as_bytes(), 8),
            Err(ChainError::InvalidResponse(_))
        ));
        let err =
            br#"{"result":null,"error":{"code":-28,"message":"Loading block index..."},"id":7}"#;
        assert_eq!(
            rpc_result(err, 7),
            Err(ChainError::Rpc {
                code: -28,
                message: "Loading block index...".into()
            })
        );
        assert!(rpc_error(err).is_some());
        for garbage in [
            &b""[..],
            b"<html>",
            b"[]",
            b"null",
            br#"{"id":7}"#,
            b"\xff\xfe",
        ] {
            assert!(rpc_result(garbage, 7).is_err());
        }
    }

    #[test]
    fn ethereum_blocks() {
        let block = json!({"hash": format!("0x{}", &H), "number": "0x12a05f2"});
        assert_eq!(ethereum_block(&block).unwrap().1, 19_531_250);
        for bad in [
            json!({"hash": H, "number": "0x1"}),
            json!({"hash": format!("0x{H}"), "number": "12"}),
            json!({"hash": format!("0x{H}"), "number": "0x"}),
            json!({"hash": format!("0x{H}"), "number": "0x11111111111111111"}),
            json!({"hash": 5, "number": "0x1"}),
            json!([]),
        ] {
            assert!(ethereum_block(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn blockcypher_bodies() {
        let body = format!(r#"{{"name":"BTC.main","height":840000,"hash":"{H}"}}"#);
        let (h, height) = blockcypher_head(body.as_bytes()).unwrap();
        assert_eq!(to_hex(&h), H);
        assert_eq!(height, Some(840_000));
        assert!(blockcypher_head(br#"{"error":"Limits reached."}"#).is_err());
        assert!(blockcypher_head(br#"{"hash":"abc"}"#).is_err());
        assert!(blockcypher_head(format!(r#"{{"hash":"{H}","height":-1}}"#).as_bytes()).is_err());
    }
}
