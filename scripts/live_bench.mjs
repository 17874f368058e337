// Fan-out load for scripts/bench-live.sh: N clients on one `qrlp live` for D seconds.
// Usage: node live_bench.mjs URL N SECONDS MODE   (MODE: socketio | ws)
//   socketio: the official socket.io-client, WebSocket transport;
//   ws: a plain WebSocket client (npm ws) speaking engine.io/socket.io v4 by hand.
// Latency of a frame at a client = receive time - the payload's `timestamp` (when the
// server published it; same machine, same clock). Prints one JSON line of results.
import { io } from "socket.io-client";
import WebSocket from "ws";

const [url, nArg, secsArg, mode] = process.argv.slice(2);
const n = Number(nArg), secs = Number(secsArg);
const lat = [];
const seen = new Map(); // seq -> count of clients that got it
let connected = 0, failed = 0;
let measuring = false;

function onUpdate(d) {
  if (!measuring) return;
  const t = Date.parse(d.timestamp);
  lat.push(Date.now() - t);
  seen.set(d.sequence_number, (seen.get(d.sequence_number) || 0) + 1);
}

function socketioClient() {
  const s = io(url, { transports: ["websocket"], reconnection: false, forceNew: true });
  s.on("connect", () => connected++);
  s.on("connect_error", () => failed++);
  s.on("qr_update", onUpdate);
  return () => s.close();
}

function wsClient() {
  const w = new WebSocket(url.replace(/^http/, "ws") + "/socket.io/?EIO=4&transport=websocket", { perMessageDeflate: false });
  w.on("message", (buf) => {
    const m = buf.toString();
    if (m[0] === "0") w.send("40");
    else if (m === "2") w.send("3");
    else if (m.startsWith("40")) connected++;
    else if (m.startsWith("42")) {
      const [ev, d] = JSON.parse(m.slice(2));
      if (ev === "qr_update") onUpdate(d);
    }
  });
  w.on("error", () => failed++);
  return () => w.terminate();
}

const closers = [];
for (let i = 0; i < n; i++) {
  closers.push(mode === "ws" ? wsClient() : socketioClient());
  if (i % 200 === 199) await new Promise((r) => setTimeout(r, 50));
}
const start = Date.now();
while (connected + failed < n && Date.now() - start < 60000) await new Promise((r) => setTimeout(r, 100));
const connectSecs = (Date.now() - start) / 1000;
// Wait for a frame boundary, then measure.
await new Promise((r) => setTimeout(r, 1500));
measuring = true;
await new Promise((r) => setTimeout(r, secs * 1000));
measuring = false;
// Frames whose delivery is complete: not the first and last partial ones.
const seqs = [...seen.keys()].sort((a, b) => a - b).slice(1, -1);
const complete = seqs.filter((s) => seen.get(s) === connected).length;
lat.sort((a, b) => a - b);
const q = (p) => lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : null;
console.log(JSON.stringify({
  mode, clients: n, connected, failed, connect_seconds: connectSecs, frames: seqs.length,
  frames_every_client_got: complete, deliveries: lat.length,
  p50_ms: q(0.5), p99_ms: q(0.99), max_ms: lat.length ? lat[lat.length - 1] : null,
}));
for (const c of closers) c();
process.exit(0);
