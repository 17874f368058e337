#!/usr/bin/env bash
# Criterion workloads A-D for qrlp, fast_qr and qrcode in one run, then a ratio table.
# Usage: scripts/bench-engine.sh [extra criterion args]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -p qrlp-bench --bench engine -- "$@"
python3 scripts/bench_table.py "${CARGO_TARGET_DIR:-target}/criterion"
