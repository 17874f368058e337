"""Checks every delivery recorded by receiver.js with the PyPI `standardwebhooks` package:
the body as received verifies, the copy with one byte changed does not."""
import json
import os
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

secret = os.environ["SECRET"]
hook = Webhook(secret)
good = bad = 0
with open(os.environ["OUT"], encoding="utf-8") as f:
    for line in f:
        d = json.loads(line)
        headers = {
            "webhook-id": d["id"],
            "webhook-timestamp": d["timestamp"],
            "webhook-signature": d["signature"],
        }
        try:
            hook.verify(d["raw"], headers)
            ok = True
        except WebhookVerificationError:
            ok = False
        try:
            hook.verify(d["tampered"], headers)
            tampered_ok = True
        except WebhookVerificationError:
            tampered_ok = False
        if ok and not tampered_ok:
            good += 1
        else:
            bad += 1
            print("BAD", d["id"], ok, tampered_ok, file=sys.stderr)
print(f"python standardwebhooks: {good} verified, {bad} bad")
sys.exit(0 if bad == 0 and good > 0 else 1)
