#!/usr/bin/env bash
# The bounded CI version of scripts/schemathesis.sh: every documented operation with a few
# generated cases each (stopped after 45 s: about 5,000 requests with the release build), against the release binary
# with a real API key. No 500, no response outside the documented statuses and schemas.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${QRLP_BIN:?QRLP_BIN must name the release binary (.ci/run sets it)}"
MAX_EXAMPLES=10 MIN_REQUESTS=1000 MAX_TIME=45 timeout 120 scripts/schemathesis.sh
