// Memory a memory-engine inbox holds for 100 000 stored messages (5000 users) while other code uses Node's shared
// Buffer pool between the puts, as request bodies and frames do in the gateway. Build first (npx tsc -b packages/server).
// Usage: node --expose-gc bench/inbox-memory.mjs [dist dir, default packages/server/dist]
import { fileURLToPath } from 'node:url';

const dist = process.argv[2] ?? fileURLToPath(new URL('../packages/server/dist', import.meta.url));
const { MemoryInbox } = await import(`${dist}/engine/memory/inbox.js`);
const { IdempotencyIndex } = await import(`${dist}/engine/memory/idempotency.js`);
const now = () => 1000;
// No receipts, no keyed puts, no bound on the whole (the defaults' 256 MiB would hold these too).
const inbox = new MemoryInbox(now, () => undefined, new IdempotencyIndex(1000, 1000, now), 1, 1e12);
globalThis.gc();
const before = process.memoryUsage();
let other = 0;
for (let i = 0; i < 100_000; i++) {
  await inbox.put(
    { user: `u${i % 5000}`, type: 'note', payloadJson: `{"n":${i},"text":"hello there"}`, ttl: 600_000, receipt: false },
    { max: 1000, idempotencyTtl: 1000 },
  );
  other += Buffer.from('y'.repeat(3000)).length;
}
globalThis.gc();
const after = process.memoryUsage();
const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;
console.log(
  `100 000 inbox messages: array buffers +${mb(after.arrayBuffers - before.arrayBuffers)}, RSS +${mb(after.rss - before.rss)}, JS heap +${mb(after.heapUsed - before.heapUsed)}`,
);
// Keeps the inbox (and the other buffers' count) alive past the reading.
console.log(`(${(await inbox.list('u1', 1000)).length} kept for u1; ${other} other bytes)`);
