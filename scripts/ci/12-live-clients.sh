#!/usr/bin/env bash
# Issue 12: real Socket.IO clients against `qrlp live` (release build): the official npm
# `socket.io-client` and PyPI's `python-socketio`, each with two clients: connect,
# `qr_update` within two intervals, a reply to `request_qr_update`, `update_user_data`
# broadcast as `user_data_updated` and then inside the next frame, `user_data_error` for
# 501 characters to the sender only; connections counted in /api/status and /metrics.
# Also `qrlp status` (exit 0 with a server, 1 without) and a PKCS#8 PEM identity from openssl.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${QRLP_BIN:?QRLP_BIN must name the release binary (.ci/run sets it)}"
target="${CARGO_TARGET_DIR:-target}"
js="$target/ci-live-js"
venv="$target/ci-live-python"
port=19310
interval=1

mkdir -p "$js"
cp scripts/ci/live-js/package.json scripts/ci/live-js/package-lock.json "$js/"
if [ ! -d "$js/node_modules/socket.io-client" ]; then
    (cd "$js" && timeout 300 npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
fi
cp scripts/ci/live_clients.mjs "$js/"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check \
    "python-socketio[client]==5.18.1" "websocket-client==1.9.2"

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# No server: qrlp status exits 1.
if "$QRLP_BIN" status --port "$port" >/dev/null 2>&1; then
    echo "FAIL: qrlp status exited 0 with no server"; exit 1
fi
echo "ok   qrlp status exits 1 when no server answers"

# A PKCS#8 PEM identity as openssl writes it.
if command -v openssl >/dev/null; then
    openssl genpkey -algorithm ed25519 -out "$work/my-key.pem" 2>/dev/null
    chmod 600 "$work/my-key.pem"
    identity=(--identity-file "$work/my-key.pem")
else
    echo "(openssl absent: the generated identity is used)"
    identity=()
fi
"$QRLP_BIN" live --port "$port" --no-browser --interval "$interval" --data-dir "$work/data" \
    "${identity[@]}" >"$work/live.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/api/qr/current" >/dev/null 2>&1 && break
    sleep 0.1
done
"$QRLP_BIN" status --port "$port" | sed 's/^/    /'
"$QRLP_BIN" status --port "$port" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["is_running"] and d["current_qr_available"], d' \
    && echo "ok   qrlp status --json prints the status"

url="http://localhost:$port"
rc=0
timeout 60 node "$js/live_clients.mjs" "$url" "$interval" || rc=1
timeout 60 "$venv/bin/python" scripts/ci/live_clients.py "$url" "$interval" || rc=1
if [ "$rc" -ne 0 ]; then
    echo "--- qrlp live log"; tail -20 "$work/live.log"
    exit 1
fi
echo "12-live-clients: all passed"
