// Scans one chain N times through the API, riding out a server that is killed and
// restarted: a request that gets no answer is counted as ambiguous (it may or may not have
// been committed) and the loop carries on with a fresh `current`. Writes the number of
// answered successes to $PROGRESS as it goes and a summary to $RESULT at the end.
const axios = require('axios');
const fs = require('fs');

const base = process.env.BASE;
const headers = { 'X-API-Key': process.env.KEY, 'Content-Type': 'application/json' };
const chain = process.env.CHAIN;
const n = Number(process.env.N || 1000);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

(async () => {
  const successes = [];
  let ambiguous = 0;
  let refused = 0;
  for (let i = 0; i < n; i++) {
    let current;
    for (;;) {
      try {
        current = (await axios.get(`${base}/chains/${chain}/current`, { headers, timeout: 5000 })).data;
        break;
      } catch (e) {
        await sleep(50);
      }
    }
    try {
      const r = await axios.post(`${base}/chains/${chain}/scan`, { hashValue: current.hashValue },
        { headers, timeout: 5000, validateStatus: () => true });
      if (r.status === 200) {
        successes.push({ hash: current.hashValue, index: current.currentIndex });
      } else if (r.status === 409 || r.status === 400) {
        refused++;
      } else {
        ambiguous++;
      }
    } catch (e) {
      ambiguous++;
      await sleep(50);
    }
    if (i % 10 === 0) fs.writeFileSync(process.env.PROGRESS, String(successes.length));
  }
  fs.writeFileSync(process.env.RESULT, JSON.stringify({ successes, ambiguous, refused }));
})();
