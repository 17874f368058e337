#!/usr/bin/env bash
# qrlp-federated's aggregation against numpy: scripts/ci/fl_reference.py draws random
# updates and sample counts with a fixed seed and computes FedAvg, the coordinate-wise
# trimmed mean and the median with numpy; the Rust test `numpy_reference` aggregates the
# same inputs (in several chunk sizes) and must agree to 1e-6 (relative above 1).
# Installs numpy into a virtual environment under target/ when the system Python lacks it.
set -euo pipefail
cd "$(dirname "$0")/../.."

python=python3
if ! python3 -c 'import numpy' 2>/dev/null; then
    venv="${CARGO_TARGET_DIR:-target}/ci-fl-numpy"
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv"
    fi
    if ! "$venv/bin/python" -c 'import numpy' 2>/dev/null; then
        timeout 300 "$venv/bin/pip" install --quiet --disable-pip-version-check numpy
    fi
    python="$venv/bin/python"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
timeout 60 "$python" scripts/ci/fl_reference.py "$work/reference.json"
QRLP_FL_REFERENCE="$work/reference.json" timeout 900 \
    cargo test --quiet -p qrlp-federated --test numpy_reference -- --nocapture
