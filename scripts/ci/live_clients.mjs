// The official Socket.IO client (npm socket.io-client 4) against `qrlp live`: the seed's
// events, as scripts/ci/12-live-clients.sh runs them. Usage: node live_clients.mjs URL INTERVAL
import { io } from "socket.io-client";

const [url, intervalArg] = process.argv.slice(2);
const interval = Number(intervalArg) * 1000;
const failures = [];
const check = (ok, what) => { console.log(`${ok ? "ok  " : "FAIL"} js: ${what}`); if (!ok) failures.push(what); };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function client() {
  const s = io(url, { transports: ["websocket"], reconnection: false });
  s.updates = [];
  s.userUpdates = [];
  s.userErrors = [];
  s.on("qr_update", (d) => s.updates.push({ at: Date.now(), d }));
  s.on("user_data_updated", (d) => s.userUpdates.push(d));
  s.on("user_data_error", (e) => s.userErrors.push(e));
  return s;
}

function waitFor(pred, ms) {
  return new Promise((resolve) => {
    const start = Date.now();
    const t = setInterval(() => {
      const v = pred();
      if (v || Date.now() - start > ms) { clearInterval(t); resolve(v); }
    }, 10);
  });
}

const a = client();
const b = client();
const connected = await waitFor(() => a.connected && b.connected, 5000);
check(connected, "two clients connect");
const t0 = Date.now();
// A broadcast frame, not only the one sent on connect: a sequence newer than the first.
const fresh = await waitFor(() => a.updates.length >= 2 && a.updates.at(-1).d.sequence_number > a.updates[0].d.sequence_number, 2 * interval + 500);
check(!!fresh, `qr_update broadcast within two intervals (${Date.now() - t0} ms)`);
const u = a.updates.at(-1).d;
check(typeof u.qr_image === "string" && u.qr_image.startsWith("data:image/png;base64,"), "qr_update carries qr_image as a PNG data URL");
check(u.qr_data && typeof u.qr_data.timestamp === "string" && typeof u.qr_data.identity_hash === "string" && Number.isInteger(u.qr_data.sequence_number), "qr_update carries qr_data in the seed's QRData shape");

// request_qr_update: a reply to the asker alone, faster than the next broadcast.
const before = b.updates.length;
const beforeA = a.updates.length;
const asked = Date.now();
b.emit("request_qr_update");
const replied = await waitFor(() => b.updates.length > before && Date.now(), 1000);
check(!!replied && replied - asked < 500, `reply to request_qr_update (${replied ? replied - asked : "none"} ms)`);

// update_user_data: broadcast as user_data_updated to the other client, then in the next frame.
const text = `hello from the npm client ${Math.random().toString(36).slice(2)}`;
a.emit("update_user_data", { user_text: text });
const got = await waitFor(() => b.userUpdates.find((x) => x.user_data === text), 2000);
check(!!got && typeof got.timestamp === "string", "user_data_updated {user_data, timestamp} reaches the second client");
const inFrame = await waitFor(() => b.updates.find((x) => x.d.qr_data && x.d.qr_data.user_data && x.d.qr_data.user_data.user_text === text), 2 * interval + 1000);
check(!!inFrame, "the text is inside the next frame");
check(!!inFrame && String(inFrame.d.frame).includes(text), "the text is in the code's own text");

// 501 characters: user_data_error to the sender only.
a.emit("update_user_data", { user_text: "x".repeat(501) });
const err = await waitFor(() => a.userErrors[0], 2000);
check(!!err && err.error === "User data too long (max 500 characters)", `user_data_error for 501 characters (${err && err.error})`);
await sleep(300);
check(b.userErrors.length === 0, "the other client gets no user_data_error");
// Exactly 500 characters are fine.
a.emit("update_user_data", { user_text: "y".repeat(500) });
check(!!(await waitFor(() => b.userUpdates.find((x) => x.user_data === "y".repeat(500)), 2000)), "500 characters are accepted");

// Connections are counted.
const status = await (await fetch(`${url}/api/status`)).json();
check(status.websocket_connections >= 2, `/api/status counts the connections (${status.websocket_connections})`);
const metrics = await (await fetch(`${url}/metrics`)).text();
const m = metrics.match(/^qrlp_live_websocket_connections (\d+)/m);
check(!!m && Number(m[1]) >= 2, `/metrics counts the connections (${m && m[1]})`);
a.close();
b.close();
await sleep(300);
const after = await (await fetch(`${url}/api/status`)).json();
check(after.websocket_connections === status.websocket_connections - 2, `disconnects are counted (${after.websocket_connections})`);
if (failures.length) { console.log(`js: ${failures.length} failed`); process.exit(1); }
console.log("js: all passed");
process.exit(0);
