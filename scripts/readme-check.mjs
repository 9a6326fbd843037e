#!/usr/bin/env node
// Runs README.md's commands the way a new user types them, on a fresh clone of the committed tree (issue 15):
// `git clone` of this repository into a temporary folder, `npm ci`, then the blocks of README.md as written
// (scripts/readme-commands.mjs says which and how): npm start in development mode, the node WebSocket
// subscriber, the curl publish with the printed key (the subscriber must print what the README says it
// prints), npm start with secrets, and "Scaling out" (three `npx herald` nodes on Redis; a publish on one
// reaches a subscriber on another); before them, packages/client/README.md's install block (clientInstall). The
// commands use fixed ports (8080-8083, Redis 6379), so they run in a
// network namespace of their own (`unshare -n`, loopback only, with a Redis started there) when the machine
// allows it, else on this machine's loopback with the Redis it finds on 6379 (the ports must be free).
// Usage: node scripts/readme-check.mjs        (scripts/test.sh runs it; about 2-3 minutes with a warm npm cache)
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readmePlan } from './readme-commands.mjs';

const HERE = fileURLToPath(new URL('..', import.meta.url));
const WAIT_MS = 300_000;
const say = (m) => process.stdout.write(`readme-check: ${m}\n`);
const fail = (m) => {
  throw new Error(m);
};

/** The environment a new user has: no HERALD_* variable, no NODE_ENV; npm quiet and (in a namespace) offline. */
function userEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HERALD_') && k !== 'NODE_ENV' && !k.startsWith('npm_')) env[k] = v;
  return { ...env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false', ...extra };
}

