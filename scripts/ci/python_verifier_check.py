#!/usr/bin/env python3
"""Run by 50-python-verifier.sh: the Python verifier (qrlp_verify.py, written from the
specification) against

1. the test vectors of docs/qrlp-frames.md §8 (every case, with and without the HMAC key);
2. 50 fresh frames of each format made by the release binary `$QRLP_BIN` (the three suites
   in turn, some with encrypted user data), and 5 tampered copies of each (one character
   changed), verified by `$QRLP_BIN verify` and by the Python verifier, with the HMAC key
   (the issuer's data directory) and without it (an exported key set elsewhere).

Every verdict and reason code must agree (and the user data of valid frames). Exits 1 on
any disagreement, naming it.
"""

import json
import os
import random
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qrlp_verify as qv  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
QRLP = os.environ.get("QRLP_BIN") or os.path.join(ROOT, "target", "release", "qrlp")
FRAMES_PER_FORMAT = int(os.environ.get("QRLP_PYVERIFY_FRAMES", "50"))
COPIES = 5
DATA_SECRET = "python verifier check data secret"
BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7F)) + "é€"

failures = []


def fail(msg):
    failures.append(msg)
    print("DISAGREE:", msg, file=sys.stderr)


def spec_vectors():
    doc = open(os.path.join(ROOT, "docs", "qrlp-frames.md"), encoding="utf-8").read()
    start = doc.index("<!-- vectors:begin -->")
    block = doc[start:doc.index("<!-- vectors:end -->")]
    return json.loads(block[block.index("```json") + 7:block.rindex("```")])


def check_vectors():
    v = spec_vectors()
    keys = qv.Keys(json.dumps(v["key_set"]))
    hk = qv.SharedKey(v["hmac_key"]["name"], v["hmac_key"]["secret"], b"QRLP/1 hmac-sha256 key")
    dk = qv.SharedKey(v["data_key"]["name"], v["data_key"]["secret"],
                      b"QRLP/1 chacha20poly1305 user-data key")
    with_key, without = qv.Verifier(keys, hk, dk), qv.Verifier(keys, None, dk)
    for case in v["cases"]:
        for verifier, field in ((with_key, "with_hmac_key"), (without, "without_hmac_key")):
            r = verifier.verify(case["frame"], case["now_ms"])
            if r["reason"] != case[field]:
                fail(f"vector {case['name']!r} {field}: python says {r['reason']} "
                     f"({r.get('error', '')}), the spec says {case[field]}")
            elif r["valid"] and r["user_data"] != case["user_data"]:
                fail(f"vector {case['name']!r}: user data {r['user_data']} != {case['user_data']}")
    return len(v["cases"]) * 2


def qrlp(args, env):
    return subprocess.run([QRLP, *args], env=env, capture_output=True, text=True, timeout=60)


def tampered(frame, rng):
    alphabet = BASE45 if frame.startswith("QL2:") else PRINTABLE
    out = []
    for _ in range(COPIES):
        while True:
            at = rng.randrange(len(frame))
            c = rng.choice(alphabet)
            if c != frame[at]:
                out.append(frame[:at] + c + frame[at + 1:])
                break
    return out


def check_fresh():
    rng = random.Random(12)
    with tempfile.TemporaryDirectory(prefix="qrlp-pyverify-") as tmp:
        issuer = os.path.join(tmp, "issuer")
        elsewhere = os.path.join(tmp, "elsewhere")
        os.makedirs(elsewhere)
        base_env = {k: v for k, v in os.environ.items()
                    if not k.startswith("QRLP_") and k not in ("PORT", "DATABASE_URL", "REDIS_URL")}
        base_env.update({
            "QRLP_TIME_TIME_SERVERS": "[]",
            "QRLP_BLOCKCHAIN_ENABLED_CHAINS": "[]",
            "QRLP_DATA_KEY_SECRET": DATA_SECRET,
        })
        env_issuer = dict(base_env, QRLP_DATA_DIR=issuer)
        env_elsewhere = dict(base_env, QRLP_DATA_DIR=elsewhere)

        frames = []
        started = time.monotonic()
        for fmt in ("compact", "json"):
            for i in range(FRAMES_PER_FORMAT):
                args = ["generate", "--format", "json", "--no-evidence", "--ttl", "600"]
                args += [[], ["--pq"], ["--hybrid"]][i % 3]
                if fmt == "json":
                    args.append("--json-frame")
                user = {"user_text": f"Frame {i} \U0001f3a5 — “quoted” \\ /", "ratio": 1e-7 * (i + 1),
                        "n": i, "flag": i % 2 == 0, "none": None}
                args += ["--user-data", json.dumps(user)]
                if i % 5 == 4:
                    args.append("--encrypt")
                g = qrlp(args, env_issuer)
                if g.returncode != 0:
                    fail(f"generate {args}: {g.stderr}")
                    continue
                frames.append(json.loads(g.stdout)["frame"])
        made = time.monotonic() - started

        key_file = os.path.join(tmp, "keys.json")
        e = qrlp(["keys", "export", "--output", key_file], env_issuer)
        if e.returncode != 0:
            fail(f"keys export: {e.stderr}")
            return 0
        keys = qv.Keys(open(key_file, encoding="utf-8").read())
        secret = open(os.path.join(issuer, "hmac.secret"), encoding="utf-8").read()
        secret = secret[:-1] if secret.endswith("\n") else secret
        hk = qv.SharedKey("hmac-1", secret, b"QRLP/1 hmac-sha256 key")
        dk = qv.SharedKey("data-1", DATA_SECRET, b"QRLP/1 chacha20poly1305 user-data key")
        py_with, py_without = qv.Verifier(keys, hk, dk), qv.Verifier(keys, None, dk)

        compared = 0
        reasons = {}
        for frame in frames:
            for text in [frame, *tampered(frame, rng)]:
                for py, env, extra in ((py_with, env_issuer, []),
                                       (py_without, env_elsewhere, ["--keys", key_file])):
                    v = qrlp(["verify", "--json", *extra, text], env)
                    if v.returncode not in (0, 1):
                        fail(f"qrlp verify exit {v.returncode}: {v.stderr} for {text!r}")
                        continue
                    rust = json.loads(v.stdout)
                    mine = py.verify(text, int(time.time() * 1000))
                    code = rust["reason"]["code"]
                    reasons[code] = reasons.get(code, 0) + 1
                    compared += 1
                    if code != mine["reason"] or (rust["verdict"] == "valid") != mine["valid"]:
                        fail(f"qrlp verify says {code}, python {mine['reason']} "
                             f"({mine.get('error', '')}) for {text!r}")
                    elif mine["valid"] and rust["user_data"] != mine["user_data"]:
                        fail(f"user data {rust['user_data']} != {mine['user_data']} for {text!r}")
                    if text == frame and code != "ok":
                        fail(f"a fresh frame is {code}: {text!r}")
        print(f"fresh frames: {len(frames)} made in {made:.1f} s; {compared} verdicts compared; "
              f"qrlp verify reasons {dict(sorted(reasons.items()))}")
        return compared


def main():
    started = time.monotonic()
    n_vectors = check_vectors()
    print(f"spec vectors: {n_vectors} verdicts checked")
    n_fresh = check_fresh()
    total = n_vectors + n_fresh
    print(f"python verifier: {total - len(failures)} passed, {len(failures)} failed "
          f"in {time.monotonic() - started:.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
