#!/usr/bin/env bash
# Load test of `qrlp serve` on loopback, release build, DEFAULT settings (log level info,
# one log line per request, pretty format, written to a file as a service's stderr would be):
#
#   scripts/bench-http.sh [load|soak|both]      (default: load)
#
# load: on one server, in one run, in counterbalanced order (healthz, qr, qr, healthz, ...)
#       GET /healthz (the server's own ceiling: the
#       cheapest route through the same middleware, logging and metrics) and
#       POST /v1/qr {"url": "<benches-data/payload_a.txt>"} (the 40-byte URL of the engine
#       benches), ROUNDS times DURATION seconds each with CONNECTIONS connections. Reports
#       for each: requests/s, p50/p99 latency, errors (non-2xx answers and socket errors);
#       then the ratio of /v1/qr's requests/s to /healthz's, the server's RSS, and the log
#       lines written and dropped.
#       Targets: /v1/qr >= 70% of /healthz, /v1/qr p99 <= 10 ms, 0 errors.
# soak: SOAK_SECS at about half the /v1/qr rate of a load run (or SOAK_RATE req/s), reporting
#       RSS at the start, after 1 minute and at the end. Target: no growth after 1 minute.
#
# Load tool: wrk (Debian's package, installed with apt-get when missing). Its event loop in C
# costs the client far less CPU per request than a Rust/tokio client, and here the client
# shares the machine's two cores with the server, so the less it takes the more the figures
# describe the server. Its Lua `done` hook gives exact counts and percentiles as JSON.
#
# Settings (environment): CONNECTIONS=64 THREADS=2 DURATION=8 (s) ROUNDS=4 SOAK_SECS=300
# SOAK_RATE BENCH_PORT=19080 LOG_LEVEL (default: the server's own, info) CARGO_TARGET_DIR.
# Output and the server log go to $OUT (default target/bench-http/).
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=${1:-load}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
DURATION=${DURATION:-8}
ROUNDS=${ROUNDS:-4}
SOAK_SECS=${SOAK_SECS:-300}
PORT=${BENCH_PORT:-19080}
TARGET=${CARGO_TARGET_DIR:-target}
OUT=${OUT:-$TARGET/bench-http}
BIN="$TARGET/release/qrlp"
BASE="http://127.0.0.1:$PORT"
# /metrics is off the public listener unless a token guards it.
export QRLP_METRICS_TOKEN=${QRLP_METRICS_TOKEN:-bench-metrics-token-0123456789}
PAYLOAD=$(cat benches-data/payload_a.txt)

case "$MODE" in load|soak|both) ;; *) echo "usage: $0 [load|soak|both]" >&2; exit 64 ;; esac
mkdir -p "$OUT"

if ! command -v wrk >/dev/null; then
    echo "== installing wrk (apt)"
    apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
echo "== building release"
cargo build --release -p qrlp-cli --quiet

# One Lua script for every run: method and body from the environment, a JSON summary at the
# end (latencies in microseconds).
cat > "$OUT/wrk.lua" <<'LUA'
local method = os.getenv("WRK_METHOD") or "GET"
local body = os.getenv("WRK_BODY")
local delay_ms = tonumber(os.getenv("WRK_DELAY_MS") or "0")
wrk.method = method
if body and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
if delay_ms > 0 then
  function delay() return delay_ms end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    latency.max))
end
LUA

SERVER_PID=
SAMPLER_PID=
DATA_DIR=$(mktemp -d)
cleanup() {
    [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null || true
    if [ -n "$SERVER_PID" ]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$DATA_DIR"
}
trap cleanup EXIT

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status"; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$SERVER_PID/status"; }

