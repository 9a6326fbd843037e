#!/usr/bin/env node
/**
 * How fast a Redis client decodes what the gateway reads most: pub/sub messages (the frames coming back to the
 * subscriber connection) and a script's array reply of 100 items (a batch of 100 publishes answered). Client CPU
 * per message and per reply, ioredis (the engine's, 5.11) against ioredis 6 (`ioredis-6`, an npm alias in this
 * workspace) in RESP2 and RESP3. Each measurement is a child process pinned to `--core`; medians of `--reps`.
 *
 *   node bench/redis-decode.mjs [--reps 3] [--core 1] [--redis redis://127.0.0.1:6379]
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = fileURLToPath(import.meta.url);
const KINDS = ['ioredis', 'ioredis-6 resp2', 'ioredis-6 resp3'];
const MESSAGES = 50_000;
const REPLIES = 2_000;

async function child(kind, url) {
  const { Redis } = await import(kind.startsWith('ioredis-6') ? 'ioredis-6' : 'ioredis');
  const options = kind.endsWith('resp2') ? { protocol: 2 } : kind.endsWith('resp3') ? { protocol: 3 } : {};
  const sub = new Redis(url, options);
  const cmd = new Redis(url, options);
  const channel = `herald-bench-decode-${randomBytes(4).toString('hex')}`;
  await sub.subscribe(channel);
  let got = 0;
  let done = () => undefined;
  sub.on('messageBuffer', () => {
    if (++got === MESSAGES) done();
  });
  const frame = `12:tabc123:{"type":"n","channel":"user:u123","payload":{"i":1,"at":123.4,"text":"${'x'.repeat(40)}"},"seq":12}`;
  const publish = `for i = 1, tonumber(ARGV[2]) do redis.call('PUBLISH', KEYS[1], ARGV[1]) end return 1`;
  const reply = `local o = {} for i = 1, 100 do o[i] = {i, 'tabc123', 0} end return o`;
  // Warm-up, then the measured messages: Redis publishes them 100 per script call (its CPU, not the client's).
  const warm = new Promise((r) => (done = r));
  for (let i = 0; i < MESSAGES / 100; i++) await cmd.eval(publish, 1, channel, frame, 100);
  await warm;
  got = 0;
  const all = new Promise((r) => (done = r));
  let c0 = process.cpuUsage();
  for (let i = 0; i < MESSAGES / 100; i++) await cmd.eval(publish, 1, channel, frame, 100);
  await all;
  let c = process.cpuUsage(c0);
  const messageUs = (c.user + c.system) / MESSAGES;
  for (let i = 0; i < 200; i++) await cmd.eval(reply, 0);
  c0 = process.cpuUsage();
  for (let i = 0; i < REPLIES; i++) await cmd.eval(reply, 0);
  c = process.cpuUsage(c0);
  sub.disconnect();
  cmd.disconnect();
  return { messageUs, replyUs: (c.user + c.system) / REPLIES };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

if (process.argv[2] === '--child') {
  process.stdout.write(JSON.stringify(await child(process.argv[3], process.argv[4])));
} else {
  const { values } = parseArgs({
    options: {
      reps: { type: 'string', default: '3' },
      core: { type: 'string', default: '1' },
      redis: { type: 'string', default: process.env.HERALD_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379' },
    },
  });
  const runs = Object.fromEntries(KINDS.map((k) => [k, []]));
  for (let rep = 0; rep < Number(values.reps); rep++)
    for (const kind of KINDS) {
      const r = spawnSync('taskset', ['-c', values.core, process.execPath, here, '--child', kind, values.redis], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`${kind} failed: ${r.stderr}`);
      runs[kind].push(JSON.parse(r.stdout));
    }
  console.log('| client | CPU per pub/sub message (µs, with the publishing calls) | CPU per 100-item script reply (µs) |');
  console.log('|---|---|---|');
  for (const kind of KINDS) {
    const rs = runs[kind];
    console.log(`| ${kind} | ${median(rs.map((r) => r.messageUs)).toFixed(2)} | ${median(rs.map((r) => r.replyUs)).toFixed(1)} |`);
  }
}