// ---------------------------------------------------------------------------------------------------------
// Outside: clone, npm ci, then the commands inside a network namespace.
// ---------------------------------------------------------------------------------------------------------
async function outside() {
  readmePlan(readFileSync(join(HERE, 'README.md'), 'utf8'));
  const dir = mkdtempSync(join(tmpdir(), 'herald-readme-'));
  const clone = join(dir, 'herald');
  try {
    say(`git clone ${HERE} ${clone}`);
    const git = spawnSync('git', ['clone', '-q', HERE, clone], { stdio: 'inherit' });
    if (git.status !== 0) fail('git clone failed');
    // The README's first command, with the network (the registry or npm's cache).
    say('npm ci');
    const ci = spawnSync('npm', ['ci'], { cwd: clone, stdio: 'inherit', env: userEnv() });
    if (ci.status !== 0) fail('npm ci failed on a fresh clone');
    clientInstall(clone, dir);
    const script = join(clone, 'scripts', 'readme-check.mjs');
    const ns = spawnSync('unshare', ['-n', 'true'], { stdio: 'ignore' }).status === 0;
    const inner = ns
      ? spawnSync('unshare', ['-n', 'sh', '-c', `ip link set lo up && exec "${process.execPath}" "${script}" --inside --namespace`], {
          cwd: clone,
          stdio: 'inherit',
        })
      : spawnSync(process.execPath, [script, '--inside'], { cwd: clone, stdio: 'inherit' });
    if (inner.status !== 0) fail(`the README commands failed (exit ${inner.status})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * packages/client/README.md's "Install" block, as a user of the clone types it: `npm run build` in the clone (the
 * README says so first), then each command with `/path/to/herald` as the clone and `/tmp` as a folder of this run;
 * `npm pack -w ...` runs in the clone, the installs in a new project, which must then import `@herald/client`.
 */
function clientInstall(clone, dir) {
  const readme = readFileSync(join(clone, 'packages', 'client', 'README.md'), 'utf8');
  const block = /## Install\n[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)?.[1];
  if (block === undefined) fail('packages/client/README.md has no sh block under "## Install"');
  const commands = block
    .split('\n')
    .map((line) => line.replace(/\s+#.*$/, '').trim())
    .filter((line) => line !== '');
  if (commands.length === 0) fail("the client README's install block has no command");
  say('npm run build (the client README: build the clone first)');
  if (spawnSync('npm', ['run', 'build', '--silent'], { cwd: clone, stdio: 'inherit', env: userEnv() }).status !== 0) fail('npm run build failed');
  const app = join(dir, 'client-app');
  const packed = join(dir, 'packed');
  mkdirSync(app);
  mkdirSync(packed);
  writeFileSync(join(app, 'package.json'), '{"name":"client-app","version":"1.0.0","private":true,"type":"module"}\n');
  for (const command of commands) {
    // `/tmp` first: the clone itself is in a temporary folder.
    const line = command.replace(/(^|\s)\/tmp(?=\/|\s|$)/g, `$1${packed}`).replaceAll('/path/to/herald', clone);
    const cwd = line.startsWith('npm pack ') ? clone : app;
    say(`${command}   (in ${cwd === clone ? 'the clone' : 'a new project'})`);
    const r = spawnSync('sh', ['-c', line], { cwd, stdio: 'inherit', env: userEnv() });
    if (r.status !== 0) fail(`the client README's install command failed: ${command}`);
    if (line.startsWith('npm install ')) {
      const check = spawnSync(
        process.execPath,
        ['-e', "import('@herald/client').then((m) => { if (typeof m.createClient !== 'function') process.exit(1); })"],
        {
          cwd: app,
          stdio: 'inherit',
        },
      );
      if (check.status !== 0) fail(`after \`${command}\` the project cannot import @herald/client`);
      if (!existsSync(join(app, 'node_modules', '@herald', 'client', 'dist', 'herald.min.js'))) fail(`after \`${command}\` there is no dist/herald.min.js`);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Inside: the commands, in the clone.
// ---------------------------------------------------------------------------------------------------------

/** A shell (or program) started in its own process group, its output collected. */
class Proc {
  constructor(name, cmd, args, env) {
    this.name = name;
    this.out = '';
    this.err = '';
    this.exit = undefined;
    this.waiters = [];
    this.child = spawn(cmd, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    for (const [s, field] of [
      [this.child.stdout, 'out'],
      [this.child.stderr, 'err'],
    ]) {
      s.setEncoding('utf8');
      s.on('data', (d) => {
        this[field] += d;
        this.wake();
      });
    }
    this.exited = new Promise((resolve) =>
      this.child.once('close', (code) => {
        this.exit = code;
        this.wake();
        resolve(code);
      }),
    );
    Proc.all.push(this);
  }

  wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Waits until `check(out)` returns something. */
  async waitFor(check, what, ms = WAIT_MS) {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = check(this.out);
      if (v !== undefined && v !== null && v !== false) return v;
      if (this.exit !== undefined) fail(`${this.name} exited (${this.exit}) while waiting for ${what}:\n${this.tail()}`);
      if (Date.now() > deadline) fail(`${this.name}: no ${what} within ${ms} ms:\n${this.tail()}`);
      await new Promise((resolve) => {
        const t = setTimeout(resolve, 1000);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  tail() {
    return `stdout: ${this.out.slice(-3000)}\nstderr: ${this.err.slice(-2000)}`;
  }

  /** SIGTERM to the whole group (then SIGKILL), and waits for it. */
  async stop() {
    if (this.exit === undefined) {
      try {
        process.kill(-this.child.pid, 'SIGTERM');
      } catch {
        /* gone */
      }
      const t = setTimeout(() => {
        try {
          process.kill(-this.child.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }, 15_000);
      await this.exited;
      clearTimeout(t);
    }
  }
}
Proc.all = [];

const bash = (name, text, env) => new Proc(name, 'bash', ['-c', text], env);
const listening = (port) => (out) => new RegExp(`"msg":"gateway listening"`).test(out) && out.includes(`:${port}`);

/** The HERALD_* environment variables of the running `herald` process that listens on `port` (read from /proc: ours). */
function heraldEnv(port) {
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.includes('herald')) continue;
      // Only the node's HERALD_* settings: the process found may be one of its cluster workers (`--workers`, and
      // pids wrap around), whose NODE_UNIQUE_ID and NODE_CHANNEL_FD make a node process started with them (`herald
      // token` below) set up a cluster channel it does not have: write EINVAL, exit 1.
      const env = Object.fromEntries(
        readFileSync(`/proc/${pid}/environ`, 'utf8')
          .split('\0')
          .filter((kv) => kv.startsWith('HERALD_') && kv.includes('='))
          .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
      );
      if (env.HERALD_PORT === String(port)) return env;
    } catch {
      /* gone, or not ours */
    }
  }
  return fail(`no herald process with HERALD_PORT=${port}`);
}

function portFree(port) {
  return new Promise((resolve) => {
    const s = createConnection({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

/** A node subscriber (the same `ws` package as the README's one-liner) that prints every frame. */
function subscriber(name, url, connect, env) {
  const code = `const ws = new (require('ws'))(${JSON.stringify(url)});
ws.on('open', () => ws.send(JSON.stringify(${JSON.stringify(connect)})));
ws.on('message', (m) => console.log(String(m)));
ws.on('close', (c) => console.log('closed ' + c));`;
  return new Proc(name, process.execPath, ['-e', code], env);
}

async function inside(namespace) {
  const { blocks, expectedMessage } = readmePlan(readFileSync('README.md', 'utf8'));
  const block = (key) => blocks.get(key).text;
  const env = userEnv(namespace ? { npm_config_offline: 'true' } : {});
  for (const port of [8080, 8081, 8082, 8083]) if (!(await portFree(port))) fail(`port ${port} is taken: the README's commands need it`);

  // Quick start: `npm ci && npm start` (npm test is this very suite).
  const quick = block('Quick start#0')
    .split('\n')
    .filter((l) => l.startsWith('npm ci && npm start'))
    .join('\n');
  say('Quick start: npm ci && npm start');
  const gateway = bash('npm start', quick, env);
  await gateway.waitFor(listening(8080), 'gateway listening on 8080');
  const key = await gateway.waitFor((o) => /API key \(dev\):\s+(\S+)/.exec(o)?.[1], 'the development API key');
  if (!gateway.out.includes('ws://127.0.0.1:8080/ws')) fail('npm start does not announce ws://127.0.0.1:8080/ws');

  say('First push with curl: the subscriber');
  const sub = bash('subscriber', block('First push with curl#0'), env);
  await sub.waitFor((o) => o.includes('"type":"connected"'), 'the connected frame');

  say('First push with curl: the publish, with the printed key');
  const publish = block('First push with curl#1').replace(/^KEY=dev_\.\.\..*$/m, `KEY=${key}`);
  const curl = bash('curl', publish, env);
  if ((await curl.exited) !== 0) fail(`curl failed:\n${curl.tail()}`);
  const answer = JSON.parse(curl.out.trim());
  if (answer.results?.news?.seq !== 1 || answer.results.news.subscribers !== 1) fail(`unexpected publish answer: ${curl.out}`);
  await sub.waitFor((o) => o.split('\n').includes(expectedMessage), `the line the README promises: ${expectedMessage}`, 30_000);
  await sub.stop();
  await gateway.stop();

  say('Push to one user / From PHP: npm start with secrets');
  const secured = bash('npm start (secrets)', block('Push to one user#0'), env);
  await secured.waitFor(listening(8080), 'gateway listening on 8080');
  if (/API key \(dev\)|DEVELOPMENT MODE/.test(secured.out)) fail('npm start with secrets still runs in development mode');
  await secured.stop();

  let redis;
  if (namespace) {
    redis = new Proc('redis-server', 'redis-server', ['--port', '6379', '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], env);
    await redis.waitFor((o) => /Ready to accept connections/i.test(o), 'redis ready', 30_000);
  }

  say('Scaling out: three npx herald nodes on Redis');
  const cluster = bash('scaling out', block('Scaling out#0'), env);
  for (const port of [8081, 8082, 8083]) await cluster.waitFor(listening(port), `a node listening on ${port}`);
  const secrets = heraldEnv(8081);
  const token = spawnSync(process.execPath, ['packages/server/bin/herald.js', 'token', '--user', '42'], { env: { ...env, ...secrets }, encoding: 'utf8' });
  if (token.status !== 0) fail(`herald token failed: ${token.stderr}`);
  const remote = subscriber('subscriber on 8082', 'ws://127.0.0.1:8082/ws', { type: 'connect', token: token.stdout.trim() }, env);
  await remote.waitFor((o) => o.includes('"type":"connected"'), 'connected on 8082');
  for (const port of [8081, 8083]) {
    const res = await globalThis.fetch(`http://127.0.0.1:${port}/api/publish`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secrets.HERALD_API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ channel: 'user:42', type: 'note', payload: { via: port } }),
    });
    if (res.status !== 200) fail(`publish on ${port}: ${res.status} ${await res.text()}`);
    await remote.waitFor((o) => o.includes(`"payload":{"via":${port}}`), `the message published on ${port} at the subscriber on 8082`, 30_000);
  }
  await remote.stop();
  await cluster.stop();
  if (redis) await redis.stop();
  say('every README command did what the README says');
}

const mode = process.argv[2];
try {
  if (mode === '--inside') await inside(process.argv[3] === '--namespace');
  else await outside();
} catch (err) {
  process.stderr.write(`readme-check: FAILED: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
} finally {
  await Promise.all(Proc.all.map((p) => p.stop()));
}
