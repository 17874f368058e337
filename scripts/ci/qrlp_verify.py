#!/usr/bin/env python3
"""A second verifier of QR Live Protocol frames (version 2), written from docs/qrlp-frames.md.

It follows the specification, not the Rust code: base45 (RFC 9285), CBOR through `cbor2`
with the canonical form checked by re-encoding, JSON with the canonical-token rule and
RFC 8785 (JCS) through `rfc8785`, Ed25519, HKDF, HMAC and ChaCha20-Poly1305 through
`cryptography`, FN-DSA-512 through `py-fn-dsa` (Python bindings of c-fn-dsa, the C version
of the FN-DSA implementation the specification names). It covers every suite.

Layers: signature, HMAC, time, identity and encryption (§5 items 1-4 and 6). It does not
judge anchors or time evidence (off by default) and keeps no replay cache (a one-shot
verifier, like `qrlp verify`).

    qrlp_verify.py --keys KEYSET.json [--hmac-secret S [--hmac-key-name N]]
                   [--data-secret S [--data-key-name N]] [--now MS] FRAME...

prints one JSON line per frame: {"reason": code, "valid": bool, "user_data": ...}.
"""

import argparse
import base64
import binascii
import hashlib
import hmac as hmac_mod
import json
import re
import sys
import time

import cbor2
import py_fn_dsa
import rfc8785
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# §1: suites.
SUITES = {  # id -> (name, signature lengths)
    1: ("ed25519", (64,)),
    2: ("fn-dsa-512", (666,)),
    3: ("ed25519+fn-dsa-512", (64, 666)),
}
SUITE_BY_NAME = {name: sid for sid, (name, _) in SUITES.items()}
KEY_LENGTHS = {"ed25519": 32, "fn-dsa-512": 897, "ed25519+fn-dsa-512": 929}

MAX_TEXT = 8192
MAX_TIMESTAMP = 253402300799999
MAX_TTL = 86_400_000
MAX_USER_DATA = 2048
REGISTERED_CHAINS = {1: "bitcoin", 2: "ethereum", 3: "litecoin"}
BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
KEY_NAME = re.compile(r"[A-Za-z0-9._-]{1,32}\Z")


class Malformed(Exception):
    """The text is not a frame (§4): reason `malformed`."""


class Invalid(Exception):
    """A layer failed: the reason code."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


# ---------------------------------------------------------------------------------------
# Encodings


def b64(text):
    """Canonical standard base64 (§ notation): anything else is None."""
    if not isinstance(text, str):
        return None
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None
    return raw if base64.b64encode(raw).decode("ascii") == text else None


def unhex(text):
    """Hex of either case (written lowercase); None for anything else."""
    if not isinstance(text, str) or len(text) % 2 or not re.fullmatch(r"[0-9a-fA-F]*", text):
        return None
    return bytes.fromhex(text)


def base45_decode(text):
    """RFC 9285, strict: alphabet only, no length ≡ 1 (mod 3), no oversized group."""
    if len(text) % 3 == 1:
        raise Malformed("base45 length")
    out = bytearray()
    for i in range(0, len(text), 3):
        group = text[i:i + 3]
        values = [BASE45.find(c) for c in group]
        if -1 in values:
            raise Malformed("base45 alphabet")
        n = sum(v * 45 ** k for k, v in enumerate(values))
        if len(group) == 3:
            if n > 0xFFFF:
                raise Malformed("base45 group")
            out += n.to_bytes(2, "big")
        else:
            if n > 0xFF:
                raise Malformed("base45 group")
            out.append(n)
    return bytes(out)


def cbor_canonical(data):
    """Decodes one CBOR item and insists on its one deterministic encoding (RFC 8949
    §4.2.1): re-encoding must give the same bytes, which also refuses trailing bytes,
    indefinite lengths, non-shortest heads and repeated map keys."""
    try:
        item = cbor2.loads(data)
        again = cbor2.dumps(item, canonical=True)
    except Exception as e:  # any decoding problem
        raise Malformed(f"CBOR: {e}") from None
    if again != data:
        raise Malformed("CBOR not in its deterministic encoding")
    return item


def is_uint(v, below=2 ** 64):
    return type(v) is int and 0 <= v < below


def is_int64(v):
    return type(v) is int and -(2 ** 63) <= v < 2 ** 63


# JSON: §3.1. Strict parsing, canonical tokens, JCS.

_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def es_number_text(value):
    """The JCS (ECMAScript) text of a JSON number's value."""
    return rfc8785.dumps(float(value)).decode("ascii")


