#!/usr/bin/env bash
# Load test of the short link `GET /r/{slug}` (issue 13) on loopback, release build, DEFAULT
# settings (SQLite, log level info, one log line per request to a file):
#
#   scripts/bench-redirect.sh
#
# 1. Creates CODES tracked codes (default 10,000) through the API.
# 2. On one server, in one run, alternates GET /healthz (the server's ceiling) and
#    GET /r/{slug}?q over random slugs of those codes, ROUNDS x DURATION s each, with wrk.
#    Targets: redirects >= 20,000/s, >= 60% of /healthz, p99 <= 10 ms, 0 errors.
# 3. After the recorder's last write: scans recorded (rows of qr_scans) == 302 responses the
#    server answered (its qrlp_http_requests_total for /r/{slug}); wrk's completed count is
#    shown beside it (lower by the requests in flight when wrk stopped).
# 4. A code with SCANS (default 1,000,000) scans spread over the last 365 days (written with
#    sqlite3, with their quarter-hour roll-ups and totals, as a roll-up step writes them;
#    the newest 10 s old, behind the server's roll-up mark): the 1-year timeline in
#    Europe/Paris, 20 requests. Target: <= 50 ms.
# 5. kill -9 during redirect load, restart: scans recorded in that phase <= 302s wrk received,
#    and the gap within the documented window (the scans of the last second).
#
# Settings (environment): CODES=10000 SCANS=1000000 CONNECTIONS=64 THREADS=2 DURATION=8
# ROUNDS=2 BENCH_PORT=19480 (metrics listener on the next port) QRLP_BIN (default target/release/qrlp, built) OUT.
set -euo pipefail
cd "$(dirname "$0")/.."

