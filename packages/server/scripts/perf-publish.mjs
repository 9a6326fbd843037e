#!/usr/bin/env node
/**
 * Server CPU per `POST /api/publish` with one message to a user channel (issue 13), measured with
 * process.cpuUsage() of the server process over N keep-alive requests, for Herald on the `ws` and `uws`
 * transports (memory engine) and a Socket.IO server doing what bench/src/servers/socketio.ts does.
 * CPU per request, not throughput: the machine may be busy. Build first (`npx tsc -b packages/server`).
 *
 *   node packages/server/scripts/perf-publish.mjs [requests=20000] [kinds=ws,uws,socketio] [rounds=3]
 *   HERALD_PERF_OTHER_DIST=/path/to/packages/server/dist ... ws@other,uws@other,ws,uws,socketio   before/after
 *   HERALD_PERF_PROF=1 ...   also writes a --cpu-prof profile of each server into ./perf-prof/
 *   HERALD_PERF_PIN=1 ...    the server on core 0 and this load generator on core 1 (taskset), as the bench does
 *   HERALD_PERF_NEW=1 ...    a new TCP connection per request (no keep-alive), as php-fpm without a reused curl handle
 *   HERALD_PERF_OPTS='{"historySize":0}' ...   more gateway options for Herald's kinds (JSON)
 *   HERALD_PERF_REDIS=redis://127.0.0.1:6379 ...   Herald's kinds on the Redis engine (a prefix of their own, deleted after)
 *   HERALD_PERF_CHANNELS=5000 ...   how many user channels the publishes go to, in turn
 *   HERALD_PERF_EXEC_ARGV='--trace-deopt' ...   Node options of the server process (without HERALD_PERF_PROF)
 *   HERALD_PERF_ALLOC=<dir> ...  each server writes a sampling profile of all its allocations (collected ones too) there
 *                            when it exits: what drives its scavenges (sum it with scripts/alloc-top.mjs)
 *   HERALD_PERF_TRIVIAL=1 (or =headers) ...   Herald's transports with a handler that only reads the body and
 *                            answers (with Herald's response headers): the floor of each transport
 *   HERALD_PERF_SPIN=50 ...  with HERALD_PERF_TRIVIAL, the handler also busy-waits that many µs before answering: how
 *                            a server's CPU per request grows once the load generator waits for it (see
 *                            docs/benchmarks.md, "one-message requests on new connections")
 * Prints the median and the minimum of the rounds; on a busy machine compare ratios within one run.
 */
import { fork, spawnSync } from 'node:child_process';
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { deleteRedisKeys } from '../../../scripts/redis-keys.mjs';

const API_KEY = 'perf_api_key_0123456789';
const CHANNELS = Number(process.env.HERALD_PERF_CHANNELS ?? 5000);
const self = fileURLToPath(import.meta.url);