def check_canonical_tokens(text):
    """Every number written as JCS writes its value, every \\u escape in lowercase hex."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i += 1
            while i < n and text[i] != '"':
                if text[i] == "\\":
                    if text[i + 1:i + 2] == "u":
                        digits = text[i + 2:i + 6]
                        if not re.fullmatch(r"[0-9a-f]{4}", digits):
                            raise Malformed("\\u escape not in lowercase hex")
                        i += 6
                        continue
                    i += 1
                i += 1
            i += 1
        elif c == "-" or c.isdigit() and c.isascii():
            j = i
            while j < n and text[j] in "0123456789+-.eE":
                j += 1
            token = text[i:j]
            if not _NUMBER.fullmatch(token):
                raise Malformed("not a JSON number")
            value = float(token) if any(ch in token for ch in ".eE") else int(token)
            try:
                if es_number_text(value) != token:
                    raise Malformed(f"number {token} not in its JCS form")
            except Malformed:
                raise
            except Exception:  # an infinite value: out of the double range
                raise Malformed("number out of range") from None
            i = j
        else:
            i += 1


def _no_duplicates(pairs):
    seen = {}
    for k, v in pairs:
        if k in seen:
            raise Malformed(f"repeated key {k!r}")
        seen[k] = v
    return seen


def _no_constant(name):
    raise Malformed(f"{name} is not JSON")


def _check_strings(v):
    """Strings must be Unicode scalar values (no lone surrogates from \\u escapes)."""
    if isinstance(v, str):
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            raise Malformed("lone surrogate in a string") from None
    elif isinstance(v, dict):
        for k, x in v.items():
            _check_strings(k)
            _check_strings(x)
    elif isinstance(v, list):
        for x in v:
            _check_strings(x)


def parse_json(text):
    try:
        v = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except ValueError as e:
        raise Malformed(f"JSON: {e}") from None
    _check_strings(v)
    return v


def _as_doubles(v):
    """JSON numbers are IEEE doubles (RFC 8785); canonical tokens make this exact."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, list):
        return [_as_doubles(x) for x in v]
    return {k: _as_doubles(x) for k, x in v.items()}


def jcs(v):
    return rfc8785.dumps(_as_doubles(v))


def parse_user_json(text):
    """User data in a compact frame: a JSON object written exactly in its JCS form."""
    v = parse_json(text)
    if not isinstance(v, dict):
        raise Malformed("user data is not an object")
    if jcs(v).decode("utf-8") != text:
        raise Malformed("user data not in its JCS form")
    return v


_TIMESTAMP = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z\Z")


def parse_timestamp(s):
    """§3: YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z, years 1970-9999, to ms (sub-ms truncated)."""
    m = _TIMESTAMP.match(s) if isinstance(s, str) else None
    if not m:
        return None
    y, mo, d, h, mi, se = (int(x) for x in m.groups()[:6])
    if not (1970 <= y <= 9999 and 1 <= mo <= 12 and h <= 23 and mi <= 59 and se <= 59):
        return None
    leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    days_in = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1]
    if not 1 <= d <= days_in:
        return None
    # Days since 1970-01-01 (proleptic Gregorian).
    yy = y - (mo <= 2)
    era = yy // 400
    yoe = yy - era * 400
    doy = (153 * ((mo + 9) % 12) + 2) // 5 + d - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    ms = int((m.group(7) or "0").ljust(3, "0")[:3])
    return ((days * 86400 + h * 3600 + mi * 60 + se) * 1000) + ms


def anchor_tag(block_hash):
    h = block_hash[2:] if block_hash[:2] in ("0x", "0X") else block_hash
    raw = unhex(h) if len(h) <= 128 else None
    return raw[-8:] if raw is not None and len(raw) >= 8 else None


# ---------------------------------------------------------------------------------------
# Keys (§1)


