// A webhook receiver built from seed 003's Node.js example: its verifyWebhookSignature and
// handler verbatim, behind express.json(). Around them, for the test only: the raw body is
// kept (express.json's `verify` hook, which does not change parsing), the Standard Webhooks
// signature is checked with the `standardwebhooks` npm package, a copy of the body with one
// byte changed is checked with both, and every request is appended to $OUT as one JSON line.
const express = require('express');
const fs = require('fs');
const { Webhook } = require('standardwebhooks');

const YOUR_WEBHOOK_SECRET = process.env.SECRET;
const OUT = process.env.OUT;
const app = express();
app.use(express.json({ verify: (req, res, buf) => { req.rawBody = buf.toString('utf8'); } }));

// ---- seed 003, verbatim ----
const crypto = require('crypto');

function verifyWebhookSignature(payload, signature, secret) {
  const expectedSignature = crypto
    .createHmac('sha256', secret)
    .update(JSON.stringify(payload))
    .digest('hex');
  
  return signature === expectedSignature;
}
// ---- end of the seed's function ----

// Record what happened to each request, after the seed's handler answered.
app.use((req, res, next) => {
  res.on('finish', () => {
    const raw = req.rawBody || '';
    // One byte changed: the first character of the "event" value.
    const tampered = raw.replace(/"event":"(.)/, (m, c) => '"event":"' + (c === 'a' ? 'b' : 'a'));
    let standard = false;
    let standardTampered = false;
    const hook = new Webhook(YOUR_WEBHOOK_SECRET);
    try { hook.verify(raw, req.headers); standard = true; } catch (e) { standard = false; }
    try { hook.verify(tampered, req.headers); standardTampered = true; } catch (e) { standardTampered = false; }
    const line = {
      status: res.statusCode,
      id: req.headers['webhook-id'],
      timestamp: req.headers['webhook-timestamp'],
      signature: req.headers['webhook-signature'],
      xsig: req.headers['x-webhook-signature'],
      event: req.body && req.body.event,
      raw,
      tampered,
      stringifyEqualsRaw: JSON.stringify(req.body) === raw,
      seedTampered: verifyWebhookSignature(JSON.parse(tampered), req.headers['x-webhook-signature'], YOUR_WEBHOOK_SECRET),
      standard,
      standardTampered,
    };
    fs.appendFileSync(OUT, JSON.stringify(line) + '\n');
  });
  next();
});

// ---- seed 003, verbatim ----
// In your webhook handler:
app.post('/webhook', (req, res) => {
  const signature = req.headers['x-webhook-signature'];
  const isValid = verifyWebhookSignature(req.body, signature, YOUR_WEBHOOK_SECRET);
  
  if (!isValid) {
    return res.status(401).send('Invalid signature');
  }
  
  // Process webhook event
  console.log('Scan event:', req.body);
  res.json({ received: true });
});
// ---- end of the seed's handler ----

app.listen(Number(process.env.PORT), '127.0.0.1', () => console.log('receiver ready'));
