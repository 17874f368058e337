// After the crash run: every answered success has exactly one distinct scan.success id at
// the receiver, none is lost, and the chain's counters agree. Exits 1 otherwise.
const fs = require('fs');
const result = JSON.parse(fs.readFileSync(process.env.RESULT, 'utf8'));
const stats = JSON.parse(process.env.STATS);
const lines = fs.readFileSync(process.env.OUT, 'utf8').trim().split('\n').filter(Boolean).map(JSON.parse);
const byHash = new Map();
let deliveries = 0;
let badSignatures = 0;
for (const l of lines) {
  if (l.status !== 200) badSignatures++;
  if (l.event !== 'scan.success') continue;
  deliveries++;
  const body = JSON.parse(l.raw);
  if (!byHash.has(body.hashValue)) byHash.set(body.hashValue, new Set());
  byHash.get(body.hashValue).add(l.id);
}
const ids = new Set(lines.filter((l) => l.event === 'scan.success').map((l) => l.id));
let problems = 0;
for (const s of result.successes) {
  const seen = byHash.get(s.hash);
  if (!seen || seen.size !== 1) { problems++; console.error('success without exactly one event id', s, seen); }
}
const valid = stats.validScans;
if (ids.size !== valid) { problems++; console.error(`distinct scan.success ids ${ids.size} != validScans ${valid}`); }
if (stats.chainLength - 1 - stats.currentIndex !== valid) { problems++; console.error('currentIndex disagrees', stats); }
if (valid < result.successes.length || valid > result.successes.length + result.ambiguous) {
  problems++; console.error(`validScans ${valid} outside [${result.successes.length}, +${result.ambiguous}]`);
}
if (badSignatures) { problems++; console.error(`${badSignatures} deliveries failed the seed's verifier`); }
console.log(`answered successes ${result.successes.length}, ambiguous ${result.ambiguous}, ` +
  `validScans ${valid}, distinct scan.success ids ${ids.size}, deliveries ${deliveries} ` +
  `(${deliveries - ids.size} repeats), problems ${problems}`);
process.exit(problems ? 1 : 0);