class Keys:
    def __init__(self, key_set_json):
        self.by_kid = {}
        for k in json.loads(key_set_json)["keys"]:
            alg, pk = k["alg"], b64(k["public_key"])
            if alg not in KEY_LENGTHS or pk is None or len(pk) != KEY_LENGTHS[alg]:
                raise ValueError(f"bad key {k.get('kid')}")
            kid = hashlib.sha256(pk).digest()[:8]
            if kid.hex() != k["kid"].lower() or kid in self.by_kid:
                raise ValueError(f"kid {k['kid']} does not match its key or repeats")
            self.by_kid[kid] = {
                "alg": alg,
                "public_key": pk,
                "not_before": parse_timestamp(k["not_before"]),
                "not_after": None if k.get("not_after") is None else parse_timestamp(k["not_after"]),
            }


def verify_signatures(alg, public_key, message, sigs):
    def ed(pk, sig):
        try:
            Ed25519PublicKey.from_public_bytes(pk).verify(sig, message)
            return True
        except (InvalidSignature, ValueError):
            return False

    def fn(pk, sig):
        vk = py_fn_dsa.VerifyKey(py_fn_dsa.LOGN_512, pk)
        return py_fn_dsa.verify(vk, sig, message, b"", py_fn_dsa.HASH_ID_RAW)

    if alg == "ed25519":
        return ed(public_key, sigs[0])
    if alg == "fn-dsa-512":
        return fn(public_key, sigs[0])
    ok_ed = ed(public_key[:32], sigs[0])
    ok_fn = fn(public_key[32:], sigs[1])
    return ok_ed and ok_fn


def derive(secret_text, info):
    """§1.5: HKDF-SHA256, empty salt, the secret's raw UTF-8 bytes, 32 bytes out."""
    ikm = secret_text.encode("utf-8")
    if len(ikm) < 16:
        raise ValueError("a shared secret is at least 16 bytes")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(ikm)


class SharedKey:
    def __init__(self, name, secret, info):
        if not KEY_NAME.match(name):
            raise ValueError("bad key name")
        self.name, self.key = name, derive(secret, info)


# ---------------------------------------------------------------------------------------
# Frames (§2, §3): each parser returns the facts the layers need.


