#!/usr/bin/env node
/**
 * What `lua/publish.lua` costs Redis per publish: Redis CPU (INFO cpu, user + system) and the time of each command
 * the script runs (INFO commandstats), as the gateway calls it: batched (the publish batch of one event-loop turn,
 * `--batch 100`) or one EVALSHA per publish (`--batch 1`, 32 in flight). `<channels>` user channels, each with one
 * subscriber and one connection counted (the gateway's counts), one pub/sub subscriber connection on every channel.
 *
 *   npx tsc -b packages/server && node packages/server/scripts/publish-lua-cost.mjs [--lua packages/server/lua/publish.lua]
 *     [--lua <another publish.lua>] [--batch 100] [--publishes 100000] [--channels 5000] [--rounds 3]
 *     [--redis redis://127.0.0.1:6379/13]
 *
 * Several `--lua` files run in turn, `--rounds` times (medians reported): compare a change with `git show
 * HEAD~1:packages/server/lua/publish.lua > /tmp/before.lua`. It flushes the database it is given: use one of
 * its own (db 13 by default). Redis CPU includes reading the calls and writing the pub/sub messages.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { publishBatchSource } from '../dist/engine/redis/publish-batch.js';

const { values } = parseArgs({
  options: {
    lua: { type: 'string', multiple: true },
    batch: { type: 'string', default: '100' },
    publishes: { type: 'string', default: '100000' },
    channels: { type: 'string', default: '5000' },
    rounds: { type: 'string', default: '3' },
    redis: { type: 'string', default: 'redis://127.0.0.1:6379/13' },
  },
});
const files = values.lua ?? [fileURLToPath(new URL('../lua/publish.lua', import.meta.url))];
const BATCH = Number(values.batch);
const N = Number(values.publishes);
const CH = Number(values.channels);
const P = 'luacost';

const redis = new Redis(values.redis);
const sub = new Redis(values.redis);
const payload = JSON.stringify({ t: 1733480000000.123, p: 'x'.repeat(100) });

/** Keys and arguments of one publish to user:u<i>, with both counts (as the gateway publishes to a user). */
function publishCall(i) {
  const c = `user:u${i}`;
  const keys = [`${P}:{${c}}:meta`, `${P}:{${c}}:stream`, `${P}:{${c}}:members`, `${P}:user:{u${i}}`];
  const args = [c, 'notification', payload, 'e1', 1000, 600000, 3600000, 300000, '0', 1048576, '', String(Date.now()), 2];
  return { keys, args };
}

async function cpuSeconds() {
  const info = await redis.info('cpu');
  const read = (name) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return read('used_cpu_user') + read('used_cpu_sys');
}

async function setup() {
  await redis.flushdb();
  const until = Date.now() + 3_600_000;
  const p = redis.pipeline();
  const channels = [];
  for (let i = 0; i < CH; i++) {
    p.zadd(`${P}:{user:u${i}}:members`, until, `c${i}`);
    p.zadd(`${P}:user:{u${i}}`, until, `c${i}`);
    channels.push(`${P}:{user:u${i}}:pub`);
  }
  await p.exec();
  for (let i = 0; i < channels.length; i += 500) await sub.subscribe(...channels.slice(i, i + 500));
}

/** Runs `n` publishes to random channels; one publish per channel first (new epochs are not what is measured). */
async function run(one, many, n) {
  let sent = 0;
  const next = () => (sent < CH ? sent : Math.floor(Math.random() * CH));
  const worker = async () => {
    while (sent < n) {
      if (BATCH === 1) {
        const { keys, args } = publishCall(next());
        sent++;
        await redis.evalsha(one, keys.length, ...keys, ...args);
        continue;
      }
      const keys = [];
      const args = [BATCH];
      for (let j = 0; j < BATCH; j++, sent++) {
        const call = publishCall(next());
        keys.push(...call.keys);
        args.push(call.keys.length, call.args.length, ...call.args);
      }
      await redis.evalsha(many, keys.length, ...keys, ...args);
    }
  };
  await Promise.all(Array.from({ length: BATCH === 1 ? 32 : 4 }, worker));
}

async function measure(file) {
  const source = readFileSync(file, 'utf8');
  const one = await redis.script('LOAD', source);
  const many = await redis.script('LOAD', publishBatchSource(source));
  await setup();
  await run(one, many, CH);
  await redis.config('RESETSTAT');
  const before = await cpuSeconds();
  await run(one, many, N);
  const cpu = ((await cpuSeconds()) - before) / N;
  const calls = {};
  for (const line of (await redis.info('commandstats')).split('\n')) {
    const m = /^cmdstat_([\w|]+):calls=(\d+),usec=(\d+)/.exec(line);
    if (m && m[1] !== 'evalsha' && m[1] !== 'info' && Number(m[2]) >= N / 20) calls[m[1]] = { calls: Number(m[2]) / N, usec: Number(m[3]) / N };
  }
  return { cpu, calls };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = new Map(files.map((f) => [f, []]));
for (let round = 0; round < Number(values.rounds); round++) for (const f of files) results.get(f)?.push(await measure(f));
console.log(`${N} publishes in batches of ${BATCH}, ${CH} user channels; medians of ${values.rounds} rounds`);
for (const [file, runs] of results) {
  const calls = runs.at(-1)?.calls ?? {};
  const inside = Object.values(calls).reduce((sum, c) => sum + c.usec, 0);
  console.log(
    `${file}: Redis CPU ${(median(runs.map((r) => r.cpu)) * 1e6).toFixed(1)} us per publish (${runs.map((r) => (r.cpu * 1e6).toFixed(1)).join(', ')})`,
  );
  console.log(
    `  commands run by the script: ${Object.values(calls)
      .reduce((sum, c) => sum + c.calls, 0)
      .toFixed(2)} per publish, ${inside.toFixed(1)} us inside them`,
  );
  for (const [name, c] of Object.entries(calls)) console.log(`    ${name.padEnd(10)} ${c.calls.toFixed(2)} x, ${c.usec.toFixed(2)} us`);
}
await redis.flushdb();
redis.disconnect();
sub.disconnect();
