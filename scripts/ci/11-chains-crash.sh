#!/usr/bin/env bash
# Durability and exactly-once across crashes and processes, against the release binary:
# - crash: 1,000 scans of one chain; the server is killed with kill -9 midway and
#   restarted. A receiver (the seed's verifier, receiver.js) logs every delivery. Every
#   scan that answered success has exactly one distinct scan.success webhook-id at the
#   receiver, none is lost, and currentIndex agrees with validScans. SQLite and PostgreSQL.
# - two server processes sharing PostgreSQL: 20 rounds of 50 concurrent scans of one value
#   split between them; exactly one succeeds each round.
# Ports 19111-19119.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${QRLP_BIN:?QRLP_BIN must name the release binary (.ci/run sets it)}"
. scripts/ci/seed003/lib.sh

target="${CARGO_TARGET_DIR:-target}"
node_dir="$PWD/$target/ci-node-11"
install_node_packages "$node_dir"
export NODE_PATH="$node_dir/node_modules"

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    { wait; } 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

serve() { # dir port db_flag...
    local dir=$1 port=$2
    shift 2
    QRLP_WEBHOOKS_ALLOW_PRIVATE_TARGETS=true QRLP_WEBHOOKS_POLL_INTERVAL_MS=100 \
    QRLP_WEBHOOKS_TIMEOUT_MS=2000 \
        "$QRLP_BIN" serve --port "$port" --data-dir "$dir/data" "$@" \
        --log-level warn >>"$dir/server.log" 2>&1 &
    server_pid=$!
    pids+=("$server_pid")
    wait_http "http://127.0.0.1:$port/healthz"
}

crash() { # backend port rport
    local backend=$1 port=$2 rport=$3
    local dir="$work/crash-$backend" db_flag=()
    mkdir -p "$dir"
    if [ "$backend" = postgres ]; then
        db_flag=(--database-url "$(pg_schema_url "$QRLP_TEST_POSTGRES_URL" "qrlp_ci11c_$$")")
    fi
    local key base secret chain
    key=$("$QRLP_BIN" admin bootstrap --data-dir "$dir/data" "${db_flag[@]}" \
        --org Crash --email crash@seed003.example --plan enterprise 2>/dev/null)
    serve "$dir" "$port" "${db_flag[@]}"
    base="http://127.0.0.1:$port/api/v1"
    secret=$(curl -fsS -X POST "$base/webhooks" -H "X-API-Key: $key" -H "Content-Type: application/json" \
        -d "{\"url\": \"http://127.0.0.1:$rport/webhook\", \"events\": [\"scan.success\"]}" | jq -r .secret)
    SECRET="$secret" OUT="$dir/deliveries.jsonl" PORT="$rport" \
        node scripts/ci/seed003/receiver.js >/dev/null 2>&1 &
    pids+=($!)
    chain=$(curl -fsS -X POST "$base/chains" -H "X-API-Key: $key" -H "Content-Type: application/json" \
        -d '{"name": "Crash", "chainLength": 2000}' | jq -r .chainId)
    echo 0 >"$dir/progress"
    BASE="$base" KEY="$key" CHAIN="$chain" N=1000 PROGRESS="$dir/progress" RESULT="$dir/result.json" \
        node scripts/ci/seed003/crash_client.js &
    local client=$!
    pids+=("$client")
    for _ in $(seq 1 2400); do
        p=$(cat "$dir/progress" 2>/dev/null || true)
        [ "${p:-0}" -ge 500 ] 2>/dev/null && break
        sleep 0.05
    done
    kill -9 "$server_pid"
    { wait "$server_pid"; } 2>/dev/null || true
    echo "$backend: killed the server with kill -9 after $(cat "$dir/progress") answered successes"
    sleep 0.3
    serve "$dir" "$port" "${db_flag[@]}"
    wait "$client"
    local stats valid ids
    stats=$(curl -fsS "$base/chains/$chain/stats" -H "X-API-Key: $key")
    valid=$(jq .validScans <<<"$stats")
    # Wait (at most 60 s) for every accepted scan's event to arrive.
    for _ in $(seq 1 600); do
        ids=$(jq -r 'select(.event == "scan.success") | .id' "$dir/deliveries.jsonl" 2>/dev/null | sort -u | wc -l)
        [ "$ids" -ge "$valid" ] && break
        sleep 0.1
    done
    RESULT="$dir/result.json" STATS="$stats" OUT="$dir/deliveries.jsonl" \
        node scripts/ci/seed003/crash_check.js
    kill -9 "$server_pid" 2>/dev/null || true
    { wait "$server_pid"; } 2>/dev/null || true
    if [ "$backend" = postgres ]; then
        PGOPTIONS=--client-min-messages=warning psql -q "$QRLP_TEST_POSTGRES_URL" -c "DROP SCHEMA qrlp_ci11c_$$ CASCADE" >/dev/null
    fi
}

two_servers() {
    local dir="$work/two" url key
    mkdir -p "$dir"
    url=$(pg_schema_url "$QRLP_TEST_POSTGRES_URL" "qrlp_ci11t_$$")
    key=$("$QRLP_BIN" admin bootstrap --data-dir "$dir/data" --database-url "$url" \
        --org Two --email two@seed003.example --plan enterprise 2>/dev/null)
    serve "$dir" 19117 --database-url "$url"
    serve "$dir" 19118 --database-url "$url"
    BASE_A="http://127.0.0.1:19117/api/v1" BASE_B="http://127.0.0.1:19118/api/v1" KEY="$key" \
        node scripts/ci/seed003/two_servers.js
    PGOPTIONS=--client-min-messages=warning psql -q "$QRLP_TEST_POSTGRES_URL" -c "DROP SCHEMA qrlp_ci11t_$$ CASCADE" >/dev/null
}

crash sqlite 19111 19112
if [ -n "${QRLP_TEST_POSTGRES_URL:-}" ]; then
    crash postgres 19113 19114
    two_servers
else
    echo "SKIPPED postgres: QRLP_TEST_POSTGRES_URL not set"
fi
echo "11-chains-crash: ok"