def parse_compact(text):
    frame = cbor_canonical(base45_decode(text[4:]))
    if not (isinstance(frame, list) and len(frame) == 3):
        raise Malformed("a frame is [payload, hmac, signature]")
    payload_bytes, mac, sig = frame
    if not isinstance(payload_bytes, bytes):
        raise Malformed("payload is not a byte string")
    p = cbor_canonical(payload_bytes)
    if not isinstance(p, dict) or len(p) > 10:
        raise Malformed("payload is not a map of at most 10 entries")
    if any(not is_uint(k, 10) for k in p):
        raise Malformed("unknown payload key")
    for required in (0, 2, 3, 4, 5):
        if required not in p:
            raise Malformed(f"payload lacks key {required}")
    if p[0] != 2 or type(p[0]) is not int:
        raise Malformed("payload version is not 2")
    if not is_uint(p[2]):
        raise Malformed("sequence")
    if not is_uint(p[3]) or p[3] > MAX_TIMESTAMP:
        raise Malformed("timestamp")
    if not is_uint(p[4]) or not 1 <= p[4] <= MAX_TTL:
        raise Malformed("ttl")
    if not isinstance(p[5], bytes) or not 8 <= len(p[5]) <= 64:
        raise Malformed("identity")
    kid = p.get(1)
    if kid is not None and not (isinstance(kid, bytes) and len(kid) == 8):
        raise Malformed("key id")
    if 6 in p:
        anchors = p[6]
        if not isinstance(anchors, dict) or not 1 <= len(anchors) <= 8:
            raise Malformed("anchors")
        for chain, tag in anchors.items():
            if type(chain) is int:
                if chain not in REGISTERED_CHAINS:
                    raise Malformed("unknown chain number")
            elif not (isinstance(chain, str) and 1 <= len(chain.encode()) <= 32
                      and chain not in REGISTERED_CHAINS.values()):
                raise Malformed("chain name")
            if not (isinstance(tag, bytes) and len(tag) == 8):
                raise Malformed("anchor tag")
    if 7 in p:
        te = p[7]
        if not (isinstance(te, list) and len(te) == 3 and is_int64(te[0])
                and is_uint(te[1], 2 ** 32) and is_uint(te[2], 2 ** 32) and te[1] <= te[2]):
            raise Malformed("time evidence")
    user = None
    if 8 in p:
        if not isinstance(p[8], str) or len(p[8].encode()) > MAX_USER_DATA:
            raise Malformed("user data")
        user = parse_user_json(p[8])
    sealed = None
    if 9 in p:
        enc = p[9]
        if not (isinstance(enc, list) and len(enc) == 3 and isinstance(enc[0], str)
                and len(enc[0].encode()) <= 32 and isinstance(enc[1], bytes) and len(enc[1]) == 12
                and isinstance(enc[2], bytes) and 16 <= len(enc[2]) <= MAX_USER_DATA + 16):
            raise Malformed("encrypted user data")
        sealed = enc
    if 8 in p and 9 in p:
        raise Malformed("user data both plain and encrypted")

    mac_claim = None
    if mac is not None:
        if not (isinstance(mac, list) and len(mac) == 2 and isinstance(mac[0], str)
                and len(mac[0].encode()) <= 32 and isinstance(mac[1], bytes) and len(mac[1]) == 16):
            raise Malformed("hmac is [key name, 16-byte tag]")
        mac_claim = {"name": mac[0], "algorithm_ok": True, "tag": mac[1],
                     "label": b"QRLP/2 compact hmac\0", "data": payload_bytes}

    sig_claim = None
    if sig is not None:
        if not (isinstance(sig, list) and 2 <= len(sig) <= 3 and is_uint(sig[0])
                and all(isinstance(s, bytes) and len(s) <= MAX_TEXT for s in sig[1:])):
            raise Malformed("signature is [suite, bytes...]")
        suite = SUITES.get(sig[0])
        if suite is not None:
            lens = suite[1]
            if tuple(len(s) for s in sig[1:]) != lens:
                raise Malformed("signature values do not fit the suite")
        # §2.2: the signature covers the encoded payload and hmac items.
        signed = cbor2.dumps(payload_bytes) + cbor2.dumps(mac)
        sig_claim = {
            "suite": suite[0] if suite else None,
            "kid": kid,
            "message": (b"QRLP/2 compact signature\0" + bytes([sig[0]]) + signed) if suite else b"",
            "sigs": sig[1:],
        }
    if (sig is not None) != (kid is not None):
        raise Malformed("a key id goes with a signature and only with one")

    def aad():
        header = {k: v for k, v in p.items() if k != 9}
        return b"QRLP/2 compact user-data\0" + cbor2.dumps(header, canonical=True)

    return {
        "format": "compact",
        "sig": sig_claim,
        "sig_defect": False,
        "mac": mac_claim,
        "timestamp": p[3],
        "ttl": p[4],
        "identity": p[5],
        "user_data": user,
        "sealed": None if sealed is None else {
            "name": sealed[0], "nonce": sealed[1], "ciphertext": sealed[2], "aad": aad},
    }


JSON_STRING_FIELDS = ["timestamp", "identity_hash", "digital_signature", "signing_key_id",
                      "signature_algorithm", "_hmac", "_hmac_key_id", "_hmac_algorithm",
                      "_integrity_checked_at", "_encryption_key_id", "_data_key_id"]
JSON_FIELDS = set(JSON_STRING_FIELDS) | {"blockchain_hashes", "time_server_verification",
                                         "user_data", "sequence_number", "_encrypted_fields"}


