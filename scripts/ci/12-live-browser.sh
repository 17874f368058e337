#!/usr/bin/env bash
# Issue 12: the pages in a real browser. Headless Chromium (Debian's `chromium`, installed
# here with apt-get when missing) driven by npm's `playwright-core` against `qrlp live`
# (release build): the viewer after two updates is screenshot, its code decoded with
# zxing-cpp (zbarimg as fallback) and verified with `qrlp verify`; the frame pasted on
# /verify shows a valid verdict; the 1920x1080 stream view decodes; phone-sized pages do not
# scroll sideways; labels and contrast pass a check. Screenshots: $QRLP_SHOTS or
# target/ci-live-browser/.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${QRLP_BIN:?QRLP_BIN must name the release binary (.ci/run sets it)}"
target="${CARGO_TARGET_DIR:-target}"
js="$target/ci-live-js"
shots="${QRLP_SHOTS:-$target/ci-live-browser}"
port=19311

if ! command -v chromium >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get update -qq
    timeout 900 apt-get install -y -qq chromium >/dev/null
fi
if ! python3 -c "import zxingcpp, PIL" 2>/dev/null; then
    python3 -m pip install -q --disable-pip-version-check zxing-cpp pillow 2>&1 | grep -v "as the 'root' user" || true
fi
mkdir -p "$js" "$shots"
cp scripts/ci/live-js/package.json scripts/ci/live-js/package-lock.json "$js/"
if [ ! -d "$js/node_modules/playwright-core" ]; then
    (cd "$js" && timeout 300 npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
fi
cp scripts/ci/live_browser.mjs "$js/"

work=$(mktemp -d)
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
"$QRLP_BIN" live --port "$port" --no-browser --interval 2 --data-dir "$work/data" \
    >"$work/live.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/api/qr/current" >/dev/null 2>&1 && break
    sleep 0.1
done
if ! timeout 120 node "$js/live_browser.mjs" "http://localhost:$port" "$shots" "$QRLP_BIN" "$work/data"; then
    echo "--- qrlp live log"; tail -20 "$work/live.log"
    exit 1
fi
echo "12-live-browser: all passed (screenshots in $shots)"
