// Cost of the memory engine's inbox operations for one user, by how many messages that user keeps: a put followed
// by a remove of the message (as an acknowledgement does), and a list of 100 (as a connect's replay does).
// Build first (npx tsc -b packages/server). Run pinned for steadier numbers:
//   taskset -c 1 node bench/inbox-ops.mjs [dist dir, default packages/server/dist]
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const dist = process.argv[2] ?? fileURLToPath(new URL('../packages/server/dist', import.meta.url));
const { MemoryInbox } = await import(`${dist}/engine/memory/inbox.js`);
const { IdempotencyIndex } = await import(`${dist}/engine/memory/idempotency.js`);
const now = () => 1000;
const LIMITS = { max: 1000, idempotencyTtl: 300_000 };
const message = { user: 'me', type: 't', payloadJson: '{}', ttl: 60_000, receipt: false };
const N = 20_000;
for (const kept of [10, 999]) {
  const inbox = new MemoryInbox(now, () => undefined, new IdempotencyIndex(300_000, 3_000_000, now));
  for (let i = 0; i < kept; i++) await inbox.put(message, LIMITS);
  let t = performance.now();
  for (let i = 0; i < N; i++) {
    const { id } = await inbox.put(message, LIMITS);
    await inbox.remove('me', [id]);
  }
  const putRemove = ((performance.now() - t) * 1000) / N;
  t = performance.now();
  for (let i = 0; i < N; i++) await inbox.list('me', 100);
  const list = ((performance.now() - t) * 1000) / N;
  console.log(`${kept} kept: put + remove ${putRemove.toFixed(1)} µs, list of 100 ${list.toFixed(1)} µs`);
}
