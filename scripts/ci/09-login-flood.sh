#!/usr/bin/env bash
# Finding 6 against the release binary at default settings (per-address limit off so that
# every attempt reaches the password check): 200 concurrent logins with wrong passwords,
# half for an account that has a password, half for unknown emails. Every answer must be
# 401 or 503 (with Retry-After), none may hang, and the server's peak RSS must stay under
# 300 MB.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${QRLP_BIN:?QRLP_BIN must name the release binary (.ci/run sets it)}"
PORT=${LOGIN_FLOOD_PORT:-18941}
BASE="http://127.0.0.1:$PORT"
DATA_DIR=$(mktemp -d)
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$DATA_DIR"
}
trap cleanup EXIT

KEY=$("$QRLP_BIN" admin bootstrap --org Flood --email owner@flood.example --plan enterprise \
    --data-dir "$DATA_DIR" 2>/dev/null)
QRLP_RATE_LIMIT_IP_PER_HOUR=0 "$QRLP_BIN" serve --host 127.0.0.1 --port "$PORT" \
    --data-dir "$DATA_DIR" --log-level warn 2> "$DATA_DIR/server.log" &
SERVER_PID=$!
for _ in $(seq 1 100); do
    curl -fsS "$BASE/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done

timeout 120 python3 - "$BASE" "$KEY" "$SERVER_PID" <<'EOF'
import json, sys, threading, time, urllib.request, urllib.error

base, key, pid = sys.argv[1], sys.argv[2], sys.argv[3]

def call(path, body, headers=None):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.headers, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, json.loads(e.read() or b"null")

def hwm_kb():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

# An account with a password, made the only way there is: invitation, then redemption.
status, _, invited = call("/api/v1/users", {"email": "target@flood.example", "role": "member"},
                          {"X-API-Key": key})
assert status == 202, (status, invited)
status, _, body = call("/api/v1/auth/invitations/redeem",
                       {"token": invited["invite_token"], "password": "the real password!"})
assert status == 201, (status, body)

before = hwm_kb()
results, lock = [], threading.Lock()
start = threading.Barrier(200)

def attempt(i):
    email = "target@flood.example" if i % 2 == 0 else f"nobody{i}@flood.example"
    start.wait()
    t = time.monotonic()
    status, headers, _ = call("/api/v1/auth/login", {"email": email, "password": "not the password"})
    with lock:
        results.append((status, headers.get("retry-after"), time.monotonic() - t))

threads = [threading.Thread(target=attempt, args=(i,)) for i in range(200)]
began = time.monotonic()
for t in threads: t.start()
for t in threads: t.join(90)
elapsed = time.monotonic() - began
after = hwm_kb()
counts = {}
for status, retry, _ in results:
    counts[status] = counts.get(status, 0) + 1
slowest = max(r[2] for r in results) if results else None
print(f"login flood: {len(results)}/200 answered in {elapsed:.1f} s (slowest {slowest:.2f} s); "
      f"statuses {dict(sorted(counts.items()))}; server VmHWM {before} kB before, {after} kB after")
assert len(results) == 200, "some logins hung"
assert set(counts) <= {401, 503}, counts
assert all(r[1] for r in results if r[0] == 503), "503 without Retry-After"
assert after < 300 * 1024, f"peak RSS {after} kB >= 300 MB"
EOF
echo "login flood: passed"
