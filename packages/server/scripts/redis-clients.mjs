// ioredis (auto-pipelined, as the engine's command connection) against node-redis (`redis` on npm, which
// pipelines a tick's commands by itself) on Herald's publish path: EVALSHA publish.lua and the two ZCOUNTs of
// the answer per publish, K publishes issued per event-loop turn, every PUBLISHed message received on a
// subscriber connection. Prints client-side CPU per publish (this process) and the rate.
//
//   npm i --no-save redis && node packages/server/scripts/redis-clients.mjs [N=20000] [K=16] [ioredis|node-redis|both]
//
// NO_AUTO=1 turns ioredis' auto-pipelining off; NO_TIMEOUT=1 leaves out ioredis' commandTimeout (one timer per command) to see what it costs.
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createHash, randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
const lua = readFileSync(new URL('../lua/publish.lua', import.meta.url), 'utf8');
const sha = createHash('sha1').update(lua).digest('hex');
const REDIS = process.env.HERALD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const N = Number(process.argv[2] ?? 20000),
  K = Number(process.argv[3] ?? 16),
  CH = 500;
const which = process.argv[4] ?? 'both';

async function run(name, mk) {
  const prefix = `herald-nrbench-${randomBytes(3).toString('hex')}`;
  const c = await mk(prefix);
  let got = 0;
  await c.subscribe(
    Array.from({ length: CH }, (_, i) => `${prefix}:{user:u${i}}:pub`),
    () => got++,
  );
  await c.load();
  const one = (i) => {
    const ch = `user:u${i % CH}`;
    const keys = [`${prefix}:{${ch}}:meta`, `${prefix}:{${ch}}:stream`];
    const args = [ch, 'n', `{"i":${i},"text":"hello there"}`, '', '1000', '600000', '3600000', '300000', '0', '1048576', ''];
    return Promise.all([c.evalsha(keys, args), c.zcount(`${prefix}:{${ch}}:members`), c.zcount(`${prefix}:user:{u${i % CH}}`)]);
  };
  // warm-up
  for (let i = 0; i < 2000; i += K) await Promise.all(Array.from({ length: K }, (_, j) => one(i + j)));
  const before = got;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < N; i += K) {
    await Promise.all(Array.from({ length: K }, (_, j) => one(i + j)));
  }
  while (got - before < N) await new Promise((r) => setTimeout(r, 1));
  const cpu = process.cpuUsage(cpu0);
  const ms = performance.now() - t0;
  console.log(`${name.padEnd(10)} K=${K}: ${((cpu.user + cpu.system) / N).toFixed(1)} us CPU/publish, ${((N / ms) * 1000).toFixed(0)} publishes/s`);
  await c.close(prefix);
}

const cleanup = async (r, prefix) => {
  let cur = '0';
  do {
    const [n, ks] = await r.scan(cur, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cur = n;
    if (ks.length) await r.unlink(...ks);
  } while (cur !== '0');
};

const ioredis = async () => {
  const cmd = new Redis(REDIS, {
    enableAutoPipelining: process.env.NO_AUTO !== '1',
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    ...(process.env.NO_TIMEOUT ? {} : { commandTimeout: 5000 }),
    lazyConnect: true,
  });
  const sub = new Redis(REDIS, { lazyConnect: true, enableOfflineQueue: false });
  await cmd.connect();
  await sub.connect();
  return {
    subscribe: async (chs, fn) => {
      sub.on('messageBuffer', fn);
      await sub.subscribe(...chs);
    },
    load: () => cmd.script('LOAD', lua),
    evalsha: (keys, args) => cmd.evalshaBuffer(sha, keys.length, ...keys, ...args),
    zcount: (k) => cmd.zcount(k, Date.now(), '+inf'),
    close: async (p) => {
      await cleanup(cmd, p);
      cmd.disconnect();
      sub.disconnect();
    },
  };
};
const noderedis = async () => {
  const cmd = createClient({ url: REDIS, disableOfflineQueue: true });
  const sub = cmd.duplicate();
  await cmd.connect();
  await sub.connect();
  const raw = new Redis(REDIS);
  return {
    subscribe: async (chs, fn) => {
      await sub.subscribe(chs, fn, true);
    },
    load: () => cmd.scriptLoad(lua),
    evalsha: (keys, args) => cmd.evalSha(sha, { keys, arguments: args }),
    zcount: (k) => cmd.zCount(k, Date.now(), '+inf'),
    close: async (p) => {
      await cleanup(raw, p);
      raw.disconnect();
      await cmd.quit();
      await sub.quit();
    },
  };
};
for (let round = 0; round < 2; round++) {
  if (which !== 'node-redis') await run('ioredis', ioredis);
  if (which !== 'ioredis') await run('node-redis', noderedis);
}
