#!/usr/bin/env bash
# Fan-out of `qrlp live` (release build, default settings but the interval) on loopback:
#   1. 1,000 clients of the official socket.io-client at a 1 s interval for 30 s: every
#      client must get every frame; p50/p99 delivery latency; server RSS (max sampled);
#   2. 10,000 plain WebSocket clients (`qrlp-chain-load live`: tokio-tungstenite, engine.io
#      by hand; `WS_CLIENT=node` for npm ws instead), file-descriptor limit raised: p50/p99,
#      RSS;
#   3. idle RSS of `qrlp live` with no client.
# Not run by CI (minutes of load). Results go to docs/performance.md by hand.
# Usage: scripts/bench-live.sh [SECONDS]   (QRLP_BIN to use another binary)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-30}"
target="${CARGO_TARGET_DIR:-target}"
if [ -z "${QRLP_BIN:-}" ]; then
    cargo build --release --locked -p qrlp-cli
    QRLP_BIN="$PWD/$target/release/qrlp"
fi
load="$PWD/$target/release/qrlp-chain-load"
[ -x "$load" ] || cargo build --release --locked -p qrlp-loadtest
js="$target/ci-live-js"
mkdir -p "$js"
cp scripts/ci/live-js/package.json scripts/ci/live-js/package-lock.json "$js/"
if [ ! -d "$js/node_modules/ws" ]; then
    (cd "$js" && timeout 300 npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
fi
cp scripts/live_bench.mjs "$js/"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

run() {  # clients mode
    local port=19330
    "$QRLP_BIN" live --port "$port" --no-browser --interval 1 --data-dir "$work/data" >"$work/live.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
    sleep 2
    local idle; idle=$(rss_kib "$pid")
    local max=0
    ( while kill -0 "$pid" 2>/dev/null; do r=$(rss_kib "$pid" 2>/dev/null || echo 0); echo "$r"; sleep 0.5; done ) >"$work/rss" &
    local sampler=$!
    if [ "$2" = ws ] && [ "${WS_CLIENT:-rust}" = rust ]; then
        "$load" live --url "http://127.0.0.1:$port" --clients "$1" --seconds "$secs" | tee "$work/result.json"
    else
        node --max-old-space-size=4096 "$js/live_bench.mjs" "http://127.0.0.1:$port" "$1" "$secs" "$2" | tee "$work/result.json"
    fi
    max=$(sort -n "$work/rss" | tail -1)
    kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""
    kill "$sampler" 2>/dev/null || true
    echo "  server RSS: idle ${idle} KiB before clients, max ${max} KiB under load"
}

if [ "${ONLY:-}" != ws ]; then
    echo "== 1,000 Socket.IO clients, 1 s interval, ${secs} s"
    run 1000 socketio
fi
if [ "${ONLY:-}" != socketio ]; then
    echo "== 10,000 plain WebSocket clients, 1 s interval, ${secs} s"
    run 10000 ws
fi
