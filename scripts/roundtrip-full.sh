#!/usr/bin/env bash
# The full 5,000-payload PNG round trip of crates/qrlp-conformance/tests/roundtrip.rs; CI
# runs 1,500 of the same seeded corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
QRLP_ROUNDTRIP_CASES="${QRLP_ROUNDTRIP_CASES:-5000}" \
    cargo test --release --locked -p qrlp-conformance --test roundtrip -- --nocapture
