#!/usr/bin/env bash
# Fleet load (issue 14): a release server with default settings on 127.0.0.1:19520 (SQLite
# in a temporary directory, or PostgreSQL with BENCH_DATABASE_URL), 1,000 simulated devices
# (`qrlp device simulate`: real enrollment, real signed heartbeats) heartbeating every 5 s
# for 60 s, at the default log level. Prints the heartbeat latency percentiles and the server's RSS before and after;
# fails when p99 exceeds 20 ms. Then the criterion bench of one signed-request check.
#   DEVICES=1000 INTERVAL=5 DURATION=60 scripts/bench-fleet.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DEVICES="${DEVICES:-1000}"
INTERVAL="${INTERVAL:-5}"
DURATION="${DURATION:-60}"
PORT=19520
if [ -n "${QRLP_BIN:-}" ]; then
    bin="$QRLP_BIN"
else
    cargo build --release --locked -p qrlp-cli
    bin="$PWD/${CARGO_TARGET_DIR:-target}/release/qrlp"
fi
work="$(mktemp -d)"
server=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

db_env=()
if [ -n "${BENCH_DATABASE_URL:-}" ]; then db_env=(QRLP_STORAGE_DATABASE_URL="$BENCH_DATABASE_URL"); fi
env QRLP_SERVER_HOST=127.0.0.1 QRLP_SERVER_PORT=$PORT QRLP_STORAGE_DATA_DIR="$work" \
    "${db_env[@]}" "$bin" serve >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
rss() { awk '/VmRSS/ {print $2 " kB"}' "/proc/$server/status"; }
echo "server RSS at start: $(rss)"
key="$("$bin" admin bootstrap --org "Fleet bench $$" --email bench@fleet.example --plan enterprise \
    --data-dir "$work" ${BENCH_DATABASE_URL:+--database-url "$BENCH_DATABASE_URL"} | tail -n1)"
out="$("$bin" device simulate --server "http://127.0.0.1:$PORT" --api-key "$key" \
    --devices "$DEVICES" --interval "$INTERVAL" --duration "$DURATION")"
echo "$out"
echo "server RSS after $DEVICES devices: $(rss)"
p99="$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["latency_ms"]["p99"])')"
python3 -c "import sys; sys.exit(0 if float('$p99') <= 20.0 else 1)" \
    || { echo "FAIL: heartbeat p99 $p99 ms > 20 ms"; exit 1; }
echo "heartbeat p99 $p99 ms <= 20 ms"
cargo bench --locked -p qrlp-fleet --bench verify -- --noplot 2>&1 | grep -E "verify_signed_request|time:"
