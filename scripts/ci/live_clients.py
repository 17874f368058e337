"""python-socketio (PyPI) against `qrlp live`: the seed's events, as
scripts/ci/12-live-clients.sh runs them. Usage: python live_clients.py URL INTERVAL"""
import json
import random
import sys
import threading
import time
import urllib.request

import socketio

URL, INTERVAL = sys.argv[1], float(sys.argv[2])
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + "py: " + what, flush=True)
    if not ok:
        failures.append(what)


def wait_for(pred, secs):
    end = time.time() + secs
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.01)
    return pred()


class Client:
    def __init__(self):
        self.sio = socketio.Client(reconnection=False)
        self.updates, self.user_updates, self.user_errors = [], [], []
        self.lock = threading.Lock()
        self.sio.on("qr_update", lambda d: self.updates.append((time.time(), d)))
        self.sio.on("user_data_updated", lambda d: self.user_updates.append(d))
        self.sio.on("user_data_error", lambda e: self.user_errors.append(e))
        self.sio.connect(URL, transports=["websocket"], wait_timeout=5)


a, b = Client(), Client()
check(a.sio.connected and b.sio.connected, "two clients connect")
t0 = time.time()
fresh = wait_for(lambda: len(a.updates) >= 2 and a.updates[-1][1]["sequence_number"] > a.updates[0][1]["sequence_number"], 2 * INTERVAL + 0.5)
check(bool(fresh), "qr_update broadcast within two intervals (%.0f ms)" % ((time.time() - t0) * 1000))
u = a.updates[-1][1]
check(u["qr_image"].startswith("data:image/png;base64,"), "qr_update carries qr_image")
# The seed's clients json.loads what they scan and pass it to verify.
check(json.loads(u["frame"])["sequence_number"] == u["qr_data"]["sequence_number"], "the code's text is the seed's QRData JSON")

n = len(b.updates)
asked = time.time()
b.sio.emit("request_qr_update")
got = wait_for(lambda: len(b.updates) > n, 1.0)
check(bool(got) and time.time() - asked < 0.5, "reply to request_qr_update")

text = "hello from python-socketio %d" % random.randrange(10**9)
a.sio.emit("update_user_data", {"user_text": text})
upd = wait_for(lambda: [x for x in b.user_updates if x.get("user_data") == text], 2.0)
check(bool(upd) and isinstance(upd[0].get("timestamp"), str), "user_data_updated reaches the second client")
in_frame = wait_for(lambda: [d for _, d in b.updates if ((d.get("qr_data") or {}).get("user_data") or {}).get("user_text") == text], 2 * INTERVAL + 1.0)
check(bool(in_frame), "the text is inside the next frame")

a.sio.emit("update_user_data", {"user_text": "x" * 501})
err = wait_for(lambda: a.user_errors[:1], 2.0)
check(bool(err) and err[0].get("error") == "User data too long (max 500 characters)", "user_data_error for 501 characters")
time.sleep(0.3)
check(not b.user_errors, "the other client gets no user_data_error")

# The verify route accepts what a scanner read.
body = json.dumps({"qr_data": b.updates[-1][1]["frame"]}).encode()
req = urllib.request.Request(URL + "/api/verify", data=body, headers={"Content-Type": "application/json"})
res = json.load(urllib.request.urlopen(req, timeout=5))
check(res["valid"] is True, "the latest frame verifies at /api/verify (%s)" % res["details"]["reason"]["code"])

status = json.load(urllib.request.urlopen(URL + "/api/status", timeout=5))
check(status["websocket_connections"] >= 2, "/api/status counts the connections (%d)" % status["websocket_connections"])
a.sio.disconnect()
b.sio.disconnect()
if failures:
    print("py: %d failed" % len(failures))
    sys.exit(1)
print("py: all passed")
