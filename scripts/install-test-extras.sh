#!/usr/bin/env bash
# Installs the optional tools some tests use when present, from PyPI: zxing-cpp (Micro QR)
# and aiosmtpd (SMTP sink for the invitation-mail test).
# Safe to re-run; never fails the caller if the registry is unreachable.
set -uo pipefail
if ! python3 -c "import zxingcpp, PIL" 2>/dev/null; then
  python3 -m pip install -q --disable-pip-version-check zxing-cpp pillow 2>&1 | grep -v "as the 'root' user" || true
fi
python3 -c "import zxingcpp, PIL" 2>/dev/null && echo "test extras: zxing-cpp available" \
  || echo "test extras: zxing-cpp unavailable; the Micro QR decoder test will skip"
# aiosmtpd: the local SMTP sink of the invitation-mail test (issue 9).
if ! python3 -c "import aiosmtpd" 2>/dev/null; then
  python3 -m pip install -q --disable-pip-version-check aiosmtpd 2>&1 | grep -v "as the 'root' user" || true
fi
python3 -c "import aiosmtpd" 2>/dev/null && echo "test extras: aiosmtpd available" \
  || echo "test extras: aiosmtpd unavailable; the invitation-mail test will skip"
exit 0
