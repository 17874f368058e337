#!/usr/bin/env bash
# Long random-input run of the encoder and renderers (default 10 minutes), release build.
# Usage: scripts/fuzz.sh [SECONDS] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p qrlp-conformance --bin qrlp-fuzz
exec "${CARGO_TARGET_DIR:-target}"/release/qrlp-fuzz "${1:-600}" ${2:+"$2"}
