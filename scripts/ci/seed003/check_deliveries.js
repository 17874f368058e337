// Every delivery in $OUT: the seed's verifier accepted it (status 200), Standard Webhooks
// accepted it, and the one-byte-changed copy failed both. Prints counts; exits 1 otherwise.
const fs = require('fs');
const lines = fs.readFileSync(process.env.OUT, 'utf8').trim().split('\n').filter(Boolean).map(JSON.parse);
const want = (process.env.WANT || '').split(',').filter(Boolean);
let bad = 0;
for (const l of lines) {
  const ok = l.status === 200 && l.standard && !l.standardTampered && !l.seedTampered && l.stringifyEqualsRaw;
  if (!ok) { bad++; console.error('BAD', JSON.stringify(l)); }
}
const events = new Set(lines.map(l => l.event));
for (const w of want) {
  if (!events.has(w)) { bad++; console.error('missing event', w); }
}
console.log(`${lines.length} deliveries, ${bad} bad; events: ${[...events].sort().join(', ')}`);
process.exit(bad === 0 && lines.length > 0 ? 0 : 1);