CODES=${CODES:-10000}
SCANS=${SCANS:-1000000}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
DURATION=${DURATION:-8}
ROUNDS=${ROUNDS:-2}
PORT=${BENCH_PORT:-19480}
TARGET=${CARGO_TARGET_DIR:-target}
OUT=${OUT:-$TARGET/bench-redirect}
BASE="http://127.0.0.1:$PORT"
# The metrics listener is off by default; it is on its own port here only to read the
# server's count of 302 answers (the redirect path records metrics either way).
METRICS_ADDR="127.0.0.1:$((PORT + 1))"
mkdir -p "$OUT"
rm -f "$OUT"/*.json

for tool in wrk sqlite3; do
    if ! command -v "$tool" >/dev/null; then
        apt-get update -qq && apt-get install -y -qq "$tool" >/dev/null
    fi
done
if [ -z "${QRLP_BIN:-}" ]; then
    echo "== building release"
    cargo build --release -p qrlp-cli --quiet
    QRLP_BIN="$TARGET/release/qrlp"
fi

cat > "$OUT/wrk.lua" <<'LUA'
local paths = {}
local file = os.getenv("WRK_PATHS")
if file and file ~= "" then
  for line in io.lines(file) do paths[#paths + 1] = line end
end
function init(args) math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000) end
if #paths > 0 then
  function request() return wrk.format("GET", paths[math.random(#paths)]) end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
LUA

SERVER_PID=
DATA_DIR=$(mktemp -d)
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$DATA_DIR"
}
trap cleanup EXIT
DB="$DATA_DIR/qrlp.db"

start_server() {
    QRLP_METRICS_LISTEN=$METRICS_ADDR "$QRLP_BIN" serve --host 127.0.0.1 --port "$PORT" \
        --data-dir "$DATA_DIR" 2>> "$OUT/server.log" &
    SERVER_PID=$!
    for _ in $(seq 1 200); do
        if curl -fsS "$BASE/healthz" >/dev/null 2>&1; then return 0; fi
        sleep 0.05
    done
    echo "server did not start; see $OUT/server.log" >&2
    exit 1
}

# wrk_run NAME SECONDS [PATHS_FILE]: prints the path of the JSON summary.
# CPU time (user + system, in clock ticks of 1/100 s) the server has used so far.
cpu_ticks() { awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$SERVER_PID/stat"; }

# wrk_run NAME SECONDS [PATHS_FILE]: prints the path of the JSON summary, which also holds
# the server's CPU ticks over the run ("cpu_ticks": for redirects, recording included).
wrk_run() {
    local name=$1 secs=$2 paths=${3:-} file before
    file="$OUT/$name-$(date +%s%N).json"
    before=$(cpu_ticks)
    if [ -n "$paths" ]; then
        WRK_PATHS=$paths wrk -t "$THREADS" -c "$CONNECTIONS" -d "${secs}s" --timeout 5s \
            -s "$OUT/wrk.lua" "$BASE/" | tail -1 > "$file"
    else
        WRK_PATHS= wrk -t "$THREADS" -c "$CONNECTIONS" -d "${secs}s" --timeout 5s \
            -s "$OUT/wrk.lua" "$BASE/healthz" | tail -1 > "$file"
    fi
    python3 - "$file" "$(( $(cpu_ticks) - before ))" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); r["cpu_ticks"] = int(sys.argv[2])
json.dump(r, open(sys.argv[1], "w"))
PY
    echo "$file"
}

report() {
    python3 - "$@" <<'PY'
import json, sys
label, f = sys.argv[1], sys.argv[2]
r = json.load(open(f))
errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
rps = r["requests"] / (r["duration_us"] / 1e6)
print(f"{label}: {rps:,.0f} req/s, p50 {r['p50_us']/1000:.2f} ms, p99 {r['p99_us']/1000:.2f} ms, "
      f"{r['requests']:,} requests, errors {errors}")
PY
}

served_302() {
    curl -fsS "http://$METRICS_ADDR/metrics" | awk '/^qrlp_http_requests_total\{route="\/r\/\{slug\}",method="GET",status="302"\}/ {print $2}'
}
recorded() { sqlite3 -cmd ".timeout 5000" "$DB" "SELECT COUNT(*) FROM qr_scans;"; }

: > "$OUT/server.log"
start_server
KEY=$("$QRLP_BIN" admin bootstrap --org Bench --email bench@bench.example --plan enterprise \
    --data-dir "$DATA_DIR" 2>/dev/null | grep -o 'qrlp_[A-Za-z0-9_]*' | head -1)
ORG=$(curl -fsS -H "x-api-key: $KEY" "$BASE/api/v1/organizations" | python3 -c 'import json,sys; print(json.load(sys.stdin)["organizations"][0]["id"])')

echo "== creating $CODES codes"
t0=$(date +%s.%N)
python3 - "$BASE" "$ORG" "$KEY" "$CODES" "$OUT/paths.txt" <<'PY'
import http.client, json, sys, threading, urllib.parse
base, org, key, n, out = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
u = urllib.parse.urlparse(base)
slugs = [None] * n
def work(start, step):
    c = http.client.HTTPConnection(u.hostname, u.port)
    for i in range(start, n, step):
        body = json.dumps({"label": f"code {i}", "target_url": f"https://example.com/p/{i}"})
        c.request("POST", f"/api/organizations/{org}/qr-codes", body,
                  {"x-api-key": key, "content-type": "application/json"})
        r = c.getresponse(); data = r.read()
        assert r.status == 201, (r.status, data)
        slugs[i] = json.loads(data)["slug"]
threads = [threading.Thread(target=work, args=(k, 4)) for k in range(4)]
for t in threads: t.start()
for t in threads: t.join()
with open(out, "w") as f:
    for s in slugs: f.write(f"/r/{s}?q\n")
PY
echo "   done in $(python3 -c "import time; print(f'{time.time() - $t0:.1f}')") s"

echo "== server pid $SERVER_PID, $(nproc) cores, default settings, SQLite"
wrk_run healthz 2 > /dev/null
wrk_run redirect 2 "$OUT/paths.txt" > /dev/null
echo "== load: $CONNECTIONS connections, $THREADS wrk threads, $ROUNDS rounds of ${DURATION}s per route"
health=()
redirect=()
for _ in $(seq 1 "$ROUNDS"); do
    f=$(wrk_run healthz "$DURATION"); health+=("$f"); report "GET /healthz  " "$f"
    f=$(wrk_run redirect "$DURATION" "$OUT/paths.txt"); redirect+=("$f"); report "GET /r/{slug} " "$f"
done
python3 - "${health[@]}" -- "${redirect[@]}" > "$OUT/summary.txt" <<'PY'
import json, sys
a = sys.argv[1:]; cut = a.index("--")
h = [json.load(open(f)) for f in a[:cut]]; r = [json.load(open(f)) for f in a[cut + 1:]]
rps = lambda runs: sum(x["requests"] for x in runs) / sum(x["duration_us"] / 1e6 for x in runs)
err = lambda runs: sum(x["connect"] + x["read"] + x["write"] + x["status"] + x["timeout"] for x in runs)
hr, rr = rps(h), rps(r)
p99 = max(x["p99_us"] for x in r) / 1000
print(f"/healthz {hr:,.0f} req/s, /r/{{slug}} {rr:,.0f} req/s: ratio {rr / hr:.1%}; "
      f"redirect p99 (worst round) {p99:.2f} ms; errors {err(h) + err(r)}")
cpu = lambda runs: sum(x.get("cpu_ticks", 0) for x in runs) * 10_000 / sum(x["requests"] for x in runs)
print(f"server CPU per request: /healthz {cpu(h):.1f} us, /r/{{slug}} {cpu(r):.1f} us (recording included)")
ok = rr >= 20000 and rr / hr >= 0.60 and p99 <= 10 and err(h) + err(r) == 0
print(f"targets (>= 20,000/s, >= 60% of /healthz, p99 <= 10 ms, 0 errors): {'met' if ok else 'NOT met'}")
print(f"RATE {rr:.0f}")
PY
grep -v '^RATE' "$OUT/summary.txt"
RATE=$(awk '/^RATE/ {print $2}' "$OUT/summary.txt")

# The recorder writes every 250 ms; wait until the count stops moving (at most 30 s) and say
# how long it took: a writer that fell behind under load shows here.
t0=$(date +%s.%N)
rec=$(recorded); last=-1; still=0
for _ in $(seq 1 60); do
    sleep 0.5
    served=$(served_302)
    rec=$(recorded)
    if [ "$rec" = "$last" ]; then still=$((still + 1)); else still=0; fi
    [ "$rec" = "$served" ] && break
    [ "$still" -ge 4 ] && break
    last=$rec
done
echo "   the recorder's count settled $(python3 -c "import time; print(f'{time.time() - $t0:.1f}')") s after the load"
wrk_total=$(python3 -c 'import json,sys; print(sum(json.load(open(f))["requests"] for f in sys.argv[1:]))' "$OUT"/redirect-*.json)
echo "== counting: server answered $served redirects (302), recorded $rec scans, wrk completed $wrk_total"
[ "$served" = "$rec" ] && echo "recorded == 302s answered: yes" || echo "recorded == 302s answered: NO"
# The recorder's own figures: batch writes, the longest one, redirects held back by the
# back-pressure (see crates/qrlp-server/src/tracking/recorder.rs) and the longest roll-up step.
curl -fsS "http://$METRICS_ADDR/metrics" > "$OUT/metrics.txt"
python3 - "$OUT/metrics.txt" <<'PY'
import sys
m = {}
for line in open(sys.argv[1]):
    if line.startswith("qrlp_scan"):
        name, value = line.split()
        m[name] = float(value)
g = lambda name: m.get(name, 0.0)
w = g("qrlp_scan_writes_total")
print(f"   recorder: {w:,.0f} writes, mean {g('qrlp_scan_write_seconds_total') / max(w, 1) * 1000:.1f} ms, "
      f"longest {g('qrlp_scan_write_longest_seconds') * 1000:.0f} ms; "
      f"{g('qrlp_scan_backpressure_waits_total'):,.0f} redirects held back "
      f"({g('qrlp_scan_backpressure_wait_seconds_total'):.2f} s in all); "
      f"{g('qrlp_scan_rollup_steps_total'):,.0f} roll-up steps, longest "
      f"{g('qrlp_scan_rollup_longest_seconds') * 1000:.0f} ms")
PY

echo "== 1-year timeline of a code with $SCANS scans"
YEAR=$(curl -fsS -H "x-api-key: $KEY" -H 'content-type: application/json' \
    -d '{"label":"year","target_url":"https://example.com/year"}' \
    "$BASE/api/organizations/$ORG/qr-codes" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
HEX=$(echo "$YEAR" | tr -d '-')
NOW=$(date +%s)
t0=$(date +%s.%N)
sqlite3 "$DB" <<SQL
.timeout 10000
BEGIN IMMEDIATE;
CREATE TEMP TABLE t(s INTEGER);
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $SCANS - 1)
INSERT INTO t SELECT $NOW - 10 - (i * 31536000 / $SCANS) FROM n;
INSERT INTO qr_scans (id, qr_code_id, scanned_at, address, device, os, browser, referrer, source, visitor, first_visit)
SELECT randomblob(16), x'$HEX', strftime('%Y-%m-%dT%H:%M:%S', s, 'unixepoch') || '.000000Z', '203.0.113.0',
       'mobile', 'iPhone', 'Safari', '', 'qr', randomblob(16), 1 FROM t;
INSERT INTO qr_scan_buckets (qr_code_id, bucket_start, scans, visitors, bots)
SELECT x'$HEX', (s / 900) * 900, COUNT(*), COUNT(*), 0 FROM t GROUP BY s / 900;
INSERT INTO qr_code_stats (qr_code_id, scans, unique_visitors, bots, last_scan_at)
VALUES (x'$HEX', $SCANS, $SCANS, 0, NULL);
COMMIT;
SQL
echo "   written in $(python3 -c "import time; print(f'{time.time() - $t0:.1f}')") s ($(sqlite3 "$DB" "SELECT COUNT(*) FROM qr_scan_buckets WHERE qr_code_id = x'$HEX'") buckets)"
times=()
for _ in $(seq 1 20); do
    times+=("$(curl -fsS -o "$OUT/timeline.json" -w '%{time_total}' -H "x-api-key: $KEY" \
        "$BASE/api/organizations/$ORG/qr-codes/$YEAR/timeline?period=1y&tz=Europe/Paris")")
done
python3 - "$OUT/timeline.json" "$SCANS" "${times[@]}" <<'PY'
import json, sys, statistics
doc = json.load(open(sys.argv[1])); want = int(sys.argv[2])
t = sorted(float(x) * 1000 for x in sys.argv[3:])
print(f"1y timeline: {len(doc['days'])} days, {doc['totals']['scans']:,} scans "
      f"(of {want:,}; the oldest fall before the first local day); "
      f"median {statistics.median(t):.1f} ms, max {t[-1]:.1f} ms over {len(t)} requests")
print(f"target (<= 50 ms): {'met' if t[-1] <= 50 else 'NOT met'}")
PY

echo "== kill -9 during redirect load"
before=$(recorded)
WRK_PATHS="$OUT/paths.txt" wrk -t "$THREADS" -c "$CONNECTIONS" -d 6s --timeout 2s -s "$OUT/wrk.lua" "$BASE/" \
    | tail -1 > "$OUT/crash.json" &
WRK_PID=$!
sleep 3
kill -9 "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=
wait "$WRK_PID" || true
start_server
after=$(recorded)
python3 - "$OUT/crash.json" "$before" "$after" "$RATE" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); before, after = int(sys.argv[2]), int(sys.argv[3])
answered = r["requests"]
rec = after - before
rate = float(sys.argv[4])
print(f"302s received before the kill: {answered:,}; scans recorded: {rec:,}; lost {answered - rec:,} "
      f"(about {(answered - rec) / rate:.2f} s at the load phase's {rate:,.0f}/s)")
ok = rec <= answered and answered - rec <= rate * 1.0
print(f"target (recorded <= answered, gap <= 1 s of scans): {'met' if ok else 'NOT met'}")
PY
echo "log: $(wc -l < "$OUT/server.log") lines in $OUT/server.log"
