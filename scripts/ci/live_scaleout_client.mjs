// Connects the official Socket.IO client to one node and prints every qr_update it gets as
// "<ms since epoch> <sequence> <frame text length>", for scripts/ci/12-live-scaleout.sh.
// Usage: node live_scaleout_client.mjs URL TOKEN SECONDS
import { io } from "socket.io-client";

const [url, token, secs] = process.argv.slice(2);
const s = io(url + "/live", { transports: ["websocket"], auth: { channel: token } });
s.on("connect", () => console.log(`${Date.now()} connected`));
s.on("disconnect", (r) => console.log(`${Date.now()} disconnected ${r}`));
s.on("qr_update", (d) => console.log(`${Date.now()} ${d.sequence_number} ${String(d.frame).length}`));
setTimeout(() => { s.close(); process.exit(0); }, Number(secs) * 1000);
