#!/usr/bin/env bash
# Federated learning at scale (issue 15): a release server with default settings on
# 127.0.0.1:19530 (SQLite in a temporary directory), DEVICES simulated devices (real
# enrollment, real signed requests, real sealed updates), a job of one round of a
# PARAMS-parameter model, and every device submitting at once (`qrlp device simulate
# --train`). Prints the server's peak RSS (VmHWM) and the time from the last accepted
# submission to the round's end; fails above MAX_RSS_MB or MAX_READY_MS.
#   DEVICES=200 PARAMS=1000000 scripts/bench-fl-scale.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DEVICES="${DEVICES:-200}"
PARAMS="${PARAMS:-1000000}"
MAX_RSS_MB="${MAX_RSS_MB:-150}"
MAX_READY_MS="${MAX_READY_MS:-2000}"
PORT=19530
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

env QRLP_SERVER_HOST=127.0.0.1 QRLP_SERVER_PORT=$PORT QRLP_STORAGE_DATA_DIR="$work" \
    "$bin" serve >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
status_kb() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$server/status"; }
echo "server RSS at start: $(status_kb VmRSS) kB"
key="$("$bin" admin bootstrap --org "FL scale bench $$" --email bench@fl.example --plan enterprise \
    --data-dir "$work" | tail -n1)"
job="$(curl -fsS -X POST "http://127.0.0.1:$PORT/api/v1/fl/rounds" -H "x-api-key: $key" \
    -H 'content-type: application/json' -d "{
      \"model_config\": {\"architecture\": \"logistic_regression\", \"input_dim\": $((PARAMS - 1)),
                         \"hyperparameters\": {\"learning_rate\": 0.1}},
      \"participant_criteria\": {\"min_participants\": $DEVICES, \"max_participants\": $DEVICES},
      \"rounds\": 1, \"strategy\": \"fedavg\", \"deadline_secs\": 900}")"
echo "job: $(echo "$job" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r.get("id"), r.get("status"))')"
echo "server RSS before the round: $(status_kb VmRSS) kB (peak so far $(status_kb VmHWM) kB)"
set +e
out="$("$bin" device simulate --server "http://127.0.0.1:$PORT" --api-key "$key" \
    --devices "$DEVICES" --duration 300 --train)"
rc=$?
set -e
echo "$out"
peak_kb="$(status_kb VmHWM)"
echo "server RSS after the round: $(status_kb VmRSS) kB; peak $peak_kb kB"
[ "$rc" -eq 0 ] || { echo "FAIL: the simulation did not complete (exit $rc)"; tail -n 20 "$work/server.log"; exit 1; }
ready_ms="$(echo "$out" | python3 -c 'import json,sys; print(max(r["last_submission_to_end_ms"] for r in json.load(sys.stdin)["rounds"]))')"
python3 - "$peak_kb" "$ready_ms" "$MAX_RSS_MB" "$MAX_READY_MS" "$DEVICES" "$PARAMS" <<'PY'
import sys
peak_kb, ready_ms, max_mb, max_ms, devices, params = map(float, sys.argv[1:])
peak_mb = peak_kb / 1024
print(f"{int(devices)} submissions of {int(params):,} parameters: peak server RSS {peak_mb:.1f} MB "
      f"(limit {max_mb:.0f}), aggregate ready {ready_ms / 1000:.2f} s after the last submission "
      f"(limit {max_ms / 1000:.2f})")
sys.exit(0 if peak_mb <= max_mb and ready_ms <= max_ms else 1)
PY
