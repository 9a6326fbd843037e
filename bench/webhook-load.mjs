// Event-loop pauses and publish latency of a gateway that sends lifecycle webhooks while it serves publishes: the
// workload behind "Webhooks and the publish hook POST with undici's request" in docs/benchmarks.md.
//
// The gateway (memory engine, `ws` transport) runs in a child process on core 0; this process, on core 1, is the
// load: a local webhook receiver, `--subscribers` connections on 10 channels, `--cycles` connect/close cycles per
// second (each a user's first connection and a channel's first subscriber: user.online, channel.occupied,
// channel.vacated, and user.offline after the hold-back) and `--publishes` one-message HTTP publishes per second to
// the 10 channels, each carrying its send time. Reported per window of `--window` seconds after `--warmup`: webhooks
// received, deliveries, publish-to-receive p50/p99, the server's CPU, its young and full garbage collections, and
// its longest event-loop stall (perf_hooks, measured inside the server). `--no-webhooks` runs the same load without
// an endpoint, for the difference.
//
// Build first (npx tsc -b packages/server). Usage:
//   node bench/webhook-load.mjs [--seconds 50] [--warmup 15] [--window 10] [--cycles 50] [--publishes 300]
//                               [--subscribers 100] [--no-webhooks] [--dist packages/server/dist]
import { spawn, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { constants, monitorEventLoopDelay, performance, PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const API_KEY = 'bench_api_key_0123456789abcdef';
const JWT_SECRET = 'bench_jwt_secret_0123456789_0123456789_abcdef';
const WEBHOOK_SECRET = `whsec_${Buffer.from('bench-webhook-secret-0123456789ab').toString('base64')}`;
const CHANNELS = 10;
const self = fileURLToPath(import.meta.url);

const { values: opts } = parseArgs({
  options: {
    serve: { type: 'string' },
    seconds: { type: 'string', default: '50' },
    warmup: { type: 'string', default: '15' },
    window: { type: 'string', default: '10' },
    cycles: { type: 'string', default: '50' },
    publishes: { type: 'string', default: '300' },
    subscribers: { type: 'string', default: '100' },
    'no-webhooks': { type: 'boolean', default: false },
    dist: { type: 'string', default: fileURLToPath(new URL('../packages/server/dist', import.meta.url)) },
  },
});

if (opts.serve !== undefined) await serve(JSON.parse(opts.serve));
else await load();

/** The child: the gateway, and what it measures of itself, answered over IPC. */
async function serve({ dist, receiver }) {
  const { createGateway, createLogger } = await import(`${dist}/index.js`);
  const gateway = await createGateway({
    port: 0,
    host: '127.0.0.1',
    apiKeys: [API_KEY],
    jwtSecrets: [JWT_SECRET],
    logger: createLogger('warn'),
    ...(receiver === undefined ? {} : { webhookUrl: receiver, webhookSecret: WEBHOOK_SECRET }),
  });
  const gcs = { minor: 0, major: 0, minorMs: 0, majorMs: 0 };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const major = e.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR;
      gcs[major ? 'major' : 'minor'] += 1;
      gcs[major ? 'majorMs' : 'minorMs'] += e.duration;
    }
  }).observe({ entryTypes: ['gc'] });
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  process.on('message', (m) => {
    if (m === 'sample') {
      process.send({ type: 'sample', cpu: process.cpuUsage(), gcs: { ...gcs }, stallMs: delay.max / 1e6, heapMB: process.memoryUsage().heapUsed / 1e6 });
      for (const k of Object.keys(gcs)) gcs[k] = 0;
      delay.reset();
    } else if (m === 'stop') {
      void gateway.close().then(() => process.exit(0));
    }
  });
  // The load went away (killed, crashed): so does the gateway.
  process.on('disconnect', () => process.exit(0));
  process.send({ type: 'ready', port: gateway.address().port });
}

