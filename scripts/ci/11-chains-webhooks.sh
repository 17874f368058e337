#!/usr/bin/env bash
# Seed 003 with real clients against the release binary, on SQLite and on PostgreSQL:
# - the seed's JavaScript example (axios), verbatim but for its two constants;
# - the seed's Node.js verifyWebhookSignature and handler, verbatim, behind express.json(),
#   receiving every delivery; each is also checked with the `standardwebhooks` npm package
#   and, afterwards, the PyPI `standardwebhooks` package; a copy with one byte changed must
#   fail every check;
# - the README's curl flow; a chain name full of escapes, so JSON.stringify must reproduce
#   quotes, backslashes, control characters and non-ASCII byte for byte.
# Ports 19101-19104. Packages are cached under target/.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${QRLP_BIN:?QRLP_BIN must name the release binary (.ci/run sets it)}"
. scripts/ci/seed003/lib.sh

target="${CARGO_TARGET_DIR:-target}"
node_dir="$PWD/$target/ci-node-11"
venv="$PWD/$target/ci-python-11"
install_node_packages "$node_dir"
install_python_packages "$venv"
export NODE_PATH="$node_dir/node_modules"

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

run_backend() {
    local backend=$1 port=$2 rport=$3
    local dir="$work/$backend"
    mkdir -p "$dir"
    local db_flag=()
    if [ "$backend" = postgres ]; then
        db_flag=(--database-url "$(pg_schema_url "$QRLP_TEST_POSTGRES_URL" "qrlp_ci11_$$")")
    fi
    local key
    key=$("$QRLP_BIN" admin bootstrap --data-dir "$dir/data" "${db_flag[@]}" \
        --org "Seed 003" --email owner@seed003.example --plan enterprise 2>/dev/null)
    QRLP_WEBHOOKS_ALLOW_PRIVATE_TARGETS=true QRLP_WEBHOOKS_POLL_INTERVAL_MS=100 \
    QRLP_WEBHOOKS_RETRY_TIME_SCALE=0.01 \
        "$QRLP_BIN" serve --port "$port" --data-dir "$dir/data" "${db_flag[@]}" \
        --log-level warn >"$dir/server.log" 2>&1 &
    pids+=($!)
    wait_http "http://127.0.0.1:$port/healthz"
    local base="http://127.0.0.1:$port/api/v1"

    local secret
    secret=$(curl -fsS -X POST "$base/webhooks" -H "X-API-Key: $key" \
        -H "Content-Type: application/json" \
        -d "{\"url\": \"http://127.0.0.1:$rport/webhook\", \"events\": [\"*\"]}" | jq -r .secret)
    case "$secret" in whsec_*) ;; *) echo "no secret" >&2; return 1 ;; esac

    SECRET="$secret" OUT="$dir/deliveries.jsonl" PORT="$rport" \
        node scripts/ci/seed003/receiver.js >"$dir/receiver.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 100); do grep -q "receiver ready" "$dir/receiver.log" && break; sleep 0.1; done

    # The seed's JavaScript example.
    local out
    out=$(QRLP_API_KEY="$key" QRLP_BASE_URL="$base" node scripts/ci/seed003/example.js)
    echo "$out"
    grep -q "^Created chain: [0-9][0-9]*$" <<<"$out"
    grep -q "^Current hash: [0-9a-f]\{64\}$" <<<"$out"
    grep -q "^Scan successful: true$" <<<"$out"
    grep -q "^Remaining: 99$" <<<"$out"

    # The README's curl flow (seed 003's cURL example).
    local id hash
    id=$(curl -fsS -X POST "$base/chains" -H "X-API-Key: $key" -H "Content-Type: application/json" \
        -d '{"name": "My First Chain", "chainLength": 100}' | jq -r .chainId)
    hash=$(curl -fsS "$base/chains/$id/current" -H "X-API-Key: $key" | jq -r .hashValue)
    curl -fsS -X POST "$base/chains/$id/scan" -H "X-API-Key: $key" \
        -H "Content-Type: application/json" -d "{\"hashValue\": \"$hash\"}" | jq -e '.success == true' >/dev/null
    # Rescan: 409 with the seed's error; a wrong value: 400.
    test "$(curl -sS -o "$dir/r.json" -w '%{http_code}' -X POST "$base/chains/$id/scan" -H "X-API-Key: $key" \
        -H "Content-Type: application/json" -d "{\"hashValue\": \"$hash\"}")" = 409
    jq -e '.error == "QR code already scanned"' "$dir/r.json" >/dev/null
    # A name with every kind of escape.
    curl -fsS -X POST "$base/chains" -H "X-API-Key: $key" -H "Content-Type: application/json" \
        -d '{"name": "Gate \"A\" \\ / é ü — 😀 \u2028 end", "chainLength": 10}' >/dev/null

    # Wait for the deliveries: 3 chain.created, 2 scan.success, 1 scan.failed.
    for _ in $(seq 1 200); do
        [ -f "$dir/deliveries.jsonl" ] && [ "$(wc -l <"$dir/deliveries.jsonl")" -ge 6 ] && break
        sleep 0.1
    done
    if ! OUT="$dir/deliveries.jsonl" WANT="chain.created,scan.success,scan.failed" \
        node scripts/ci/seed003/check_deliveries.js; then
        tail -20 "$dir/receiver.log" "$dir/server.log" >&2
        curl -sS "$base/webhooks/1/deliveries" -H "X-API-Key: $key" >&2
        return 1
    fi
    SECRET="$secret" OUT="$dir/deliveries.jsonl" "$venv/bin/python" scripts/ci/seed003/verify_standard.py
    if [ "$backend" = postgres ]; then
        PGOPTIONS=--client-min-messages=warning psql -q "$QRLP_TEST_POSTGRES_URL" -c "DROP SCHEMA qrlp_ci11_$$ CASCADE" >/dev/null
    fi
}

run_backend sqlite 19101 19102
if [ -n "${QRLP_TEST_POSTGRES_URL:-}" ]; then
    run_backend postgres 19103 19104
else
    echo "SKIPPED postgres: QRLP_TEST_POSTGRES_URL not set"
fi
echo "11-chains-webhooks: ok"
