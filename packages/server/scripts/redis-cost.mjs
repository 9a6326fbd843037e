#!/usr/bin/env node
/**
 * What one publish and one connect cost the server, memory engine against Redis engine, in the same run:
 * server CPU (process.cpuUsage of the gateway process, the load generator runs apart), Redis commands and
 * Redis round trips (writes on the command connection; each write is answered as one batch).
 *
 *   npx tsc -b packages/server && node packages/server/scripts/redis-cost.mjs [--dist packages/server/dist]
 *     [--conns 500] [--connect-concurrency 10] [--publishes 3000] [--concurrency 16 | --rate <publishes/s>] [--engines memory,redis]
 *     [--redis redis://127.0.0.1:6379]
 *
 * `--dist` may point at another build (e.g. of main) to compare before and after in one run. Publishes are
 * single-message `POST /api/publish` to `user:<random>` channels (the PHP shape, keep-alive); connects are a
 * JWT `connect` with one extra channel in `subs`. Latency is publish-to-receive: at saturation (`--concurrency`
 * requests always in flight), or at a fixed `--rate` (open loop, e.g. half the saturated rate). The machine may be busy: compare ratios of one run.
 * For the Redis engine it also reports the CPU of one presence refresh (what the engine does every third of
 * presenceTtl for every connection of the node), per connection: the median of three, after the connects.
 * For the Redis engine it also reports Redis' own CPU per connect and per publish, with its top commands (INFO
 * commandstats; other clients of that Redis count too).
 * COST_SERVER_CORE=<n>: the gateway's core (taskset), apart from the load generator's.
 * COST_ALLOC=<dir>: the gateway writes a sampling profile of all its allocations there (see server()).
 * COST_PRESENCE_TTL=<ms>: the Redis engine's presenceTtl (its refresh runs every third of it; 600000 keeps it out of a run).
 */
import { execFileSync, fork } from 'node:child_process';
import { randomBytes, createHmac } from 'node:crypto';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';
import WebSocket from 'ws';

const API_KEY = 'cost_api_key_0123456789';
const SECRET = 'cost_jwt_secret_0123456789_0123456789_abcdef';
const here = fileURLToPath(import.meta.url);

