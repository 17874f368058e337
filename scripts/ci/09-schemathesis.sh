#!/usr/bin/env bash
# The bounded CI version of scripts/schemathesis.sh: every documented operation with a few
# generated cases each (about 1,300 requests, under a minute), against the release binary
# with a real API key. No 500, no response outside the documented statuses and schemas.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${QRLP_BIN:?QRLP_BIN must name the release binary (.ci/run sets it)}"
MAX_EXAMPLES=10 MIN_REQUESTS=1000 MAX_TIME=120 timeout 300 scripts/schemathesis.sh
