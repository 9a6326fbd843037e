#!/usr/bin/env node
/**
 * How the memory engine's webhook outbox drains a backlog: N events fanned out into jobs, then claimed 64 at a
 * time and settled, as the dispatcher does while a receiver is down (each failed delivery retried later) and once it
 * is back (each done). Reports ms per 1000 jobs drained for growing N: flat when a claim costs O(log N) per job, growing
 * with N when a claim walks the whole queue. Uses the built server (`npx tsc -b packages/server` first).
 *
 *   node bench/outbox-drain.mjs [--sizes 10000,50000,100000] [--reps 3]
 */
import { parseArgs } from 'node:util';

const { MemoryOutbox } = await import(new URL('../packages/server/dist/engine/memory/outbox.js', import.meta.url).href);
const { values } = parseArgs({ options: { sizes: { type: 'string', default: '10000,50000,100000' }, reps: { type: 'string', default: '3' } } });
const sizes = values.sizes.split(',').map(Number);
const reps = Number(values.reps);

async function drain(n) {
  let now = 0;
  const outbox = new MemoryOutbox(() => now);
  await outbox.publish(Array.from({ length: n }, (_, i) => JSON.stringify({ id: `e${i}`, type: 'user.online', time: 0, data: {} })));
  while ((await outbox.fanOut(() => ['a'], 200, now)) > 0);
  const started = process.hrtime.bigint();
  // One round of failures (each retried a second later), then one of successes.
  for (const outcome of [(t) => ({ kind: 'retry', due: t + 1000 }), () => ({ kind: 'done' })]) {
    for (;;) {
      const jobs = await outbox.claim(now, 60_000, 64);
      for (const j of jobs) await outbox.settle(j, outcome(now), now);
      if (jobs.length < 64) break;
    }
    now += 1000;
  }
  return Number(process.hrtime.bigint() - started) / 1e6;
}

await drain(5000); // warm-up (JIT)
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log('| jobs | drain (ms, median) | ms per 1000 jobs |');
console.log('|---|---|---|');
for (const n of sizes) {
  const runs = [];
  for (let r = 0; r < reps; r++) runs.push(await drain(n));
  const ms = median(runs);
  console.log(`| ${n} | ${ms.toFixed(0)} | ${((ms / n) * 1000).toFixed(1)} |`);
}
