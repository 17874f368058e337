#!/usr/bin/env bash
# A second verifier, in Python, written from docs/qrlp-frames.md (scripts/ci/qrlp_verify.py),
# against the specification's test vectors and against `$QRLP_BIN verify` on 50 fresh frames
# of each format and 5 tampered copies of each, with and without the HMAC key. Every verdict
# must agree. Installs its PyPI packages into a virtual environment under target/.
set -euo pipefail
cd "$(dirname "$0")/../.."

: "${QRLP_BIN:?QRLP_BIN must name the release binary (.ci/run sets it)}"
venv="${CARGO_TARGET_DIR:-target}/ci-python-verifier"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check \
    cbor2==6.3.0 cryptography==50.0.2 rfc8785==0.1.4 py-fn-dsa==0.2.0
timeout 300 "$venv/bin/python" scripts/ci/python_verifier_check.py
