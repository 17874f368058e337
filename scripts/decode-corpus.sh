#!/usr/bin/env bash
# Decodes a generated corpus of qrlp PNGs and SVGs with two independent decoders:
# zbarimg (Debian's zbar-tools) and zxing-cpp (PyPI). Not part of `cargo test`.
# Usage: scripts/decode-corpus.sh [OUT_DIR]     (installs what it needs when missing)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/decode-corpus}

need_apt=()
command -v zbarimg >/dev/null || need_apt+=(zbar-tools)
command -v rsvg-convert >/dev/null || need_apt+=(librsvg2-bin)
if ((${#need_apt[@]})); then
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
python3 -c "import zxingcpp, PIL" 2>/dev/null || python3 -m pip install -q zxing-cpp pillow

cargo build --release -q -p qrlp-cli
python3 scripts/decode_corpus.py --qrlp "${CARGO_TARGET_DIR:-target}/release/qrlp" --out "$out"
