#!/usr/bin/env bash
# Decodes a generated corpus of qrlp PNGs and SVGs with two independent decoders:
# zbarimg (Debian's zbar-tools) and zxing-cpp (PyPI). Not part of `cargo test`.
# Usage: scripts/decode-corpus.sh [OUT_DIR]     (installs what it needs when missing)
# Two parts: payload kinds and image options (PNG, SVG, Micro QR), then a seeded sample of
# mixed-script text (MIXED_COUNT=300 strings, MIXED_SEED=2026) with counts per mixture.
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
cargo build --release -q -p qrlp-conformance --bin qrlp-mixed-sample
bin="${CARGO_TARGET_DIR:-target}/release"
# The seeded mixed-script sample (the generator of the zxing-cpp round-trip test).
"$bin/qrlp-mixed-sample" "${MIXED_COUNT:-300}" "${MIXED_SEED:-2026}" > "$out.mixed.tsv"
python3 scripts/decode_corpus.py --qrlp "$bin/qrlp" --out "$out" --mixed "$out.mixed.tsv"
