#!/usr/bin/env bash
# Installs the optional decoders some tests use when present: zxing-cpp (Micro QR) from PyPI.
# Safe to re-run; never fails the caller if the registry is unreachable.
set -uo pipefail
if ! python3 -c "import zxingcpp, PIL" 2>/dev/null; then
  python3 -m pip install -q --disable-pip-version-check zxing-cpp pillow 2>&1 | grep -v "as the 'root' user" || true
fi
python3 -c "import zxingcpp, PIL" 2>/dev/null && echo "test extras: zxing-cpp available" \
  || echo "test extras: zxing-cpp unavailable; the Micro QR decoder test will skip"
exit 0
