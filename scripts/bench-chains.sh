#!/usr/bin/env bash
# Chains and webhooks under load, release build, loopback, default settings (plus
# webhooks.allow_private_targets, as the receiver is local):
# 1. valid scans over 64 chains at 32 connections for SECONDS (default 15): throughput and
#    latency percentiles of acknowledged scans (qrlp-chain-load submits precomputed valid
#    values, one POST per scan); then the server is killed with kill -9, restarted, and
#    every acknowledged scan must be there (durability: SQLite runs synchronous=FULL);
# 2. 10,000 events queued while no worker runs, then a server with the default worker
#    started next to a local receiver: the time until all 10,000 distinct webhook-ids arrive.
# usage: scripts/bench-chains.sh [sqlite|postgres|both] [SECONDS]
# The chains belong to one organization, whose budget (the enterprise plan: 100,000 requests
# an hour) ends a run of more than about 20 s at 5,000 scans/s with 429s; for longer runs,
# QRLP_RATE_LIMIT_ENABLED=false (passed to the server) lifts the budget.
# PostgreSQL: QRLP_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test).
# Ports 19120-19129. BENCH_PROFILE=debug runs the debug build (to test the script only).
set -euo pipefail
cd "$(dirname "$0")/.."
which_backends=${1:-both}
seconds=${2:-15}
pg_base=${QRLP_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
. scripts/ci/seed003/lib.sh

# BENCH_PROFILE=debug checks the script itself quickly; figures come from release builds.
if [ "${BENCH_PROFILE:-release}" = debug ]; then
    cargo build --locked -p qrlp-cli -p qrlp-loadtest
    bin="${CARGO_TARGET_DIR:-target}/debug"
else
    cargo build --release --locked -p qrlp-cli -p qrlp-loadtest
    bin="${CARGO_TARGET_DIR:-target}/release"
fi
qrlp="$bin/qrlp"
load="$bin/qrlp-chain-load"
echo "cpu: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    { wait; } 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

start_server() { # dir port extra-env... -- db flags...
    local dir=$1 port=$2
    shift 2
    env QRLP_WEBHOOKS_ALLOW_PRIVATE_TARGETS=true "$@" "$qrlp" serve --port "$port" \
        --data-dir "$dir/data" "${db_flag[@]}" >>"$dir/server.log" 2>&1 &
    server=$!
    pids+=("$server")
    wait_http "http://127.0.0.1:$port/healthz"
}

bench_backend() {
    local backend=$1 dir="$work/$1"
    mkdir -p "$dir"
    db_flag=()
    if [ "$backend" = postgres ]; then
        db_flag=(--database-url "$(pg_schema_url "$pg_base" "qrlp_bench_$$")")
    fi
    local key base=http://127.0.0.1:19120
    key=$("$qrlp" admin bootstrap --data-dir "$dir/data" "${db_flag[@]}" \
        --org Bench --email bench@example.com --plan enterprise 2>/dev/null)
    echo "== $backend: scans"
    start_server "$dir" 19120
    "$load" scans --base "$base" --key "$key" --data-dir "$dir/data" "${db_flag[@]}" \
        --chains 64 --length 10000 --connections 32 --seconds "$seconds" --acked "$dir/acked.json"
    kill -9 "$server"; { wait "$server"; } 2>/dev/null || true
    start_server "$dir" 19120
    "$load" verify --base "$base" --key "$key" --acked "$dir/acked.json"

    echo "== $backend: 10,000 queued events"
    local hook secret org
    read -r hook secret < <(curl -fsS -X POST "$base/api/v1/webhooks" -H "X-API-Key: $key" \
        -H "Content-Type: application/json" \
        -d '{"url": "http://127.0.0.1:19121/hook", "events": ["webhook.test"]}' | jq -r '"\(.id) \(.secret)"')
    org=$(curl -fsS "$base/api/v1/users/me" -H "X-API-Key: $key" | jq -r .organization.id)
    kill -9 "$server"; { wait "$server"; } 2>/dev/null || true
    "$load" enqueue --data-dir "$dir/data" "${db_flag[@]}" --org "$org" --webhook "$hook" --count 10000
    "$load" receive --port 19121 --secret "$secret" --expect 10000 --timeout 120 &
    local receiver=$!
    pids+=("$receiver")
    sleep 0.3
    start_server "$dir" 19120
    wait "$receiver"
    kill -9 "$server"; { wait "$server"; } 2>/dev/null || true
    if [ "$backend" = postgres ]; then
        PGOPTIONS=--client-min-messages=warning psql -q "$pg_base" -c "DROP SCHEMA qrlp_bench_$$ CASCADE" >/dev/null
    fi
}

case "$which_backends" in
    sqlite) bench_backend sqlite ;;
    postgres) bench_backend postgres ;;
    both) bench_backend sqlite; bench_backend postgres ;;
    *) echo "usage: $0 [sqlite|postgres|both] [SECONDS]" >&2; exit 2 ;;
esac
