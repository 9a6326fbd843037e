/**
 * What a new user and an operator meet when the CLI starts (issue 15): development mode stays on loopback
 * (and its API key with loopback requesters), production origins default to same-origin, Kubernetes service
 * variables and unknown HERALD_* variables do not stop the process, the banner's curl line publishes where the
 * demo page listens, and logs are human-readable on a terminal, JSON otherwise. Child processes, loopback only.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { onCleanup } from './helpers.js';
import { buildCli, HeraldProcess, ROOT, runCli } from './support/cli-process.js';
import { REDIS_URL, testPrefix } from './redis-helpers.js';
import { get, upgrade } from './support/sockets.js';

const TEST_TIMEOUT = 60_000;
const API_KEY = 'cli_api_key_0123456789_abcdef';
const JWT_SECRET = 'cli_jwt_secret_0123456789_0123456789_abcdefgh';
const SECRETS = { HERALD_API_KEY: API_KEY, HERALD_JWT_SECRET: JWT_SECRET };

beforeAll(buildCli, 180_000);

function startHerald(args: string[], env: Record<string, string> = {}): Promise<HeraldProcess> {
  return new HeraldProcess(['--port', '0', ...args], env).listening();
}

/** The embedded demo page config's apiKey. */
function pageKey(html: string): unknown {
  const m = /<script id="herald-config" type="application\/json">([\s\S]*?)<\/script>/.exec(html);
  return (JSON.parse(m?.[1] ?? 'null') as { apiKey?: unknown } | null)?.apiKey;
}

describe('development mode and the network', () => {
  it(
    'refuses to listen on a non-loopback interface without secrets (exit 2, naming --dev-allow-remote); 127.x and localhost are fine',
    async () => {
      for (const host of ['0.0.0.0', '::', '192.0.2.10']) {
        const r = await runCli(['--port', '0', '--host', host]);
        expect(r.code, r.stderr).toBe(2);
        expect(r.stderr).toMatch(/--dev-allow-remote/);
        expect(r.stdout).not.toMatch(/API key \(dev\)/);
      }
      expect((await startHerald(['--host', '127.0.0.2'])).http).toMatch(/^http:\/\/127\.0\.0\.2:/);
      // With secrets, any interface is the operator's choice.
      const withSecrets = await startHerald(['--host', '0.0.0.0'], SECRETS);
      expect(withSecrets.stdout).not.toMatch(/API key \(dev\)/);
    },
    TEST_TIMEOUT,
  );

  it(
    'with --dev-allow-remote it starts, warns loudly, and gives the demo page with the key to loopback requesters only',
    async () => {
      const h = await startHerald(['--host', '0.0.0.0', '--dev-allow-remote']);
      const warn = h.logs().find((l) => l.level === 40 && /DEVELOPMENT MODE/.test(l.msg));
      expect(warn, h.stdout).toBeDefined();
      const key = /API key \(dev\):\s+(\S+)/.exec(h.stdout)?.[1];
      expect(key).toBeDefined();
      const base = `http://127.0.0.1:${h.port}`;
      expect(pageKey((await get(`${base}/`)).body)).toBe(key);
      // Through a reverse proxy the request comes from loopback too; the forwarded address says who asked.
      for (const headers of [{ 'x-forwarded-for': '203.0.113.5' }, { forwarded: 'for=198.51.100.7' }, { 'x-forwarded-for': '127.0.0.1, 203.0.113.5' }]) {
        const page = await get(`${base}/`, headers);
        expect(page.status).toBe(200);
        expect(pageKey(page.body)).toBeNull();
        expect(page.body).not.toContain(key as string);
      }
    },
    TEST_TIMEOUT,
  );

  it(
    "prints a curl line that publishes to the demo page's channel",
    async () => {
      const h = await startHerald([]);
      const channel = /"channel":"([^"]+)"/.exec(h.stdout)?.[1];
      const demoJs = (await get(`${h.http}/demo.js`)).body;
      const listens = /params\.get\('channel'\) \|\| '([^']+)'/.exec(demoJs)?.[1];
      expect(channel).toBeDefined();
      expect(listens).toBe(channel);
    },
    TEST_TIMEOUT,
  );
});

