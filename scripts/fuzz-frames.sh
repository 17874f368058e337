#!/usr/bin/env bash
# Long random-input run of the live-frame decoder and verifier (default 10 minutes), release
# build: random bytes, mutated compact frames and mutated JSON frames. Fails on any panic or
# on a mutated frame that verifies.
# Usage: scripts/fuzz-frames.sh [SECONDS] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p qrlp-live --bin qrlp-live-fuzz
exec "${CARGO_TARGET_DIR:-target}"/release/qrlp-live-fuzz "${1:-600}" ${2:+"$2"}