function tokenFor(sub) {
  const b64 = (s) => Buffer.from(s).toString('base64url');
  const head = b64(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64(JSON.stringify({ sub, exp: Math.floor(Date.now() / 1000) + 3600 }));
  return `${head}.${body}.${createHmac('sha256', JWT_SECRET).update(`${head}.${body}`).digest('base64url')}`;
}

function percentile(sorted, p) {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function load() {
  const { WebSocket } = await import('ws');
  const { Agent, request } = await import('undici');
  spawnSync('taskset', ['-pc', '1', String(process.pid)], { stdio: 'ignore' });
  const seconds = Number(opts.seconds);
  const warmup = Number(opts.warmup);
  const windowS = Number(opts.window);

  let webhooks = 0;
  const receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      webhooks += 1;
      res.writeHead(204).end();
    });
  });
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const receiverUrl = `http://127.0.0.1:${receiver.address().port}/hook`;

  const child = spawn(
    'taskset',
    ['-c', '0', process.execPath, self, '--serve', JSON.stringify({ dist: opts.dist, receiver: opts['no-webhooks'] ? undefined : receiverUrl })],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
  );
  const replies = [];
  let waiting;
  child.on('message', (m) => (waiting ? (waiting(m), (waiting = undefined)) : replies.push(m)));
  const next = () => (replies.length > 0 ? Promise.resolve(replies.shift()) : new Promise((r) => (waiting = r)));
  const ready = await next();
  const base = `127.0.0.1:${ready.port}`;

  const open = (user, channel) =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://${base}/ws`);
      ws.on('open', () => ws.send(JSON.stringify({ type: 'connect', token: tokenFor(user), subs: { [channel]: {} } })));
      ws.on('error', reject);
      ws.once('message', (data) => (String(data).startsWith('{"type":"connected"') ? resolve(ws) : reject(new Error(String(data)))));
    });

  // The subscribers, and the latency of what reaches them.
  let latencies = [];
  let deliveries = 0;
  const subscribers = [];
  for (let i = 0; i < Number(opts.subscribers); i++) {
    const ws = await open(`reader-${i}`, `room-${i % CHANNELS}`);
    ws.on('message', (data) => {
      const text = String(data);
      const at = text.indexOf('"sent":');
      if (at < 0) return;
      deliveries += 1;
      latencies.push(performance.timeOrigin + performance.now() - Number.parseFloat(text.slice(at + 7)));
    });
    subscribers.push(ws);
  }

  // Connect/close cycles: a new user each time, on one of 50 channels nobody else is on.
  let cycle = 0;
  let cycleErrors = 0;
  const cycles = setInterval(
    () => {
      const n = cycle++;
      open(`churn-${n}`, `churn-room-${n % 50}`).then(
        (ws) => setTimeout(() => ws.close(), 100),
        () => (cycleErrors += 1),
      );
    },
    1000 / Number(opts.cycles),
  );

  // One-message publishes, each with its send time.
  const dispatcher = new Agent({ connections: 16 });
  let publishErrors = 0;
  let published = 0;
  const publishes = setInterval(
    () => {
      published += 1;
      const body = JSON.stringify({ channel: `room-${published % CHANNELS}`, type: 'tick', payload: { sent: performance.timeOrigin + performance.now() } });
      request(`http://${base}/api/publish`, {
        method: 'POST',
        dispatcher,
        headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
        body,
      }).then(
        (res) => {
          if (res.statusCode !== 200) publishErrors += 1;
          return res.body.dump();
        },
        () => (publishErrors += 1),
      );
    },
    1000 / Number(opts.publishes),
  );

  const sample = async () => {
    child.send('sample');
    for (;;) {
      const m = await next();
      if (m.type === 'sample') return m;
    }
  };
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  console.log(
    `webhook-load: ${opts.subscribers} subscribers, ${opts.cycles} connect/close cycles/s, ${opts.publishes} publishes/s, ` +
      `${opts['no-webhooks'] ? 'no webhook endpoint' : 'lifecycle webhooks to a local receiver'}; warm-up ${warmup} s`,
  );
  await sleep(warmup * 1000);
  let last = await sample();
  webhooks = 0;
  deliveries = 0;
  latencies = [];
  const total = { minor: 0, major: 0, stalls: [] };
  for (let t = 0; t < seconds; t += windowS) {
    await sleep(windowS * 1000);
    const s = await sample();
    const cpuMs = (s.cpu.user + s.cpu.system - last.cpu.user - last.cpu.system) / 1000;
    last = s;
    const sorted = latencies.sort((a, b) => a - b);
    console.log(
      `  ${String(t + windowS).padStart(3)} s: webhooks ${Math.round(webhooks / windowS)}/s, deliveries ${Math.round(deliveries / windowS)}/s, ` +
        `p50 ${percentile(sorted, 50).toFixed(1)} p99 ${percentile(sorted, 99).toFixed(1)} ms, server CPU ${Math.round(cpuMs / (windowS * 10))}%, ` +
        `young GCs ${s.gcs.minor} (${s.gcs.minorMs.toFixed(0)} ms), full GCs ${s.gcs.major} (${s.gcs.majorMs.toFixed(0)} ms), ` +
        `longest stall ${s.stallMs.toFixed(0)} ms, heap ${s.heapMB.toFixed(0)} MB`,
    );
    total.minor += s.gcs.minor;
    total.major += s.gcs.major;
    total.stalls.push(s.stallMs);
    webhooks = 0;
    deliveries = 0;
    latencies = [];
  }
  console.log(`  total: young GCs ${total.minor}, full GCs ${total.major}, publish errors ${publishErrors}, cycle errors ${cycleErrors}`);
  clearInterval(cycles);
  clearInterval(publishes);
  for (const ws of subscribers) ws.terminate();
  child.send('stop');
  await new Promise((r) => child.once('exit', r));
  await dispatcher.close();
  receiver.close();
  receiver.closeAllConnections();
}
