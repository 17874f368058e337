#!/usr/bin/env bash
# Schemathesis (PyPI) against /openapi.json of a running release build, with a real API key
# of an enterprise organization: every documented operation, generated positive and
# negative inputs, stateful links. Passes only with no 500 and no response outside the
# documented status codes, content types and schemas.
#
#   scripts/schemathesis.sh                 # the full run: >= 2,000 requests
#   MAX_EXAMPLES=15 MAX_TIME=60 scripts/schemathesis.sh   # the bounded CI version
#
# Needs the release binary: $QRLP_BIN, or target/release/qrlp (cargo build --release -p
# qrlp-cli). Installs schemathesis into a virtual environment under target/.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=${CARGO_TARGET_DIR:-target}
BIN=${QRLP_BIN:-$TARGET/release/qrlp}
MAX_EXAMPLES=${MAX_EXAMPLES:-100}
MAX_TIME=${MAX_TIME:-}
MIN_REQUESTS=${MIN_REQUESTS:-2000}
PORT=${SCHEMATHESIS_PORT:-18931}
OUT=${OUT:-$TARGET/schemathesis}
SCHEMATHESIS_VERSION=4.32.5

[ -x "$BIN" ] || { echo "no release binary at $BIN (cargo build --release -p qrlp-cli)" >&2; exit 1; }
venv="$TARGET/ci-schemathesis"
if [ ! -x "$venv/bin/schemathesis" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"

mkdir -p "$OUT"
DATA_DIR=$(mktemp -d)
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$DATA_DIR"
}
trap cleanup EXIT

KEY=$("$BIN" admin bootstrap --org Fuzz --email owner@fuzz.example --plan enterprise \
    --data-dir "$DATA_DIR" 2>/dev/null)
# Per-address limits off: the fuzzer logs in and redeems thousands of times from one address.
QRLP_RATE_LIMIT_IP_PER_HOUR=0 "$BIN" serve --host 127.0.0.1 --port "$PORT" \
    --data-dir "$DATA_DIR" --log-level warn 2> "$OUT/server.log" &
SERVER_PID=$!
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done

args=(run "http://127.0.0.1:$PORT/openapi.json"
    --header "X-API-Key: $KEY"
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
    --max-examples "$MAX_EXAMPLES"
    --workers 1
    --seed 9
    --generation-database none
    --report ndjson --report-ndjson-path "$OUT/events.ndjson"
    --no-color)
[ -n "$MAX_TIME" ] && args+=(--max-time "$MAX_TIME")

status=0
"$venv/bin/schemathesis" "${args[@]}" > "$OUT/report.txt" 2>&1 || status=$?
tail -n 40 "$OUT/report.txt"

# Count what was sent and what came back, from the event log.
read -r requests five_hundreds < <("$venv/bin/python" - "$OUT/events.ndjson" <<'EOF'
import json, sys
requests = 0
errors = 0
for line in open(sys.argv[1]):
    def walk(o):
        global requests, errors
        if isinstance(o, dict):
            resp = o.get("response")
            if isinstance(resp, dict) and "status_code" in resp:
                requests += 1
                if resp["status_code"] >= 500 and resp["status_code"] != 503:
                    errors += 1
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)
    walk(json.loads(line))
print(requests, errors)
EOF
)
echo "schemathesis: $requests requests recorded, $five_hundreds answers 5xx (not 503); exit $status"
if grep -qi "panicked" "$OUT/server.log"; then
    echo "the server log has a panic:" >&2
    grep -i "panicked" "$OUT/server.log" | head >&2
    exit 1
fi
[ "$status" -eq 0 ] || { echo "schemathesis found failures (see $OUT/report.txt)" >&2; exit 1; }
[ "$five_hundreds" -eq 0 ] || { echo "server errors" >&2; exit 1; }
[ "$requests" -ge "$MIN_REQUESTS" ] || { echo "only $requests requests (want >= $MIN_REQUESTS)" >&2; exit 1; }
echo "schemathesis: passed"