function jwt(sub) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub })}`;
  return `${head}.${createHmac('sha256', SECRET).update(head).digest('base64url')}`;
}

/** The gateway process: starts, then answers `mark` with its CPU time and Redis counters. */
async function server() {
  const dist = process.env.COST_DIST;
  const mod = await import(pathToFileURL(resolve(dist, 'index.js')).href);
  const { Redis } = await import('ioredis');
  const counters = { writes: 0, commands: 0 };
  let engine;
  if (process.env.COST_ENGINE === 'redis') {
    const { createRedisEngine } = await import(pathToFileURL(resolve(dist, 'engine/redis/engine.js')).href);
    engine = createRedisEngine({
      url: process.env.COST_REDIS,
      prefix: `herald-cost-${randomBytes(4).toString('hex')}`,
      ...(process.env.COST_PRESENCE_TTL ? { presenceTtl: Number(process.env.COST_PRESENCE_TTL) } : {}),
      redis: (role, defaults) => {
        const c = new Redis(process.env.COST_REDIS, defaults);
        if (role !== 'command') return c;
        const send = c.sendCommand.bind(c);
        c.sendCommand = (...a) => {
          counters.commands += 1;
          return send(...a);
        };
        c.on('connect', () => {
          const s = c.stream;
          const write = s.write.bind(s);
          s.write = (...a) => {
            counters.writes += 1;
            return write(...a);
          };
        });
        return c;
      },
    });
  }
  // COST_ALLOC=<dir>: a sampling profile of every allocation (collected ones too) over the whole run, written there at
  // the end (open it in Chrome's DevTools, Memory tab, or sum it by function): what drives the scavenges.
  let allocs;
  if (process.env.COST_ALLOC) {
    const { Session } = await import('node:inspector');
    allocs = new Session();
    allocs.connect();
    const post = (method, params) => new Promise((ok, fail) => allocs.post(method, params, (err, r) => (err ? fail(err) : ok(r))));
    await post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    allocs.stop = async () => {
      const { profile } = await post('HeapProfiler.stopSampling');
      const { writeFileSync } = await import('node:fs');
      writeFileSync(resolve(process.env.COST_ALLOC, `alloc-${process.env.COST_ENGINE}-${process.pid}.heapprofile`), JSON.stringify(profile));
    };
  }
  const gateway = await mod.createGateway({
    port: 0,
    apiKeys: [API_KEY],
    jwtSecrets: [SECRET],
    logger: mod.silentLogger(),
    ...(engine ? { engine } : {}),
  });
  process.on('message', (m) => {
    if (m === 'mark') process.send({ cpu: process.cpuUsage(), ...counters });
    // One presence refresh as the engine's tick runs it (every third of presenceTtl): its CPU time, in µs.
    if (m === 'refresh') {
      const c0 = process.cpuUsage();
      const done = () => {
        const c = process.cpuUsage(c0);
        process.send({ refreshCpu: c.user + c.system });
      };
      if (!engine) done();
      else void Promise.all([engine.presence.refresh(), engine.members.refresh()]).then(done);
    }
    if (m === 'stop') void (allocs ? allocs.stop() : Promise.resolve()).then(() => gateway.close()).then(() => process.exit(0));
  });
  process.send({ port: gateway.address().port });
}

function child(dist, engineName, redisUrl) {
  // COST_PROF=<dir>: the gateway writes a V8 CPU profile there (read it with bench/profile-top.mjs).
  // COST_NODE_ARGS: more flags for the gateway's node (e.g. --trace-gc).
  const execArgv = [
    ...(process.env.COST_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.COST_PROF}`] : []),
    ...(process.env.COST_NODE_ARGS ?? '').split(' ').filter((a) => a !== ''),
  ];
  const p = fork(here, ['--server'], { execArgv, env: { ...process.env, COST_DIST: dist, COST_ENGINE: engineName, COST_REDIS: redisUrl } });
  // COST_SERVER_CORE=<n>: pin the gateway to that core (run the script itself pinned to another, e.g. `taskset -c 1`):
  // sharing a core, a profile counts the other process's turn on the core as the time of the syscall that woke it.
  if (process.env.COST_SERVER_CORE) execFileSync('taskset', ['-cp', process.env.COST_SERVER_CORE, String(p.pid)], { stdio: 'ignore' });
  const waiting = [];
  p.on('message', (m) => waiting.shift()?.(m));
  const next = () => new Promise((r) => waiting.push(r));
  return {
    ready: next(),
    mark: () => {
      const m = next();
      p.send('mark');
      return m;
    },
    refresh: () => {
      const m = next();
      p.send('refresh');
      return m;
    },
    stop: () => new Promise((r) => (p.once('exit', r), p.send('stop'))),
  };
}

const diff = (a, b) => ({
  cpu: b.cpu.user + b.cpu.system - (a.cpu.user + a.cpu.system),
  system: b.cpu.system - a.cpu.system,
  writes: b.writes - a.writes,
  commands: b.commands - a.commands,
});

const pct = (xs, q) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? NaN;

async function pool(n, concurrency, fn) {
  let i = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (i < n) await fn(i++);
    }),
  );
}

/**
 * Redis' own CPU time (µs, all its threads) and its per-command counts and times (INFO commandstats), to diff
 * around a phase: what a connect or a publish costs Redis beside the gateway. Other clients of the same Redis count
 * too: run it on a quiet one.
 */
async function redisStats(redis) {
  const text = await redis.info('all');
  const num = (name) => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(text)?.[1] ?? 0);
  const commands = new Map();
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) commands.set(m[1], { calls: Number(m[2]), usec: Number(m[3]) });
  return { cpuUs: (num('used_cpu_user') + num('used_cpu_sys')) * 1e6, commands };
}