def parse_json_frame(text, json_ttl_ms):
    check_canonical_tokens(text)
    d = parse_json(text)
    if not isinstance(d, dict):
        raise Malformed("a JSON frame is an object")
    if set(d) - JSON_FIELDS:
        raise Malformed("unknown field")
    for required in ("timestamp", "identity_hash", "blockchain_hashes",
                     "time_server_verification", "sequence_number"):
        if required not in d:
            raise Malformed(f"missing {required}")
    if any(v is None for v in d.values()):
        raise Malformed("a field is null")
    for f in JSON_STRING_FIELDS:
        if f in d and not isinstance(d[f], str):
            raise Malformed(f"{f} is not a string")
    if not isinstance(d["blockchain_hashes"], dict) or not all(
            isinstance(v, str) for v in d["blockchain_hashes"].values()):
        raise Malformed("blockchain_hashes")
    for f in ("time_server_verification", "user_data"):
        if f in d and not isinstance(d[f], dict):
            raise Malformed(f"{f} is not an object")
    if not is_uint(d["sequence_number"]):
        raise Malformed("sequence_number")
    ef = d.get("_encrypted_fields")
    if ef is not None and not (isinstance(ef, list) and all(isinstance(x, str) for x in ef)):
        raise Malformed("_encrypted_fields")
    ts = parse_timestamp(d["timestamp"])
    if ts is None:
        raise Malformed("timestamp")
    identity = unhex(d["identity_hash"])
    if identity is None or not 8 <= len(identity) <= 64:
        raise Malformed("identity_hash")

    def view(*left_out):
        return jcs({k: v for k, v in d.items() if k not in left_out})

    sig_claim, defect = None, False
    fields = [d.get(f) for f in ("digital_signature", "signing_key_id", "signature_algorithm")]
    if all(f is not None for f in fields):
        sig_text, kid_text, alg = fields
        sid = SUITE_BY_NAME.get(alg)
        sigs = []
        if sid is not None:
            raw = b64(sig_text) or b""
            lens = SUITES[sid][1]
            if len(raw) == sum(lens):
                sigs = [raw[:lens[0]], raw[lens[0]:]] if len(lens) == 2 else [raw]
            else:
                defect = True
        kid = unhex(kid_text)
        sig_claim = {
            "suite": alg if sid is not None else None,
            "kid": kid if kid is not None and len(kid) == 8 else None,
            "message": (b"QRLP/2 json signature\0" + bytes([sid]) + view("digital_signature"))
            if sid is not None else b"",
            "sigs": sigs,
        }
    elif any(f is not None for f in fields):
        defect = True

    mac_claim = None
    if "_hmac" in d:
        tag = unhex(d["_hmac"])
        mac_claim = {
            "name": d.get("_hmac_key_id", ""),
            "algorithm_ok": d.get("_hmac_algorithm", "sha256") == "sha256",
            "tag": tag if tag is not None and len(tag) == 32 else b"",
            "label": b"QRLP/2 json hmac\0",
            "data": view("digital_signature", "_hmac"),
        }
    encrypted = "user_data" in (ef or [])
    sealed = None
    if encrypted:
        u = d.get("user_data") or {}
        ct, nonce = b64(u.get("ciphertext")), b64(u.get("nonce"))
        sealed = {
            "name": d.get("_encryption_key_id"),
            "nonce": nonce,
            "ciphertext": ct,
            "aad": lambda: b"QRLP/2 json user-data\0" + view("digital_signature", "_hmac", "user_data"),
        }
    return {
        "format": "json",
        "sig": sig_claim,
        "sig_defect": defect,
        "mac": mac_claim,
        "timestamp": ts,
        "ttl": json_ttl_ms,
        "identity": identity,
        "user_data": None if encrypted else d.get("user_data"),
        "sealed": sealed,
    }


# ---------------------------------------------------------------------------------------
# Verification (§5)


