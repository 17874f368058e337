#!/usr/bin/env bash
# Device fleet end to end (issue 14) with the release binary and real processes:
#  A. one server on SQLite; 20 devices enrolled with `qrlp device enroll` (each checks the
#     ML-KEM-768 key exchange), 20 `qrlp device agent`s heartbeating every second; 5 are
#     stopped: exactly those 5 turn offline within three intervals (plus one sweep), the
#     other 15 stay online, and 5 `device.offline` events are recorded and delivered as
#     webhooks to a local endpoint, once each.
#  B. two servers sharing one PostgreSQL database, agents split between them; 5 stopped:
#     each of the 5 goes offline exactly once although both servers sweep.
# Ports 19500-19502 on 127.0.0.1. Bounded: about 40 s. FLEET_CI_RUN_SECS sets how long the
# agents run before 5 are stopped (default 6).
set -euo pipefail
cd "$(dirname "$0")/../.."

: "${QRLP_BIN:?QRLP_BIN must name the release binary (.ci/run sets it)}"
PG="${QRLP_TEST_POSTGRES_URL:-}"
RUN_SECS="${FLEET_CI_RUN_SECS:-6}"
INTERVAL=1
work="$(mktemp -d)"
pids=()
db=""

cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ -n "$db" ]; then psql -q "$PG" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }

# start_server NAME PORT [ENV=VALUE...]: a server in the background, ready on return.
start_server() {
    local name="$1" port="$2"
    shift 2
    mkdir -p "$work/$name"
    env QRLP_SERVER_HOST=127.0.0.1 QRLP_SERVER_PORT="$port" \
        QRLP_STORAGE_DATA_DIR="$work/$name" QRLP_LOG_LEVEL=warn \
        QRLP_FLEET_UPDATE_INTERVAL_SECS="$INTERVAL" QRLP_FLEET_OFFLINE_CHECK_INTERVAL_MS=250 \
        QRLP_WEBHOOKS_ALLOW_PRIVATE_TARGETS=true QRLP_WEBHOOKS_POLL_INTERVAL_MS=100 \
        "$@" "$QRLP_BIN" serve >"$work/$name.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do
        curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    cat "$work/$name.log" >&2
    fail "server $name did not start"
}

# receiver PORT FILE: a local webhook endpoint appending each body it gets as one line.
receiver() {
    python3 -c '
import http.server, sys
out, port = sys.argv[1], int(sys.argv[2])
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        with open(out, "ab") as f:
            f.write(body + b"\n")
        self.send_response(200)
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
' "$2" "$1" &
    pids+=($!)
    : >"$2"
}

# hooked_offline FILE -> sorted device ids of the device.offline webhooks received
hooked_offline() {
    python3 -c '
import json, sys
ids = [json.loads(l)["data"]["device_id"] for l in open(sys.argv[1]) if l.strip()
       and json.loads(l)["event"] == "device.offline"]
print("\n".join(sorted(ids)))
' "$1"
}

api() { # api METHOD URL KEY [BODY]
    curl -fsS -X "$1" "$2" -H "x-api-key: $3" -H 'content-type: application/json' ${4:+-d "$4"}
}

# enroll_and_run BASE KEY INDEX: enroll device INDEX against BASE and start its agent.
enroll_and_run() {
    local base="$1" key="$2" i="$3" token out
    token="$(api POST "$base/api/v1/devices/enrollment-tokens" "$key" '{}' | json 'd["token"]')"
    out="$("$QRLP_BIN" device enroll --server "$base" --token "$token" --dir "$work/dev$i" --name "agent-$i" --type ci)"
    [ "$(echo "$out" | json 'd["key_exchange"]["shared_secret_agreed"]')" = "True" ] \
        || fail "device $i: ML-KEM-768 key exchange did not agree: $out"
    echo "$out" | json 'd["device_id"]' >"$work/dev$i.id"
    "$QRLP_BIN" device agent --dir "$work/dev$i" --interval "$INTERVAL" 2>>"$work/agents.log" &
    agent_pid[$i]=$!
    pids+=($!)
}

ids_with_status() { # ids_with_status BASE KEY STATUS -> sorted ids
    api GET "$1/api/v1/devices?status=$3&size=100" "$2" | json '"\n".join(sorted(x["id"] for x in d["devices"]))'
}

offline_events() { # offline_events BASE KEY -> sorted device ids of device.offline audit events
    api GET "$1/api/v1/security/audit?size=100" "$2" \
        | json '"\n".join(sorted(e["target_id"] for e in d["events"] if e["action"]=="device.offline"))'
}