/** What Redis spent between two redisStats, per operation (n of them): CPU and the top commands by time. */
function redisDiff(a, b, n) {
  const top = [...b.commands]
    .map(([name, c]) => ({ name, calls: (c.calls - (a.commands.get(name)?.calls ?? 0)) / n, usec: (c.usec - (a.commands.get(name)?.usec ?? 0)) / n }))
    .filter((c) => c.calls > 0)
    .sort((x, y) => y.usec - x.usec)
    .slice(0, Number(process.env.COST_TOP ?? 6));
  return { cpuUs: (b.cpuUs - a.cpuUs) / n, top };
}

async function run(dist, engineName, o) {
  const srv = child(dist, engineName, o.redis);
  const { Redis } = await import('ioredis');
  const stats = engineName === 'redis' ? new Redis(o.redis) : undefined;
  const redisNow = () => (stats ? redisStats(stats) : undefined);
  const { port } = await srv.ready;
  const sockets = [];
  let received = 0;
  /** Publish-to-receive latencies (ms) of the measured publishes (the load generator's clock on both ends). */
  const latencies = [];
  let measuring = false;
  const connect = (i) =>
    new Promise((ok, fail) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
      ws.on('error', fail);
      ws.on('open', () => ws.send(JSON.stringify({ type: 'connect', token: jwt(`u${i}`), subs: { [`room-${i % 50}`]: {} } })));
      ws.on('message', (data) => {
        for (const line of data.toString().split('\n')) {
          const f = JSON.parse(line);
          if (f.type === 'connected') ok();
          else if (f.type === 'n') {
            received += 1;
            if (measuring) latencies.push(performance.now() - f.payload.at);
          }
        }
      });
      sockets.push(ws);
    });
  await pool(20, 10, (i) => connect(o.conns + i)); // warm-up
  let a = await srv.mark();
  let r0 = await redisNow();
  await pool(o.conns, o.connectConcurrency, connect);
  const conn = diff(a, await srv.mark());
  const connRedis = r0 && redisDiff(r0, await redisNow(), o.conns);
  // The presence refresh of every connection (Redis engine only): the median of three, per connection.
  const refreshes = [];
  if (engineName === 'redis') for (let i = 0; i < 3; i++) refreshes.push((await srv.refresh()).refreshCpu / (o.conns + 20));

  const agent = new http.Agent({ keepAlive: true, maxSockets: o.rate > 0 ? 256 : o.concurrency });
  const post = (body) =>
    new Promise((ok, fail) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port,
          path: '/api/publish',
          method: 'POST',
          agent,
          headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
        },
        (res) => {
          let text = '';
          res.on('data', (c) => (text += c));
          res.on('end', () => (res.statusCode === 200 ? ok(JSON.parse(text)) : fail(new Error(`${res.statusCode} ${text}`))));
        },
      );
      req.on('error', fail);
      req.end(JSON.stringify(body));
    });
  const one = (i) => post({ channel: `user:u${Math.floor(Math.random() * o.conns)}`, type: 'n', payload: { i, at: performance.now(), text: 'hello there' } });
  let online = 0;
  await pool(300, o.concurrency, one);
  const warm = received;
  a = await srv.mark();
  r0 = await redisNow();
  measuring = true;
  const t0 = performance.now();
  const counted = async (i) => {
    const r = await one(i);
    if (Object.values(r.results)[0].online === true) online += 1;
  };
  if (o.rate > 0) {
    // Open loop at a fixed rate (for latency below saturation): publish i is due at i / rate seconds.
    const sent = [];
    for (let i = 0; i < o.publishes; i++) {
      const wait = t0 + (i * 1000) / o.rate - performance.now();
      if (wait >= 1) await new Promise((r) => setTimeout(r, wait));
      sent.push(counted(i));
    }
    await Promise.all(sent);
  } else {
    await pool(o.publishes, o.concurrency, counted);
  }
  const elapsed = performance.now() - t0;
  while (received - warm < o.publishes) await new Promise((r) => setTimeout(r, 5));
  const pub = diff(a, await srv.mark());
  const pubRedis = r0 && redisDiff(r0, await redisNow(), o.publishes);
  for (const ws of sockets) ws.terminate();
  agent.destroy();
  await srv.stop();
  stats?.disconnect();
  if (online !== o.publishes) throw new Error(`only ${online} of ${o.publishes} answers said online: true`);
  return {
    connect: {
      cpuUs: conn.cpu / o.conns,
      systemUs: conn.system / o.conns,
      redisCommands: conn.commands / o.conns,
      redisWrites: conn.writes / o.conns,
      redis: connRedis,
    },
    refreshUs: refreshes.length > 0 ? pct(refreshes, 0.5) : undefined,
    publish: {
      cpuUs: pub.cpu / o.publishes,
      redisCommands: pub.commands / o.publishes,
      redisWrites: pub.writes / o.publishes,
      perSecond: (o.publishes / elapsed) * 1000,
      p50: pct(latencies, 0.5),
      p99: pct(latencies, 0.99),
      redis: pubRedis,
    },
  };
}

