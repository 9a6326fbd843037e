// Memory and time of the memory engine's history at its default bound (256 MiB of frames): 2 000 000 appends of a
// 150-byte frame over 5000 channels (1 000 kept per channel at most), then 5000 recoveries of the last 5 messages.
// Build first (npx tsc -b packages/server).
// Usage: node --expose-gc bench/history-memory.mjs [dist dir, default packages/server/dist]
import { fileURLToPath } from 'node:url';

const dist = process.argv[2] ?? fileURLToPath(new URL('../packages/server/dist', import.meta.url));
const { MemoryHistory } = await import(`${dist}/engine/memory/history.js`);
let t = 0;
const store = new MemoryHistory({ size: 1000, ttl: 600_000, metaTtl: 3_600_000, maxBytes: 1_048_576, totalBytes: 268_435_456 }, () => t);
const frame = Buffer.alloc(150, 0x61);
globalThis.gc();
const before = process.memoryUsage();
let started = process.hrtime.bigint();
for (let i = 0; i < 2_000_000; i++) {
  if (i % 1000 === 0) t += 1;
  store.append(`user:${i % 5000}`, () => frame);
}
const appendMs = Number(process.hrtime.bigint() - started) / 1e6;
globalThis.gc();
const after = process.memoryUsage();
started = process.hrtime.bigint();
let recovered = 0;
for (let i = 0; i < 5000; i++) {
  const channel = `user:${i}`;
  const p = store.position(channel);
  recovered += store.recover(channel, p.seq - 5, p.epoch).messages.length;
}
const recoverMs = Number(process.hrtime.bigint() - started) / 1e6;
const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;
console.log(
  `${store.usage.bytes / frame.length} messages kept: JS heap +${mb(after.heapUsed - before.heapUsed)}, array buffers +${mb(after.arrayBuffers - before.arrayBuffers)}, RSS +${mb(after.rss - before.rss)}`,
);
console.log(`2 000 000 appends in ${appendMs.toFixed(0)} ms; 5000 recoveries of 5 messages (${recovered}) in ${recoverMs.toFixed(1)} ms`);