async function serve(kind) {
  const port = 0;
  const redisUrl = kind === 'socketio' ? undefined : process.env.HERALD_PERF_REDIS;
  const prefix = `herald-perf-${process.pid}`;
  let address;
  if (kind === 'socketio') {
    const { createServer } = await import('node:http');
    const { Server } = await import('socket.io');
    let seq = 0;
    // bench/src/servers/body.ts + socketio.ts, inlined.
    const server = createServer((req, res) => {
      if (req.method !== 'POST' || req.url !== '/publish') {
        res.writeHead(404).end();
        return;
      }
      new Promise((resolve, reject) => {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
          try {
            const v = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            resolve(Array.isArray(v) ? v : [v]);
          } catch (err) {
            reject(err);
          }
        });
        req.on('error', reject);
      }).then(
        (items) => {
          for (const it of items) io.to(it.channel).emit(it.type, { channel: it.channel, payload: it.payload, seq: ++seq });
          res.writeHead(200, { 'content-type': 'application/json' }).end(`{"published":${items.length}}`);
        },
        () => res.writeHead(400).end(),
      );
    });
    const io = new Server(server, { transports: ['websocket'], serveClient: false, perMessageDeflate: false, httpCompression: false });
    await new Promise((r) => server.listen(port, '127.0.0.1', r));
    address = server.address().port;
  } else {
    // `ws@other` / `uws@other`: the gateway built in HERALD_PERF_OTHER_DIST (another checkout's dist), for before/after in one run.
    const [transport, other] = kind.split('@');
    const dist = other === undefined ? new URL('../dist/', import.meta.url).href : `file://${process.env.HERALD_PERF_OTHER_DIST}/`;
    const { createGateway, createLogger, createRedisEngine } = await import(`${dist}index.js`);
    if (process.env.HERALD_PERF_TRIVIAL) {
      // Diagnosis: the transport with a handler that only reads the body and answers (no gateway work).
      const { TRANSPORTS } = await import(`${dist}transport/registry.js`);
      const orig = TRANSPORTS[transport];
      TRANSPORTS[transport] = (deps) =>
        orig({
          ...deps,
          http: (req, res) => {
            req.body(1e6).then(() => {
              const spin = Number(process.env.HERALD_PERF_SPIN ?? 0);
              if (spin > 0) {
                const until = process.hrtime.bigint() + BigInt(spin * 1000);
                while (process.hrtime.bigint() < until);
              }
              if (process.env.HERALD_PERF_TRIVIAL === 'headers') {
                const body =
                  '{"results":{"user:1234":{"seq":12,"epoch":"abcdefgh1234","duplicate":false,"subscribers":0,"online":false,"live":false,"stored":false}}}';
                res.writeHead(200, {
                  'content-type': 'application/json; charset=utf-8',
                  'content-length': Buffer.byteLength(body),
                  'cache-control': 'no-store',
                  'x-request-id': 'f4b0b8a2-5c3e-4a51-9d3c-2b8f0a6f1e2d',
                });
                res.end(body);
                return;
              }
              res.writeHead(200, { 'content-type': 'application/json' });
              res.end('{"published":1}');
            });
          },
        });
    }
    const engine = redisUrl ? createRedisEngine({ url: redisUrl, prefix, logger: createLogger('warn') }) : undefined;
    const gateway = await createGateway({
      ...(engine ? { engine } : {}),
      port,
      host: '127.0.0.1',
      apiKeys: [API_KEY],
      jwtSecrets: ['perf_jwt_secret_0123456789_0123456789_abcdef'],
      allowAnonymous: true,
      logger: createLogger('warn'),
      transport,
      ...(process.env.HERALD_PERF_OPTS ? JSON.parse(process.env.HERALD_PERF_OPTS) : {}),
    });
    address = gateway.address().port;
  }
  const allocs = process.env.HERALD_PERF_ALLOC ? await sampleAllocations(process.env.HERALD_PERF_ALLOC, kind) : undefined;
  process.on('message', (m) => {
    if (m === 'cpu') {
      const u = process.cpuUsage();
      process.send({ cpu: u.user + u.system, sys: u.system });
    } else if (m === 'exit') {
      void (async () => {
        if (allocs) await allocs();
        if (redisUrl) await deleteRedisKeys(redisUrl, prefix);
        process.exit(0);
      })();
    }
  });
  process.send({ port: address });
}

/** Starts sampling every allocation of this process (collected ones too); the function returned writes the profile. */
async function sampleAllocations(dir, kind) {
  const { Session } = await import('node:inspector');
  const { writeFileSync } = await import('node:fs');
  const { resolve } = await import('node:path');
  const session = new Session();
  session.connect();
  const post = (method, params) => new Promise((ok, fail) => session.post(method, params, (err, r) => (err ? fail(err) : ok(r))));
  await post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  return async () => {
    const { profile } = await post('HeapProfiler.stopSampling');
    writeFileSync(resolve(dir, `alloc-${kind.replace('@', '-')}-${process.pid}.heapprofile`), JSON.stringify(profile));
  };
}