describe('production origins', () => {
  const origin = (port: number, value: string | undefined) => upgrade(port, value === undefined ? {} : { headers: { origin: value } });

  it(
    'with NODE_ENV=production and no allowlist accepts same-origin pages only (and clients without Origin), and says so at start',
    async () => {
      const h = await startHerald(['--allow-anonymous'], { ...SECRETS, NODE_ENV: 'production' });
      const line = h.logs().find((l) => /same-origin/.test(l.msg));
      expect(line?.level).toBe(30);
      expect((await origin(h.port, 'https://evil.example')).status).toBe(403);
      expect((await origin(h.port, `http://127.0.0.1:${h.port + 1}`)).status).toBe(403);
      expect((await origin(h.port, `http://127.0.0.1:${h.port}`)).status).toBe(101);
      expect((await origin(h.port, undefined)).status).toBe(101);
    },
    TEST_TIMEOUT,
  );

  it(
    'accepts any origin in production only when told so with *, and in development mode',
    async () => {
      const star = await startHerald(['--allow-anonymous', '--allowed-origins', '*'], { ...SECRETS, NODE_ENV: 'production' });
      expect((await origin(star.port, 'https://evil.example')).status).toBe(101);
      const listed = await startHerald(['--allow-anonymous', '--allowed-origins', 'https://app.example'], { ...SECRETS, NODE_ENV: 'production' });
      expect((await origin(listed.port, 'https://app.example')).status).toBe(101);
      expect((await origin(listed.port, 'https://evil.example')).status).toBe(403);
      const dev = await startHerald([]);
      expect((await origin(dev.port, 'https://evil.example')).status).toBe(101);
    },
    TEST_TIMEOUT,
  );
});

describe('HERALD_* variables that are not settings', () => {
  it(
    'starts with the variables Kubernetes injects for a Service named herald, and logs that it ignored them',
    async () => {
      const h = await startHerald([], {
        ...SECRETS,
        HERALD_PORT: 'tcp://10.0.0.1:8080',
        HERALD_SERVICE_HOST: '10.0.0.1',
        HERALD_SERVICE_PORT: '8080',
        HERALD_PORT_8080_TCP: 'tcp://10.0.0.1:8080',
        HERALD_PORT_8080_TCP_PROTO: 'tcp',
        HERALD_PORT_8080_TCP_PORT: '8080',
        HERALD_PORT_8080_TCP_ADDR: '10.0.0.1',
      });
      const line = h.logs().find((l) => Array.isArray(l['variables']));
      expect(line?.['variables']).toContain('HERALD_PORT');
      expect(line?.['variables']).toContain('HERALD_SERVICE_HOST');
      expect(line?.level).toBeLessThanOrEqual(30);
    },
    TEST_TIMEOUT,
  );

  it(
    'warns about an unknown variable, naming the near misses, and starts; an invalid value of a known setting still stops it',
    async () => {
      const h = await startHerald([], { ...SECRETS, HERALD_PROT: '9000', HERALD_API_KEYS: 'x' });
      const warns = h.logs().filter((l) => l.level === 40 && typeof l['variable'] === 'string');
      expect(warns.map((l) => [l['variable'], l['nearMisses']]).sort()).toEqual([
        ['HERALD_API_KEYS', ['HERALD_API_KEY']],
        ['HERALD_PROT', ['HERALD_PORT']],
      ]);
      const bad = await runCli(['--port', '0'], { ...SECRETS, HERALD_MAX_CONNECTIONS: 'lots' });
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('HERALD_MAX_CONNECTIONS');
    },
    TEST_TIMEOUT,
  );
});

