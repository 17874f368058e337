// Two server processes on one PostgreSQL database: 20 rounds of 50 concurrent scans of
// one value, alternating between the servers. Exactly one succeeds each round.
const axios = require('axios');
const [a, b] = [process.env.BASE_A, process.env.BASE_B];
const headers = { 'X-API-Key': process.env.KEY, 'Content-Type': 'application/json' };

(async () => {
  const chain = (await axios.post(`${a}/chains`, { name: 'Two servers', chainLength: 100 }, { headers })).data.chainId;
  let failures = 0;
  for (let round = 0; round < 20; round++) {
    const cur = (await axios.get(`${b}/chains/${chain}/current`, { headers })).data;
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) =>
      axios.post(`${i % 2 ? a : b}/chains/${chain}/scan`, { hashValue: cur.hashValue },
        { headers, validateStatus: () => true })));
    const ok = results.filter((r) => r.status === 200).length;
    const dup = results.filter((r) => r.status === 409 && r.data.error === 'QR code already scanned').length;
    if (ok !== 1 || dup !== 49) { failures++; console.error(`round ${round}: ${ok} accepted, ${dup} already scanned`); }
  }
  const stats = (await axios.get(`${a}/chains/${chain}/stats`, { headers })).data;
  console.log(`two servers: 20 rounds x 50 scans, ${failures} bad rounds; validScans ${stats.validScans}, currentIndex ${stats.currentIndex}`);
  process.exit(failures === 0 && stats.validScans === 20 && stats.currentIndex === 79 ? 0 : 1);
})().catch((e) => { console.error(e.message); process.exit(1); });