function ask(child, what) {
  return new Promise((resolve) => {
    child.once('message', resolve);
    child.send(what);
  });
}

async function drive(port, kind, n, concurrency = 16) {
  const agent = new Agent({ keepAlive: !process.env.HERALD_PERF_NEW, maxSockets: concurrency });
  const path = kind === 'socketio' ? '/publish' : '/api/publish';
  let sent = 0;
  let failed = 0;
  const one = (i) =>
    new Promise((resolve) => {
      const body = JSON.stringify({ channel: `user:${i % CHANNELS}`, type: 'notify', payload: { text: 'hello', n: i } });
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path,
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${API_KEY}` },
        },
        (res) => {
          if (res.statusCode !== 200) failed++;
          res.resume();
          res.on('end', resolve);
        },
      );
      req.on('error', () => {
        failed++;
        resolve();
      });
      req.end(body);
    });
  const worker = async () => {
    while (sent < n) await one(sent++);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  agent.destroy();
  if (failed > 0) throw new Error(`${kind}: ${failed} requests failed`);
}

async function measure(kind, n) {
  const execArgv = process.env.HERALD_PERF_PROF
    ? ['--cpu-prof', '--cpu-prof-dir=perf-prof']
    : process.env.HERALD_PERF_EXEC_ARGV
      ? process.env.HERALD_PERF_EXEC_ARGV.split(' ')
      : [];
  const child = fork(self, ['--serve', kind], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  if (process.env.HERALD_PERF_PIN) {
    spawnSync('taskset', ['-a', '-pc', '0', String(child.pid)], { stdio: 'ignore' });
    spawnSync('taskset', ['-a', '-pc', '1', String(process.pid)], { stdio: 'ignore' });
  }
  const { port } = await new Promise((resolve) => child.once('message', resolve));
  await drive(port, kind, Math.min(5000, n)); // warm-up (JIT)
  const b = await ask(child, 'cpu');
  const t0 = process.hrtime.bigint();
  await drive(port, kind, n, Number(process.env.HERALD_PERF_CONCURRENCY ?? 16));
  const wall = Number(process.hrtime.bigint() - t0) / 1e3;
  const a = await ask(child, 'cpu');
  child.send('exit');
  await new Promise((r) => child.once('exit', r));
  return { us: (a.cpu - b.cpu) / n, sysUs: (a.sys - b.sys) / n, wallUs: wall / n };
}

if (process.argv[2] === '--serve') {
  await serve(process.argv[3]);
} else {
  const n = Number(process.argv[2] ?? 20000);
  const kinds = (process.argv[3] ?? 'ws,uws,socketio').split(',');
  const rounds = Number(process.argv[4] ?? 3);
  const results = Object.fromEntries(kinds.map((k) => [k, []]));
  for (let r = 0; r < rounds; r++) for (const k of kinds) results[k].push(await measure(k, n));
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const base = results['socketio'] ? median(results['socketio'].map((x) => x.us)) : undefined;
  const baseMin = results['socketio'] ? Math.min(...results['socketio'].map((x) => x.us)) : undefined;
  for (const k of kinds) {
    const us = median(results[k].map((x) => x.us));
    const min = Math.min(...results[k].map((x) => x.us));
    const wall = median(results[k].map((x) => x.wallUs));
    const sys = median(results[k].map((x) => x.sysUs));
    const ratio = base === undefined ? '' : `  ${(us / base).toFixed(2)}x socketio (min ${(min / (baseMin ?? min)).toFixed(2)}x)`;
    console.log(
      `${k.padEnd(9)} server CPU ${us.toFixed(1)} us/request (min ${min.toFixed(1)}; runs: ${results[k].map((x) => x.us.toFixed(1)).join(', ')}; system ${sys.toFixed(1)})  wall ${wall.toFixed(1)} us/request${ratio}`,
    );
  }
}
