#!/usr/bin/env bash
# Issue 12: two `qrlp serve` nodes sharing the real PostgreSQL and Redis. A channel is
# created on node A (which takes its lease); the official Socket.IO client connected to
# node B receives A's frames; `kill -9` of A; frames resume from B within two intervals,
# and the client sees strictly increasing sequence numbers throughout.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${QRLP_BIN:?QRLP_BIN must name the release binary (.ci/run sets it)}"
pg="${QRLP_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
redis_url="${QRLP_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
target="${CARGO_TARGET_DIR:-target}"
js="$target/ci-live-js"
port_a=19320
port_b=19321
interval=1

mkdir -p "$js"
cp scripts/ci/live-js/package.json scripts/ci/live-js/package-lock.json "$js/"
if [ ! -d "$js/node_modules/socket.io-client" ]; then
    (cd "$js" && timeout 300 npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
fi
cp scripts/ci/live_scaleout_client.mjs "$js/"

db="qrlp_live_scaleout_$$"
base="${pg%/*}"
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    psql "$pg" -q -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
psql "$pg" -q -c "CREATE DATABASE $db" >/dev/null
export DATABASE_URL="$base/$db"
export QRLP_REDIS_URL="$redis_url"
export QRLP_LOG_LEVEL=info
# The nodes share one data key (each channel's identity is sealed with it) and read
# /metrics with a bearer token (it is not public otherwise).
QRLP_STORAGE_ENCRYPTION_KEY="$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
export QRLP_STORAGE_ENCRYPTION_KEY
# At least 16 characters whatever the PID (the configuration refuses shorter tokens).
metrics_token="ci-metrics-token-$$"
export QRLP_METRICS_TOKEN="$metrics_token"

"$QRLP_BIN" migrate >/dev/null
key=$("$QRLP_BIN" admin bootstrap --org "Scale $$" --email "ops-$$@example.com" 2>/dev/null | tail -1)

"$QRLP_BIN" serve --port "$port_a" --data-dir "$work/a" >"$work/a.log" 2>&1 &
pid_a=$!; pids+=("$pid_a")
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port_a/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
created=$(curl -sf -X POST "http://127.0.0.1:$port_a/api/v1/live/channels" -H "x-api-key: $key" \
    -H 'content-type: application/json' -d "{\"name\":\"stage\",\"interval_secs\":$interval,\"frame_format\":\"compact\"}")
id=$(echo "$created" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
token=$(echo "$created" | python3 -c 'import json,sys; print(json.load(sys.stdin)["socket_auth"]["channel"])')
sleep 1.5   # node A holds the lease

"$QRLP_BIN" serve --port "$port_b" --data-dir "$work/b" >"$work/b.log" 2>&1 &
pid_b=$!; pids+=("$pid_b")
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port_b/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
sleep 3    # node B picks up the channel (it looks every 2 s)

timeout 60 node "$js/live_scaleout_client.mjs" "http://127.0.0.1:$port_b" "$token" 14 >"$work/client.log" &
client=$!
sleep 5
frames_metric() {
    curl -sf -H "authorization: Bearer $metrics_token" "http://127.0.0.1:$1/metrics" | awk -v id="$id" '$1 ~ "qrlp_live_frames_generated_total" && index($1, id) { print $2 }'
}
gen_a=$(frames_metric "$port_a"); gen_b=$(frames_metric "$port_b")
kill_ms=$(python3 -c 'import time; print(int(time.time()*1000))')
kill -9 "$pid_a"
echo "node A (pid $pid_a) killed with -9 at $kill_ms; frames made so far: A=${gen_a:-?} B=${gen_b:-?}"
wait "$client" || true
# A frame of the channel verifies offline with qrlp verify and the channel's published keys.
curl -sf "http://127.0.0.1:$port_b/live/$token/.well-known/qrlp-keys.json" >"$work/keys.json"
frame=$(curl -sf "http://127.0.0.1:$port_b/live/$token/api/qr/current" | python3 -c 'import json,sys; print(json.load(sys.stdin)["frame"])')
if "$QRLP_BIN" verify --keys "$work/keys.json" "$frame"; then
    echo "ok   a channel frame verifies offline with qrlp verify --keys (the channel's key set)"
else
    echo "FAIL qrlp verify --keys refused a channel frame"; exit 1
fi
after_b=$(frames_metric "$port_b")

python3 - "$work/client.log" "$kill_ms" "$interval" "${gen_a:-0}" "${gen_b:-0}" "${after_b:-0}" <<'PY'
import sys
log, kill_ms, interval = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
gen_a, gen_b, after_b = (int(float(x)) for x in sys.argv[4:7])
frames = []
for line in open(log):
    parts = line.split()
    if len(parts) == 3 and parts[1].isdigit():
        frames.append((int(parts[0]), int(parts[1])))
fail = []
def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        fail.append(what)
before = [f for f in frames if f[0] < kill_ms]
after = [f for f in frames if f[0] >= kill_ms]
check(len(before) >= 3, "the client on node B got %d frames before the kill" % len(before))
check(gen_a >= 3 and gen_b == 0, "those frames were generated on node A (A made %d, B %d)" % (gen_a, gen_b))
check(len(after) >= 3, "frames resumed after the kill (%d frames)" % len(after))
if after:
    gap = (after[0][0] - kill_ms) / 1000
    last = (after[0][0] - before[-1][0]) / 1000 if before else float("nan")
    check(gap <= 2 * interval, "first frame %.2f s after kill -9 (<= two intervals = %.1f s); %.2f s after the last frame before it" % (gap, 2 * interval, last))
check(after_b > 0, "node B generates now (%d frames)" % after_b)
seqs = [s for _, s in frames]
check(all(b > a for a, b in zip(seqs, seqs[1:])), "sequence numbers strictly increasing across the failover (%d frames)" % len(seqs))
if fail:
    print(open(log).read())
    sys.exit(1)
print("12-live-scaleout: all passed")
PY
