#!/usr/bin/env node
/**
 * What a publish costs the gateway's Redis client, in client CPU, and Redis, in its own CPU: `ioredis`, the version
 * the engine uses (5.11), sending as the engine does (`sendCommand` of engine/redis/client.ts: the turn's publishes
 * as one call of the batch form, a turn's only publish as the plain script, no auto-pipelining); `ioredis-6`, the
 * same with ioredis 6 (its new RESP decoder, RESP3 by default); `node-redis` (`redis` on npm), one EVALSHA per
 * publish (it pipelines a tick's commands by itself). Publishes come in turns of `--per-turn` (1: one-message
 * requests one at a time; 50: a batched request), to `user:<n>` channels with their counts, as the gateway sends
 * them. Each measurement is a child process pinned to `--core`; the kinds alternate, and the medians of `--reps`
 * runs are printed.
 *
 *   npm run build && node bench/redis-clients.mjs [--per-turn 1,5,50] [--publishes 20000] [--reps 3] [--core 1]
 *     [--redis redis://127.0.0.1:6379]
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { deleteRedisKeys } from '../scripts/redis-keys.mjs';

const here = fileURLToPath(import.meta.url);
const KINDS = ['ioredis-6', 'ioredis', 'node-redis'];

async function child(kind, perTurn, total, url) {
  const source = readFileSync(new URL('../packages/server/lua/publish.lua', import.meta.url), 'utf8');
  const { publishBatchSource } = await import('../packages/server/dist/engine/redis/publish-batch.js');
  const batchSource = publishBatchSource(source);
  const sha = (s) => createHash('sha1').update(s).digest('hex');
  const prefix = `herald-bench-clients-${randomBytes(4).toString('hex')}`;
  const item = (i) => {
    const user = `u${i % 5000}`;
    const channel = `user:${user}`;
    const keys = [`${prefix}:{${channel}}:meta`, `${prefix}:{${channel}}:stream`, `${prefix}:{${channel}}:members`, `${prefix}:user:{${user}}`];
    const args = [channel, 'notify', `{"text":"hello","n":${i}}`, 'e1', '100', '60000', '120000', '300000', '0', '1048576', '', String(Date.now()), '2'];
    return { keys, args };
  };
  let send;
  let info;
  let close;
  if (kind === 'node-redis') {
    const { createClient } = await import('redis');
    const r = createClient({ url, disableOfflineQueue: true });
    await r.connect();
    const one = await r.scriptLoad(source);
    send = (items) => Promise.all(items.map(({ keys, args }) => r.evalSha(one, { keys, arguments: args })));
    info = () => r.info('cpu');
    close = async () => {
      await r.quit();
      await deleteRedisKeys(url, prefix);
    };
  } else {
    const { Redis, Command } = await import(kind === 'ioredis-6' ? 'ioredis-6' : 'ioredis');
    const { sendCommand } = await import('../packages/server/dist/engine/redis/client.js');
    const r = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, lazyConnect: true });
    await r.connect();
    await r.script('LOAD', source);
    await r.script('LOAD', batchSource);
    const one = sha(source);
    const many = sha(batchSource);
    // The engine's sendCommand, or the same for ioredis 6 (a Command of its own version, handed its arguments).
    const evalsha = (argv) => {
      if (kind === 'ioredis') return sendCommand(r, 'evalsha', argv);
      const c = new Command('evalsha', [], { replyEncoding: 'utf8' });
      c.args = argv.map(String);
      c.stringifyArguments();
      r.sendCommand(c);
      return c.promise;
    };
    // As the engine does (engine/redis/publish-batch.ts): a turn's only publish goes out as the plain script.
    send =
      perTurn === 1
        ? (items) => Promise.all(items.map(({ keys, args }) => evalsha([one, keys.length, ...keys, ...args])))
        : (items) => {
            const keys = [];
            const args = [items.length];
            for (const p of items) {
              keys.push(...p.keys);
              args.push(p.keys.length, p.args.length, ...p.args);
            }
            return evalsha([many, keys.length, ...keys, ...args]);
          };
    info = () => r.info('cpu');
    close = async () => {
      await r.quit();
      await deleteRedisKeys(url, prefix);
    };
  }
  const redisCpu = async () => {
    const s = await info();
    return Number(/used_cpu_user:([\d.]+)/.exec(s)?.[1]) + Number(/used_cpu_sys:([\d.]+)/.exec(s)?.[1]);
  };
  const run = async (n) => {
    for (let i = 0; i < n;) {
      const items = [];
      for (let j = 0; j < perTurn && i < n; j++, i++) items.push(item(i));
      await send(items);
    }
  };
  await run(Math.min(5000, total));
  const r0 = await redisCpu();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await run(total);
  const c = process.cpuUsage(c0);
  const seconds = (performance.now() - t0) / 1000;
  const r1 = await redisCpu();
  await close();
  return { clientUs: (c.user + c.system) / total, redisUs: ((r1 - r0) * 1e6) / total, rate: total / seconds };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

if (process.argv[2] === '--child') {
  const [kind, perTurn, total, url] = process.argv.slice(3);
  process.stdout.write(JSON.stringify(await child(kind, Number(perTurn), Number(total), url)));
} else {
  const { values } = parseArgs({
    options: {
      'per-turn': { type: 'string', default: '1,5,50' },
      publishes: { type: 'string', default: '20000' },
      reps: { type: 'string', default: '3' },
      core: { type: 'string', default: '1' },
      redis: { type: 'string', default: process.env.HERALD_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379' },
    },
  });
  console.log(`| publishes per turn | client | client CPU per publish (µs) | Redis CPU per publish (µs) | publishes/s (one connection) |`);
  console.log(`|---|---|---|---|---|`);
  for (const perTurn of values['per-turn'].split(',').map(Number)) {
    const runs = Object.fromEntries(KINDS.map((k) => [k, []]));
    for (let rep = 0; rep < Number(values.reps); rep++)
      for (const kind of KINDS) {
        const r = spawnSync('taskset', ['-c', values.core, process.execPath, here, '--child', kind, String(perTurn), values.publishes, values.redis], {
          encoding: 'utf8',
        });
        if (r.status !== 0) throw new Error(`${kind} failed: ${r.stderr}`);
        runs[kind].push(JSON.parse(r.stdout));
      }
    for (const kind of KINDS) {
      const rs = runs[kind];
      const m = (f) => median(rs.map(f));
      console.log(`| ${perTurn} | ${kind} | ${m((r) => r.clientUs).toFixed(1)} | ${m((r) => r.redisUs).toFixed(1)} | ${Math.round(m((r) => r.rate))} |`);
    }
  }
}
