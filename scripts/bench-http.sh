#!/usr/bin/env bash
# Load test of `qrlp serve` on loopback: the seed's minimal request,
#   POST /v1/qr {"url": "https://example.com"}
# against a release build, with oha (installed from crates.io when missing).
#
#   scripts/bench-http.sh [load|soak|both]      (default: load)
#
# load: 64 connections for 15 s. Reports requests/s, p50/p99 latency, errors (non-200
#       answers and transport errors) and the server's RSS (peak sampled and VmHWM).
#       Targets: >= 25000 req/s, p99 <= 10 ms, 0 errors, RSS <= 40 MB.
# soak: 5 minutes at 50% of the rate measured by a load run (or SOAK_RATE), reporting
#       RSS at the start, after 1 minute and at the end. Target: no growth after 1 min.
#
# Settings (environment): CONNECTIONS=64 DURATION=15 (s) SOAK_SECS=300 SOAK_RATE (req/s)
# BENCH_PORT=18181 LOG_LEVEL=warn (info writes one log line per request to the log file)
# CARGO_TARGET_DIR (where the release build goes). Output and logs go to $OUT
# (default target/bench-http/).
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=${1:-load}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-15}
SOAK_SECS=${SOAK_SECS:-300}
PORT=${BENCH_PORT:-18181}
LOG_LEVEL=${LOG_LEVEL:-warn}
TARGET=${CARGO_TARGET_DIR:-target}
OUT=${OUT:-$TARGET/bench-http}
BIN="$TARGET/release/qrlp"
URL="http://127.0.0.1:$PORT/v1/qr"
BODY='{"url": "https://example.com"}'

case "$MODE" in load|soak|both) ;; *) echo "usage: $0 [load|soak|both]" >&2; exit 64 ;; esac
mkdir -p "$OUT"

if ! command -v oha >/dev/null; then
    echo "== installing oha from crates.io"
    cargo install oha --locked
fi
echo "== building release"
cargo build --release -p qrlp-cli --quiet

SERVER_PID=
SAMPLER_PID=
cleanup() {
    [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null || true
    if [ -n "$SERVER_PID" ]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status"; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$SERVER_PID/status"; }

start_server() {
    "$BIN" serve --host 127.0.0.1 --port "$PORT" --log-format json --log-level "$LOG_LEVEL" \
        2> "$OUT/server.log" &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        if curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then return 0; fi
        sleep 0.05
    done
    echo "server did not start; see $OUT/server.log" >&2
    exit 1
}

# Samples VmRSS every 0.2 s into $1 ("milliseconds_since_start rss_kb"), for at most $2 s.
start_sampler() {
    local file=$1 max_secs=$2
    : > "$file"
    (
        start=$(date +%s%N)
        end=$((start + max_secs * 1000000000))
        while kill -0 "$SERVER_PID" 2>/dev/null; do
            now=$(date +%s%N)
            [ "$now" -gt "$end" ] && break
            echo "$(( (now - start) / 1000000 )) $(rss_kb)" >> "$file"
            sleep 0.2
        done
    ) &
    SAMPLER_PID=$!
}
stop_sampler() { kill "$SAMPLER_PID" 2>/dev/null || true; wait "$SAMPLER_PID" 2>/dev/null || true; SAMPLER_PID=; }

oha_run() { # extra oha arguments...
    oha --no-tui --output-format json -m POST -H 'content-type: application/json' \
        -d "$BODY" "$@" "$URL"
}

report() { # oha json file, label
    python3 - "$1" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s = r["summary"]
codes = r.get("statusCodeDistribution", {})
errors = r.get("errorDistribution", {})
non200 = sum(n for c, n in codes.items() if c != "200")
transport = sum(errors.values())
p = r["latencyPercentiles"]
print(f"{sys.argv[2]}: {s['requestsPerSec']:.0f} req/s, "
      f"p50 {p['p50']*1000:.2f} ms, p99 {p['p99']*1000:.2f} ms, p99.9 {p['p99.9']*1000:.2f} ms, "
      f"responses {dict(codes)}, errors {non200 + transport} "
      f"(non-200 {non200}, transport {transport}{' ' + str(errors) if errors else ''})")
PY
}

rps_of() { python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["summary"]["requestsPerSec"]))' "$1"; }

start_server
echo "== server pid $SERVER_PID, $(nproc) cores, RSS at start $(rss_kb) kB"
# Warm-up: connections, allocator and caches.
oha_run -n 5000 -c "$CONNECTIONS" > "$OUT/warmup.json"

if [ "$MODE" = load ] || [ "$MODE" = both ]; then
    echo "== load: $CONNECTIONS connections, ${DURATION}s"
    start_sampler "$OUT/load-rss.txt" $((DURATION + 5))
    oha_run -z "${DURATION}s" -w -c "$CONNECTIONS" > "$OUT/load.json"
    stop_sampler
    report "$OUT/load.json" "load"
    peak=$(sort -k2 -n "$OUT/load-rss.txt" | tail -1 | cut -d' ' -f2)
    echo "load: server RSS peak sampled ${peak} kB ($((peak / 1024)) MiB), VmHWM $(hwm_kb) kB"
fi

if [ "$MODE" = soak ] || [ "$MODE" = both ]; then
    if [ -z "${SOAK_RATE:-}" ]; then
        if [ ! -f "$OUT/load.json" ]; then
            echo "soak needs SOAK_RATE or a load run first (mode both)" >&2
            exit 64
        fi
        SOAK_RATE=$(( $(rps_of "$OUT/load.json") / 2 ))
    fi
    echo "== soak: ${SOAK_RATE} req/s for ${SOAK_SECS}s"
    start_sampler "$OUT/soak-rss.txt" $((SOAK_SECS + 5))
    rss_start=$(rss_kb)
    oha_run -z "${SOAK_SECS}s" -w -c "$CONNECTIONS" -q "$SOAK_RATE" > "$OUT/soak.json" &
    OHA_PID=$!
    sleep 60
    rss_1min=$(rss_kb)
    wait "$OHA_PID"
    rss_end=$(rss_kb)
    stop_sampler
    report "$OUT/soak.json" "soak"
    echo "soak: server RSS start ${rss_start} kB, after 1 min ${rss_1min} kB, end ${rss_end} kB, VmHWM $(hwm_kb) kB"
fi
