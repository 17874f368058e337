#!/usr/bin/env bash
# Where a request's time goes, counted in instructions: runs the release `qrlp serve` (default
# settings) under valgrind's callgrind, sends light wrk load to one route at a time, and
# prints user-space instructions per request for each, then the costliest functions
# (inclusive) of POST /v1/qr. Instruction counts do not depend on what else the machine is
# doing, so they compare builds where timings on a shared machine cannot. Kernel time
# (sockets) is not counted; `perf record -g -p PID` during scripts/bench-http.sh shows it.
#
#   scripts/profile-http.sh        (PROFILE_PORT=19090, PHASE_SECS=8; valgrind and wrk from apt)
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${PROFILE_PORT:-19090}
SECS=${PHASE_SECS:-8}
TARGET=${CARGO_TARGET_DIR:-target}
OUT=${OUT:-$TARGET/profile-http}
BASE="http://127.0.0.1:$PORT"
PAYLOAD=$(cat benches-data/payload_a.txt)

need=()
command -v valgrind >/dev/null || need+=(valgrind)
command -v wrk >/dev/null || need+=(wrk)
if ((${#need[@]})); then apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; fi
cargo build --release -p qrlp-cli --quiet
rm -rf "$OUT" && mkdir -p "$OUT"
DATA_DIR=$(mktemp -d)

valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.%p.out" \
    "$TARGET/release/qrlp" serve --host 127.0.0.1 --port "$PORT" --data-dir "$DATA_DIR" \
    2> "$OUT/server.log" &
VG_PID=$!
cleanup() { kill -TERM "$VG_PID" 2>/dev/null || true; wait "$VG_PID" 2>/dev/null || true; rm -rf "$DATA_DIR"; }
trap cleanup EXIT
for _ in $(seq 1 120); do curl -fsS "$BASE/healthz" >/dev/null 2>&1 && break; sleep 0.5; done

cat > "$OUT/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"url": "$PAYLOAD"}'
wrk.headers["Content-Type"] = "application/json"
LUA
ETAG=$(curl -fsS -D - -o /dev/null -X POST -H 'content-type: application/json' \
    -d "{\"url\": \"$PAYLOAD\"}" "$BASE/v1/qr" | awk -F': ' 'tolower($1)=="etag" {print $2}' | tr -d '\r')
{ cat "$OUT/post.lua"; echo "wrk.headers[\"If-None-Match\"] = '$ETAG'"; } > "$OUT/post304.lua"

# Warm-up, then one measured phase per route: zero the counters, load, dump.
wrk -t1 -c4 -d3s "$BASE/healthz" >/dev/null
wrk -t1 -c4 -d3s -s "$OUT/post.lua" "$BASE/v1/qr" >/dev/null
phase() { # KEY LABEL wrk-args...
    local name=$1 label=$2; shift 2
    callgrind_control -z "$VG_PID" >/dev/null
    local n
    n=$(wrk -t1 -c4 -d"${SECS}s" "$@" | awk '/requests in/ {print $1}')
    callgrind_control -d "$name" "$VG_PID" >/dev/null
    local file
    file=$(grep -l "^desc: Trigger: dump $name\$" "$OUT"/callgrind.*.out.* | head -1)
    local total
    total=$(awk '/^summary:/ {print $2}' "$file")
    printf '%-30s %9d requests %10d instructions/request\n' "$label" "$n" $((total / n))
    echo "$n $file" > "$OUT/$name.phase"
}
echo "== user-space instructions per request (callgrind, default settings)"
phase healthz "GET /healthz" "$BASE/healthz"
phase qr304 "POST /v1/qr, 304 (no image)" -s "$OUT/post304.lua" "$BASE/v1/qr"
phase qr "POST /v1/qr" -s "$OUT/post.lua" "$BASE/v1/qr"

read -r n file < "$OUT/qr.phase"
echo "== POST /v1/qr: costliest functions, inclusive, thousands of instructions per request"
callgrind_annotate --inclusive=yes "$file" 2>/dev/null \
    | grep -E 'qrlp_|tracing_subscriber::fmt::Subscriber.*event|new_span|sha2|serde_json::de::from_slice|malloc\.c:(malloc|free)|hyper::proto::h1::role::Server as .*::(parse|encode)' \
    | grep -vE "'2|tests" | head -25 \
    | awk -v n="$n" '{v=$1; gsub(",","",v); $1=""; $2=""; sub(/^ +/, ""); sub(/^[0-9.]+%\) +/, ""); sub(/ \[.*$/, ""); printf "%8.1fk  %s\n", v/n/1000, $0}'
