// Run by churn.test.ts in its own process (node --expose-gc): a gateway and its clients in one heap, so that
// the heap after a full GC says whether channel state came back. Prints one JSON line and exits.
import WebSocket from 'ws';

const dist = new URL('../../dist/', import.meta.url);
const { createGateway, silentLogger } = await import(new URL('index.js', dist).href);
const ROUNDS = Number(process.env.ROUNDS ?? 100);
const CLIENTS = 20;
const PER_CLIENT = 100;

const gateway = await createGateway({ port: 0, allowAnonymous: true, logger: silentLogger(), channelRate: 1e6, channelRatePerIp: 1e9, clientBurst: 1000 });
const url = `ws://127.0.0.1:${gateway.address().port}/ws`;
let next = 0;

/** One client: connects with PER_CLIENT channels nobody used before, waits for `connected`, closes. */
function client() {
  return new Promise((resolve, reject) => {
    const subs = {};
    for (let i = 0; i < PER_CLIENT; i++) subs[`churn-${next++}`] = {};
    const ws = new WebSocket(url);
    ws.on('error', reject);
    ws.on('open', () => ws.send(JSON.stringify({ type: 'connect', subs })));
    ws.on('message', (m) => {
      if (String(m).startsWith('{"type":"connected"')) ws.close();
    });
    ws.on('close', resolve);
  });
}

async function settle() {
  while (gateway.connectionCount > 0 || gateway.channelCount > 0) await new Promise((r) => setTimeout(r, 20));
  for (let i = 0; i < 3; i++) {
    globalThis.gc();
    await new Promise((r) => setImmediate(r));
  }
  return process.memoryUsage().heapUsed;
}

for (let r = 0; r < 5; r++) await Promise.all(Array.from({ length: CLIENTS }, client));
const before = await settle();
for (let r = 0; r < ROUNDS; r++) await Promise.all(Array.from({ length: CLIENTS }, client));
const after = await settle();
const usage = gateway.engine.usage?.();
process.stdout.write(`${JSON.stringify({ channels: next, before, after, engineChannels: usage?.channels, hubChannels: gateway.channelCount })}\n`);
await gateway.close();
process.exit(0);