describe('log format', () => {
  it(
    'writes JSON lines when stdout is not a terminal, in development mode too; HERALD_LOG_FORMAT=pretty forces text',
    async () => {
      const dev = await startHerald([]);
      expect(dev.logs().some((l) => l.msg === 'gateway listening')).toBe(true);
      const pretty = new HeraldProcess(['--port', '0'], { HERALD_LOG_FORMAT: 'pretty' });
      const line = await pretty.waitFor(() => pretty.lines.find((l) => /\bINFO\s+gateway listening\b/.test(l)), 'a pretty "gateway listening" line');
      expect(line.startsWith('{')).toBe(false);
      expect(line).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}gateway listening url=http:\/\/127\.0\.0\.1:\d+/);
    },
    TEST_TIMEOUT,
  );

  it(
    'writes human-readable lines in development mode on a terminal (a pseudo-terminal from script(1)), and JSON there with secrets',
    async () => {
      const run = async (env: Record<string, string>): Promise<string> => {
        // `script` gives the child a pseudo-terminal as stdout; its own output (the terminal's) comes to us.
        const child = spawn('script', ['-qfec', `${process.execPath} packages/server/bin/herald.js --port 0`, '/dev/null'], {
          cwd: ROOT,
          env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/', TERM: 'dumb', NO_COLOR: '1', ...env },
          stdio: ['pipe', 'pipe', 'pipe'],
          detached: true,
        });
        const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
        onCleanup(async () => {
          if (child.exitCode === null && child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
          await exited;
        });
        let out = '';
        child.stdout.setEncoding('utf8');
        return new Promise<string>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error(`no "gateway listening" within 30 s: ${out}`)), 30_000);
          child.stdout.on('data', (d: string) => {
            out += d;
            if (/gateway listening/.test(out)) {
              clearTimeout(t);
              resolve(out);
            }
          });
        });
      };
      const tty = await run({});
      expect(tty).toMatch(/\d\d:\d\d:\d\d\.\d{3} INFO {2}gateway listening/);
      expect(tty).not.toMatch(/\{"level":30/);
      const prod = await run(SECRETS);
      expect(prod).toMatch(/\{"level":30,[^\n]*"msg":"gateway listening"/);
    },
    TEST_TIMEOUT,
  );
});