# check_offline BASE KEY STOPPED_IDS_FILE PHASE HOOKS_FILE
check_offline() {
    local base="$1" key="$2" want="$3" phase="$4" hooks="$5" start now got
    start=$(date +%s%N)
    # Three missed intervals after the last heartbeat, plus one sweep period and slack.
    for _ in $(seq 60); do
        got="$(ids_with_status "$base" "$key" offline)"
        [ "$got" = "$(cat "$want")" ] && break
        sleep 0.1
    done
    now=$(date +%s%N)
    [ "$got" = "$(cat "$want")" ] || fail "$phase: offline devices are [$got], want [$(cat "$want" | tr '\n' ' ')]"
    local ms=$(( (now - start) / 1000000 )) limit=$(( 3 * INTERVAL * 1000 + 250 + 1000 ))
    # A device is offline three intervals after its last heartbeat (sent up to one interval
    # before the stop), found by the next sweep (250 ms); 1 s of slack for the polling.
    [ "$ms" -le "$limit" ] || fail "$phase: offline only after $ms ms (limit $limit ms)"
    echo "$phase: the 5 stopped devices were offline $ms ms after the stop (3 intervals after their last heartbeat + one 250 ms sweep; limit $limit ms)"
    [ "$(ids_with_status "$base" "$key" online | wc -l)" = 15 ] || fail "$phase: not 15 devices online"
    sleep 1.5 # a few more sweeps: nothing may be reported twice
    [ "$(offline_events "$base" "$key")" = "$(cat "$want")" ] \
        || fail "$phase: device.offline events [$(offline_events "$base" "$key" | tr '\n' ' ')] are not exactly the 5 stopped devices, once each"
    echo "$phase: exactly 5 device.offline events, one per stopped device"
    # ... and 5 device.offline webhooks delivered to the subscribed endpoint, once each.
    for _ in $(seq 50); do
        [ "$(hooked_offline "$hooks")" = "$(cat "$want")" ] && break
        sleep 0.1
    done
    sleep 0.5
    [ "$(hooked_offline "$hooks")" = "$(cat "$want")" ] \
        || fail "$phase: device.offline webhooks [$(hooked_offline "$hooks" | tr '\n' ' ')] are not exactly the 5 stopped devices, once each"
    echo "$phase: exactly 5 device.offline webhooks delivered, one per stopped device"
}

declare -A agent_pid

# ---- A: one server, SQLite --------------------------------------------------------------
start_server a 19500
base=http://127.0.0.1:19500
key="$("$QRLP_BIN" admin bootstrap --org "Fleet CI" --email ci@fleet.example --plan enterprise \
    --data-dir "$work/a" | tail -n1)"
receiver 19598 "$work/hooks-a"
api POST "$base/api/v1/webhooks" "$key" \
    '{"url": "http://127.0.0.1:19598/hook", "events": ["device.offline"]}' >/dev/null
for i in $(seq 1 20); do enroll_and_run "$base" "$key" "$i"; done
sleep "$RUN_SECS"
[ "$(ids_with_status "$base" "$key" online | wc -l)" = 20 ] || fail "A: not all 20 agents online"
echo "A: 20 agents online"
: >"$work/stopped"
for i in 1 5 9 13 17; do
    kill "${agent_pid[$i]}"
    cat "$work/dev$i.id" >>"$work/stopped"
done
sort -o "$work/stopped" "$work/stopped"
check_offline "$base" "$key" "$work/stopped" A "$work/hooks-a"
for i in $(seq 1 20); do kill "${agent_pid[$i]}" 2>/dev/null || true; done

# ---- B: two servers, one PostgreSQL database --------------------------------------------
if [ -z "$PG" ]; then
    [ -n "${CI:-}" ] && fail "QRLP_TEST_POSTGRES_URL is required in CI"
    echo "SKIPPED B: QRLP_TEST_POSTGRES_URL not set"
    exit 0
fi
db="qrlp_ci14_$$"
psql -q "$PG" -c "CREATE DATABASE $db" >/dev/null
url="${PG%/*}/$db"
# Both servers seal and open the same secrets: one data key through their configuration.
data_key="$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
start_server b1 19501 QRLP_STORAGE_DATABASE_URL="$url" QRLP_STORAGE_ENCRYPTION_KEY="$data_key"
start_server b2 19502 QRLP_STORAGE_DATABASE_URL="$url" QRLP_STORAGE_ENCRYPTION_KEY="$data_key"
key="$("$QRLP_BIN" admin bootstrap --org "Fleet CI PG" --email ci@fleet.example --plan enterprise \
    --database-url "$url" | tail -n1)"
receiver 19599 "$work/hooks-b"
api POST http://127.0.0.1:19501/api/v1/webhooks "$key" \
    '{"url": "http://127.0.0.1:19599/hook", "events": ["device.offline"]}' >/dev/null
rm -rf "$work"/dev*
for i in $(seq 1 20); do
    if [ $((i % 2)) = 0 ]; then b=http://127.0.0.1:19501; else b=http://127.0.0.1:19502; fi
    enroll_and_run "$b" "$key" "$i"
done
sleep "$RUN_SECS"
[ "$(ids_with_status http://127.0.0.1:19501 "$key" online | wc -l)" = 20 ] || fail "B: not all 20 agents online"
echo "B: 20 agents online across two servers"
: >"$work/stopped"
for i in 2 3 8 11 20; do
    kill "${agent_pid[$i]}"
    cat "$work/dev$i.id" >>"$work/stopped"
done
sort -o "$work/stopped" "$work/stopped"
check_offline http://127.0.0.1:19502 "$key" "$work/stopped" B "$work/hooks-b"
echo "fleet: all checks passed"
