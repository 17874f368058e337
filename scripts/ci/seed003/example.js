// Seed 003's "JavaScript (Node.js)" example, verbatim but for the two constants, which
// scripts/ci/11-chains-webhooks.sh points at the server under test.
const axios = require('axios');

const API_KEY = process.env.QRLP_API_KEY;
const BASE_URL = process.env.QRLP_BASE_URL;

const headers = {
  'X-API-Key': API_KEY,
  'Content-Type': 'application/json'
};

async function createChain() {
  const response = await axios.post(
    `${BASE_URL}/chains`,
    {
      name: 'My First Chain',
      chainLength: 100
    },
    { headers }
  );
  
  return response.data.chainId;
}

async function getCurrentQR(chainId) {
  const response = await axios.get(
    `${BASE_URL}/chains/${chainId}/current`,
    { headers }
  );
  
  return response.data;
}

async function scanQR(chainId, hashValue) {
  const response = await axios.post(
    `${BASE_URL}/chains/${chainId}/scan`,
    { hashValue },
    { headers }
  );
  
  return response.data;
}

// Usage
(async () => {
  try {
    const chainId = await createChain();
    console.log(`Created chain: ${chainId}`);
    
    const qrData = await getCurrentQR(chainId);
    console.log(`Current hash: ${qrData.hashValue}`);
    
    const scanResult = await scanQR(chainId, qrData.hashValue);
    console.log(`Scan successful: ${scanResult.success}`);
    console.log(`Remaining: ${scanResult.remaining}`);
  } catch (error) {
    console.error('Error:', error.response?.data || error.message);
  }
})();