if (process.argv.includes('--server')) {
  await server();
} else {
  const { values } = parseArgs({
    options: {
      dist: { type: 'string', multiple: true },
      conns: { type: 'string', default: '500' },
      publishes: { type: 'string', default: '3000' },
      concurrency: { type: 'string', default: '16' },
      'connect-concurrency': { type: 'string', default: '10' },
      rate: { type: 'string', default: '0' },
      engines: { type: 'string', default: 'memory,redis' },
      redis: { type: 'string', default: process.env.HERALD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379' },
    },
  });
  const o = {
    conns: Number(values.conns),
    publishes: Number(values.publishes),
    concurrency: Number(values.concurrency),
    connectConcurrency: Number(values['connect-concurrency']),
    rate: Number(values.rate),
    redis: values.redis,
  };
  const dists = values.dist ?? [resolve(here, '../../dist')];
  const f = (x) => (Number.isInteger(x) ? String(x) : x.toFixed(2));
  for (const dist of dists) {
    const rows = {};
    for (const e of values.engines.split(',')) rows[e] = await run(dist, e, o);
    console.log(`\n${dist}`);
    for (const [e, r] of Object.entries(rows))
      console.log(
        `  ${e.padEnd(6)} publish: ${f(r.publish.cpuUs)} us CPU, ${f(r.publish.redisCommands)} cmds, ${f(r.publish.redisWrites)} writes, ${f(r.publish.perSecond)}/s (p50 ${f(r.publish.p50)} ms, p99 ${f(r.publish.p99)} ms)` +
          ` | connect: ${f(r.connect.cpuUs)} us CPU (${f(r.connect.systemUs)} system), ${f(r.connect.redisCommands)} cmds, ${f(r.connect.redisWrites)} writes` +
          (r.refreshUs === undefined ? '' : ` | presence refresh: ${f(r.refreshUs)} us CPU per connection`),
      );
    const side = (r) =>
      r.redis && `Redis CPU ${f(r.redis.cpuUs)} us (${r.redis.top.map((c) => `${c.name} ${f(c.calls)} x ${f(c.usec / c.calls)} us`).join(', ')})`;
    if (rows.redis?.connect.redis) console.log(`  redis  connect: ${side(rows.redis.connect)}\n  redis  publish: ${side(rows.redis.publish)}`);
    if (rows.memory && rows.redis)
      console.log(
        `  redis/memory CPU: publish ${f(rows.redis.publish.cpuUs / rows.memory.publish.cpuUs)}x, connect ${f(rows.redis.connect.cpuUs / rows.memory.connect.cpuUs)}x`,
      );
  }
}