start_server() {
    local level=()
    [ -n "${LOG_LEVEL:-}" ] && level=(--log-level "$LOG_LEVEL")
    "$BIN" serve --host 127.0.0.1 --port "$PORT" --data-dir "$DATA_DIR" "${level[@]}" \
        2> "$OUT/server.log" &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        if curl -fsS "$BASE/healthz" >/dev/null 2>&1; then return 0; fi
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

# CPU time (user + system, in clock ticks of 1/100 s) the server has used so far.
cpu_ticks() { awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$SERVER_PID/stat"; }

# wrk_run NAME SECONDS CONNECTIONS [DELAY_MS]: runs the route NAME (healthz|qr), writes the
# JSON summary to $OUT/NAME-*.json (with the server's CPU ticks over the run as
# "cpu_ticks") and prints its path.
wrk_run() {
    local name=$1 secs=$2 conns=$3 delay=${4:-0} file before
    file="$OUT/$name-$(date +%s%N).json"
    before=$(cpu_ticks)
    if [ "$name" = qr ]; then
        WRK_METHOD=POST WRK_BODY="{\"url\": \"$PAYLOAD\"}" WRK_DELAY_MS=$delay \
            wrk -t "$THREADS" -c "$conns" -d "${secs}s" --timeout 5s -s "$OUT/wrk.lua" "$BASE/v1/qr" \
            | tail -1 > "$file"
    else
        WRK_METHOD=GET WRK_BODY= WRK_DELAY_MS=$delay \
            wrk -t "$THREADS" -c "$conns" -d "${secs}s" --timeout 5s -s "$OUT/wrk.lua" "$BASE/healthz" \
            | tail -1 > "$file"
    fi
    python3 - "$file" "$(( $(cpu_ticks) - before ))" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); r["cpu_ticks"] = int(sys.argv[2])
json.dump(r, open(sys.argv[1], "w"))
PY
    echo "$file"
}

# report LABEL FILE...: one line per file and, with several, their total.
report() {
    python3 - "$@" <<'PY'
import json, sys
label, files = sys.argv[1], sys.argv[2:]
for f in files:
    r = json.load(open(f))
    errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    rps = r["requests"] / (r["duration_us"] / 1e6)
    cpu = r.get("cpu_ticks", 0) * 10_000 / max(r["requests"], 1)
    print(f"{label}: {rps:,.0f} req/s, p50 {r['p50_us']/1000:.2f} ms, p99 {r['p99_us']/1000:.2f} ms, "
          f"p99.9 {r['p999_us']/1000:.2f} ms, {r['requests']:,} requests, errors {errors} "
          f"(non-2xx {r['status']}, socket {errors - r['status']}), server CPU {cpu:.1f} us/request")
PY
}

# summary HEALTH_FILES... -- QR_FILES...: the ratio and the targets.
summary() {
    python3 - "$@" <<'PY'
import json, sys
args = sys.argv[1:]
cut = args.index("--")
health = [json.load(open(f)) for f in args[:cut]]
qr = [json.load(open(f)) for f in args[cut + 1:]]
def rps(runs): return sum(r["requests"] for r in runs) / sum(r["duration_us"] / 1e6 for r in runs)
def errors(runs): return sum(r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"] for r in runs)
h, q = rps(health), rps(qr)
ratio = q / h
p99 = max(r["p99_us"] for r in qr) / 1000
errs = errors(health) + errors(qr)
print(f"/healthz {h:,.0f} req/s, POST /v1/qr {q:,.0f} req/s over {len(qr)} rounds each: "
      f"ratio {ratio:.1%}; /v1/qr p99 (worst round) {p99:.2f} ms; errors {errs}")
# How much the machine moved the figures: the ratio of each round on its own.
print("ratio by round: " + ", ".join(f"{rps([b]) / rps([a]):.1%}" for a, b in zip(health, qr)))
def cpu(runs): return sum(r.get("cpu_ticks", 0) for r in runs) * 10_000 / sum(r["requests"] for r in runs)
print(f"server CPU per request: /healthz {cpu(health):.1f} us, POST /v1/qr {cpu(qr):.1f} us "
      f"(the machine's noise moves this much less than requests/s)")
ok = ratio >= 0.70 and p99 <= 10 and errs == 0
print(f"targets (ratio >= 70%, p99 <= 10 ms, 0 errors): {'met' if ok else 'NOT met'}")
PY
}

start_server
echo "== server pid $SERVER_PID, $(nproc) cores, default settings (log: ${LOG_LEVEL:-info}), RSS at start $(rss_kb) kB"
# Warm-up: connections, allocator and caches, both routes.
wrk_run healthz 2 "$CONNECTIONS" > /dev/null
wrk_run qr 2 "$CONNECTIONS" > /dev/null

if [ "$MODE" = load ] || [ "$MODE" = both ]; then
    echo "== load: $CONNECTIONS connections, $THREADS wrk threads, $ROUNDS rounds of ${DURATION}s per route, in counterbalanced order"
    start_sampler "$OUT/load-rss.txt" $(( 2 * ROUNDS * (DURATION + 2) + 5 ))
    health_files=()
    qr_files=()
    # Counterbalanced order (healthz, qr, qr, healthz, ...): a drift of the machine's speed
    # over the run, or what one phase leaves behind for the next, falls on both routes alike.
    run_health() { f=$(wrk_run healthz "$DURATION" "$CONNECTIONS"); health_files+=("$f"); report "GET /healthz" "$f"; }
    run_qr() { f=$(wrk_run qr "$DURATION" "$CONNECTIONS"); qr_files+=("$f"); report "POST /v1/qr " "$f"; }
    for round in $(seq 1 "$ROUNDS"); do
        if [ $((round % 2)) -eq 1 ]; then run_health; run_qr; else run_qr; run_health; fi
    done
    stop_sampler
    summary "${health_files[@]}" -- "${qr_files[@]}"
    peak=$(sort -k2 -n "$OUT/load-rss.txt" | tail -1 | cut -d' ' -f2)
    echo "server RSS: peak sampled ${peak} kB ($((peak / 1024)) MiB), VmHWM $(hwm_kb) kB"
    cp "${qr_files[-1]}" "$OUT/load.json"
fi

if [ "$MODE" = soak ] || [ "$MODE" = both ]; then
    if [ -z "${SOAK_RATE:-}" ]; then
        if [ ! -f "$OUT/load.json" ]; then
            echo "soak needs SOAK_RATE or a load run first (mode both)" >&2
            exit 64
        fi
        SOAK_RATE=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(int(r["requests"]/(r["duration_us"]/1e6)/2))' "$OUT/load.json")
    fi
    # wrk has no rate option: each connection waits DELAY ms after each answer.
    delay=$(( CONNECTIONS * 1000 / SOAK_RATE ))
    [ "$delay" -lt 1 ] && delay=1
    echo "== soak: about ${SOAK_RATE} req/s (each of $CONNECTIONS connections pausing ${delay} ms) for ${SOAK_SECS}s"
    start_sampler "$OUT/soak-rss.txt" $((SOAK_SECS + 5))
    rss_start=$(rss_kb)
    wrk_run qr "$SOAK_SECS" "$CONNECTIONS" "$delay" > "$OUT/soak.path" &
    WRK_PID=$!
    sleep 60
    rss_1min=$(rss_kb)
    wait "$WRK_PID"
    rss_end=$(rss_kb)
    stop_sampler
    report "soak" "$(cat "$OUT/soak.path")"
    echo "soak: server RSS start ${rss_start} kB, after 1 min ${rss_1min} kB, end ${rss_end} kB, VmHWM $(hwm_kb) kB"
fi

lines=$(wc -l < "$OUT/server.log")
dropped=$(curl -fsS -H "Authorization: Bearer $QRLP_METRICS_TOKEN" "$BASE/metrics" | awk '/^qrlp_log_lines_dropped_total/ {print $2}')
echo "log: ${lines} lines in $OUT/server.log, ${dropped:-?} dropped (qrlp_log_lines_dropped_total)"