class Verifier:
    def __init__(self, keys, hmac_key=None, data_key=None, max_future_drift_ms=30_000,
                 json_ttl_ms=300_000):
        self.keys, self.hmac_key, self.data_key = keys, hmac_key, data_key
        self.drift, self.json_ttl = max_future_drift_ms, json_ttl_ms

    def verify(self, text, now_ms):
        """{"reason": code, "valid": bool, "user_data": ...}"""
        try:
            facts = self._parse(text)
            user = self._judge(facts, now_ms)
        except Malformed as e:
            return {"reason": "malformed", "valid": False, "user_data": None, "error": str(e)}
        except Invalid as e:
            return {"reason": e.code, "valid": False, "user_data": None}
        return {"reason": "ok", "valid": True, "user_data": user}

    def _parse(self, text):
        text = text.strip(" \t\r\n")
        if len(text.encode("utf-8")) > MAX_TEXT:
            raise Malformed("frame text too long")
        if text.startswith("{"):
            return parse_json_frame(text, self.json_ttl)
        if text.startswith("QL2:"):
            return parse_compact(text)
        raise Malformed("neither a compact frame (QL2:) nor a JSON object")

    def _judge(self, f, now):
        # 1. Signature.
        if f["sig_defect"]:
            raise Invalid("bad_signature")
        claim = f["sig"]
        if claim is None:
            raise Invalid("unsigned")
        if claim["suite"] is None:
            raise Invalid("algorithm_not_allowed")
        entry = self.keys.by_kid.get(claim["kid"]) if claim["kid"] else None
        if entry is None:
            raise Invalid("unknown_key_id")
        if entry["alg"] != claim["suite"]:
            raise Invalid("key_algorithm_mismatch")
        if not verify_signatures(entry["alg"], entry["public_key"], claim["message"], claim["sigs"]):
            raise Invalid("bad_signature")
        if f["timestamp"] < entry["not_before"]:
            raise Invalid("key_not_yet_valid")
        na = entry["not_after"]
        if na is not None and (now > na or f["timestamp"] > na):
            raise Invalid("key_expired")
        # 2. HMAC.
        if self.hmac_key is not None:
            mac = f["mac"]
            if mac is None:
                raise Invalid("hmac_missing")
            if mac["name"] != self.hmac_key.name or not mac["algorithm_ok"]:
                raise Invalid("hmac_key_unknown")
            full = hmac_mod.new(self.hmac_key.key, mac["label"] + mac["data"], hashlib.sha256).digest()
            tag = mac["tag"]
            if len(tag) < 16 or not hmac_mod.compare_digest(full[:len(tag)], tag):
                raise Invalid("hmac_mismatch")
        # 3. Time.
        age = now - f["timestamp"]
        if age < 0 and -age > self.drift:
            raise Invalid("from_future")
        if age > 0 and age > f["ttl"]:
            raise Invalid("expired")
        # 4. Identity: the signing key's identity hash (§1.2).
        full_identity = hashlib.sha256(entry["public_key"]).digest()
        if len(f["identity"]) < 16 or not full_identity.startswith(f["identity"]):
            raise Invalid("identity_mismatch")
        # 6. Encryption.
        user = f["user_data"]
        sealed = f["sealed"]
        if sealed is not None and self.data_key is not None and sealed["name"] == self.data_key.name:
            try:
                if sealed["nonce"] is None or len(sealed["nonce"]) != 12 or sealed["ciphertext"] is None:
                    raise InvalidTag()
                plain = ChaCha20Poly1305(self.data_key.key).decrypt(
                    sealed["nonce"], sealed["ciphertext"], sealed["aad"]())
                user = parse_user_json(plain.decode("utf-8"))
            except (InvalidTag, UnicodeDecodeError, Malformed, ValueError):
                raise Invalid("decryption_failed") from None
        return user


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keys", required=True, help="key set JSON (qrlp keys export)")
    ap.add_argument("--hmac-secret")
    ap.add_argument("--hmac-key-name", default="hmac-1")
    ap.add_argument("--data-secret")
    ap.add_argument("--data-key-name", default="data-1")
    ap.add_argument("--now", type=int, help="the clock, ms since 1970 (default: now)")
    ap.add_argument("frames", nargs="+")
    a = ap.parse_args()
    with open(a.keys, encoding="utf-8") as f:
        keys = Keys(f.read())
    hk = SharedKey(a.hmac_key_name, a.hmac_secret, b"QRLP/1 hmac-sha256 key") if a.hmac_secret else None
    dk = SharedKey(a.data_key_name, a.data_secret, b"QRLP/1 chacha20poly1305 user-data key") \
        if a.data_secret else None
    v = Verifier(keys, hk, dk)
    now = a.now if a.now is not None else int(time.time() * 1000)
    worst = 0
    for frame in a.frames:
        r = v.verify(frame, now)
        print(json.dumps(r, ensure_ascii=False))
        worst = max(worst, 0 if r["valid"] else 1)
    return worst


if __name__ == "__main__":
    sys.exit(main())