describe('settings refused before the gateway starts', () => {
  it(
    'stops with exit 2 naming the setting, never showing a password: URLs with credentials, a bad Redis URL or engine setting, half a webhook, an empty host',
    async () => {
      const WHSEC = `whsec_${Buffer.from('0123456789abcdef01234567').toString('base64')}`;
      const REDIS = ['--redis-url', 'redis://127.0.0.1:6379'];
      const cases: Array<[string[], Record<string, string>, RegExp]> = [
        [['--redis-url', 'http://user:SECRETPW@127.0.0.1:6379'], {}, /HERALD_REDIS_URL \/ --redis-url: must be a redis:\/\//],
        [['--redis-cluster', 'user:SECRETPW@127.0.0.1:7000'], {}, /HERALD_REDIS_CLUSTER \/ --redis-cluster: /],
        [REDIS, { HERALD_REDIS_PREFIX: 'a b' }, /HERALD_REDIS_PREFIX \/ --redis-prefix: /],
        [[...REDIS, '--presence-ttl-ms', '29'], {}, /HERALD_PRESENCE_TTL_MS \/ --presence-ttl-ms: /],
        [['--webhook-url', 'http://hook:SECRETPW@127.0.0.1:1/h', '--webhook-secret', WHSEC], {}, /HERALD_WEBHOOK_URL \/ --webhook-url: .*user or password/],
        [['--webhook-url', 'http://127.0.0.1:1/h'], {}, /HERALD_WEBHOOK_URL \/ --webhook-url: needs webhookSecret/],
        [['--webhook-url', 'http://127.0.0.1:1/h', '--webhook-secret', 'whsec_SECRETPWshort'], {}, /HERALD_WEBHOOK_SECRET \/ --webhook-secret: /],
        [
          ['--webhook-url', 'http://127.0.0.1:1/h', '--webhook-secret', WHSEC, '--webhook-events', 'user.onlin'],
          {},
          /HERALD_WEBHOOK_EVENTS \/ --webhook-events: /,
        ],
        [
          ['--webhooks', JSON.stringify([{ url: 'http://127.0.0.1:1/h', secret: WHSEC, event: ['user.online'] }])],
          {},
          /HERALD_WEBHOOKS \/ --webhooks: .*unknown field "event"/,
        ],
        [
          ['--publish-hook-url', 'http://u:SECRETPW@127.0.0.1:1/ph', '--publish-hook-secret', WHSEC],
          {},
          /HERALD_PUBLISH_HOOK_URL \/ --publish-hook-url: .*user or password/,
        ],
        [['--host='], {}, /HERALD_HOST \/ --host: must not be empty/],
        [['--allowed-origins', 'https://app.example.com/'], {}, /HERALD_ALLOWED_ORIGINS \/ --allowed-origins: "https:\/\/app.example.com\/" is not an origin/],
        [[], { HERALD_API_KEY: ' , ' }, /HERALD_API_KEY \/ --api-key: set, but holds no value/],
      ];
      for (const [args, env, message] of cases) {
        const r = await runCli(['--port', '0', ...args], { ...SECRETS, ...env });
        expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
        expect(r.stderr).toMatch(message);
        expect(r.stderr).not.toMatch(/SECRETPW|\n\s+at /);
      }
      // A Redis refusing the password: the failed AUTH is logged without its arguments.
      const withPassword = new URL(REDIS_URL);
      withPassword.username = 'herald-probe-user';
      withPassword.password = 'SECRETPW';
      const auth = new HeraldProcess(['--port', '0', '--redis-url', withPassword.toString(), '--workers', '1'], SECRETS);
      onCleanup(() => auth.kill9());
      await auth.waitFor(() => auth.logs().find((l) => JSON.stringify(l).includes('"auth"')), 'a log line about the failed AUTH');
      expect(auth.stdout + auth.stderr).not.toMatch(/SECRETPW/);
      // A config file that is not JSON: said so, without quoting the text around the error (a secret, here).
      const dir = mkdtempSync(join(tmpdir(), 'herald-config-'));
      onCleanup(() => rmSync(dir, { recursive: true, force: true }));
      writeFileSync(join(dir, 'bad.json'), `{"jwtSecrets": ['SECRETPW_0123456789_0123456789_0123']}`);
      const bad = await runCli(['--port', '0', '--config', join(dir, 'bad.json')]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/bad\.json: not valid JSON/);
      expect(bad.stderr).not.toMatch(/SECRETPW/);
      const stats = await runCli(['stats', '--url', 'http://admin:SECRETPW@127.0.0.1:1', '--key', API_KEY]);
      expect(stats.code).toBe(2);
      expect(`${stats.stdout}${stats.stderr}`).not.toMatch(/SECRETPW/);
    },
    TEST_TIMEOUT,
  );
});

describe('development mode with --workers', () => {
  it(
    'prints the port the workers listen on, not the one asked for (--port 0), once they listen',
    async () => {
      const h = new HeraldProcess(['--port', '0', '--workers', '2', '--redis-url', REDIS_URL, '--redis-prefix', testPrefix()]);
      const port = await h.waitFor(() => /WebSocket: +ws:\/\/127\.0\.0\.1:(\d+)\/ws/.exec(h.stdout)?.[1], 'the banner');
      expect(Number(port)).toBeGreaterThan(0);
      expect((await get(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
      // SIGTERM stops the primary and its workers (a SIGKILL would leave the workers holding its output open).
      h.proc.kill('SIGTERM');
      expect((await h.exited()).code).toBe(0);
    },
    TEST_TIMEOUT,
  );
});
