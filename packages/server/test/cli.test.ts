/**
 * The CLI as a user runs it: `node packages/server/bin/herald.js` in a child process with a clean environment.
 * Covers development mode, the production refusals (`prepareOptions`, which cannot be imported: cli.ts
 * runs main on import), settings validation at start, --help, graceful shutdown on SIGTERM/SIGINT, the
 * environment variables, and that secrets never reach the JSON logs.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SETTINGS } from '../src/cli/config.js';
import { flagArgument } from '../src/cli/setting-text.js';
import { api, onCleanup, TestClient, token } from './helpers.js';
import { buildCli, freePort, HeraldProcess, runCli } from './support/cli-process.js';
import { makeKey, serveJwks, signWith } from './support/jwt-keys.js';

const WAIT = 20_000;
const TEST_TIMEOUT = 60_000;

const API_KEY = 'cli_api_key_0123456789_abcdef';
const JWT_SECRET = 'cli_jwt_secret_0123456789_0123456789_abcdefgh';

// The CLI runs from dist/: build it so these tests never exercise a stale build.
beforeAll(buildCli, 180_000);

/** Starts herald and waits until it listens. */
function startHerald(args: string[], env: Record<string, string> = {}): Promise<HeraldProcess> {
  return new HeraldProcess(['--port', '0', ...args], env).listening();
}

/** Opens a client, sends connect (with `token` if given) and resolves with the close code it gets. */
async function refusedWith(ws: string, connect: Record<string, unknown>): Promise<number> {
  const c = await TestClient.open(ws);
  c.send({ type: 'connect', ...connect });
  return (await c.closed(WAIT)).code;
}

describe('herald CLI: development mode', () => {
  it(
    'prints a banner with a generated API key that works for the API; anonymous clients may connect',
    async () => {
      const h = await startHerald([]);
      const m = /API key \(dev\):\s+(\S+)/.exec(h.stdout);
      expect(m, h.stdout).not.toBeNull();
      const devKey = (m as RegExpExecArray)[1] as string;
      expect(devKey.length).toBeGreaterThanOrEqual(16);
      expect(h.logs().find((l) => l.msg === 'gateway listening')?.['devMode']).toBe(true);

      const { client, connected } = await TestClient.connect(h.ws);
      expect(connected.user).toBeNull();
      client.send({ type: 'subscribe', channel: 'news' });
      expect(await client.nextOf('subscribed', WAIT)).toMatchObject({ channel: 'news', seq: 0 });

      const ok = await api(h.http, 'POST', '/api/publish', { channel: 'news', type: 'hello', payload: { text: 'hi' } }, { key: devKey });
      expect(ok.status).toBe(200);
      expect(ok.body.results.news).toMatchObject({ seq: 1, subscribers: 1 });
      expect((await client.waitMessages('news', 1, WAIT))[0]).toEqual({ type: 'hello', channel: 'news', payload: { text: 'hi' }, seq: 1 });

      for (const key of [`${devKey}x`, 'dev_wrong_key_0123456789', null]) {
        const r = await api(h.http, 'POST', '/api/publish', { channel: 'news', type: 'hello', payload: {} }, { key });
        expect(r.status).toBe(401);
        expect(r.body.error.code).toBe('unauthorized');
      }
      // The generated key is shown once, in the banner, and never in the JSON logs.
      for (const l of h.lines.filter((x) => x.startsWith('{'))) expect(l).not.toContain(devKey);
    },
    TEST_TIMEOUT,
  );

  it(
    'generates a different key on each start',
    async () => {
      const keys: string[] = [];
      for (let i = 0; i < 2; i++) {
        const h = await startHerald([]);
        keys.push(/API key \(dev\):\s+(\S+)/.exec(h.stdout)?.[1] ?? '');
      }
      expect(keys[0]).not.toBe('');
      expect(keys[0]).not.toBe(keys[1]);
    },
    TEST_TIMEOUT,
  );

  it(
    'honours an explicit --allow-anonymous false in development mode',
    async () => {
      const h = await startHerald(['--allow-anonymous', 'false']);
      expect(h.stdout).toMatch(/API key \(dev\):/);
      expect(await refusedWith(h.ws, {})).toBe(4501);
    },
    TEST_TIMEOUT,
  );

  it(
    'runs with allocation-site pretenuring off (see tuneGarbageCollection), and says so at debug level',
    async () => {
      const h = await startHerald(['--log-level', 'debug', '--log-format', 'json']);
      expect(h.logs().find((l) => l.msg === 'garbage collector: allocation-site pretenuring off')?.['v8Flags']).toBe('--no-allocation-site-pretenuring');
    },
    TEST_TIMEOUT,
  );

  it(
    'is not development mode when only a JWT secret is set: no banner, no usable API key, token-less clients refused',
    async () => {
      const h = await startHerald([], { HERALD_JWT_SECRET: JWT_SECRET });
      expect(h.stdout).not.toMatch(/API key \(dev\)/);
      expect(h.logs().find((l) => l.msg === 'gateway listening')?.['devMode']).toBe(false);
      expect(await refusedWith(h.ws, {})).toBe(4501);
      const { connected } = await TestClient.connect(h.ws, { token: await token({ sub: '7' }, { secret: JWT_SECRET }) });
      expect(connected.user).toBe('7');
    },
    TEST_TIMEOUT,
  );
});

describe('herald CLI: production refusals', () => {
  it(
    'refuses NODE_ENV=production without secrets, with exit code 2, naming HERALD_API_KEY and HERALD_JWT_SECRET',
    async () => {
      const r = await runCli(['--port', '0'], { NODE_ENV: 'production' });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('HERALD_API_KEY');
      expect(r.stderr).toContain('HERALD_JWT_SECRET');
      // No generated key, no listening.
      expect(r.stdout).not.toMatch(/API key/);
      expect(r.stdout).not.toContain('gateway listening');
    },
    TEST_TIMEOUT,
  );

  it(
    'refuses production with an API key but no JWT secret and anonymous connections not allowed',
    async () => {
      for (const extra of [{}, { HERALD_ALLOW_ANONYMOUS: 'false' }]) {
        const r = await runCli(['--port', '0'], { NODE_ENV: 'production', HERALD_API_KEY: API_KEY, ...extra });
        expect(r.code).toBe(2);
        expect(r.stderr).toContain('HERALD_JWT_SECRET');
        expect(r.stdout).not.toContain('gateway listening');
      }
    },
    TEST_TIMEOUT,
  );

  it(
    'refuses production with a JWT secret but no API key',
    async () => {
      const r = await runCli(['--port', '0'], { NODE_ENV: 'production', HERALD_JWT_SECRET: JWT_SECRET });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('HERALD_API_KEY');
      expect(r.stdout).not.toContain('gateway listening');
    },
    TEST_TIMEOUT,
  );

  it(
    'starts in production with an API key and explicitly allowed anonymous clients, without a dev banner',
    async () => {
      const h = await startHerald(['--allow-anonymous'], { NODE_ENV: 'production', HERALD_API_KEY: API_KEY });
      expect(h.stdout).not.toMatch(/DEVELOPMENT|API key \(dev\)/);
      const { connected } = await TestClient.connect(h.ws);
      expect(connected.user).toBeNull();
      expect((await api(h.http, 'GET', '/api/online?users=1', undefined, { key: API_KEY })).status).toBe(200);
    },
    TEST_TIMEOUT,
  );

  it(
    'starts in production with both secrets',
    async () => {
      const h = await startHerald([], { NODE_ENV: 'production', HERALD_API_KEY: API_KEY, HERALD_JWT_SECRET: JWT_SECRET });
      expect(h.stdout).not.toMatch(/API key \(dev\)/);
      expect(await refusedWith(h.ws, {})).toBe(4501);
    },
    TEST_TIMEOUT,
  );
});

describe('herald CLI: invalid settings', () => {
  /** The names a user could recognise a setting by: its env variable, its flag, or its option name. */
  const names = (key: string): RegExp => {
    const s = SETTINGS.find((x) => x.key === key);
    if (!s) throw new Error(`no setting ${key}`);
    return new RegExp(`${s.env}|${s.flag}|\\b${s.key}\\b`);
  };

  const cases: Array<[string, string[], Record<string, string>, RegExp]> = [
    ['--port abc', ['--port', 'abc'], {}, /--port/],
    ['--port=abc', ['--port=abc'], {}, /--port/],
    ['--port 70000', ['--port', '70000'], {}, names('port')],
    ['--port without a value', ['--port'], {}, /--port/],
    ['HERALD_PORT=-1', [], { HERALD_PORT: '-1' }, /HERALD_PORT/],
    ['HERALD_PING_INTERVAL_MS=x', ['--port', '0'], { HERALD_PING_INTERVAL_MS: 'x' }, /HERALD_PING_INTERVAL_MS/],
    ['unknown flag --prot 1', ['--prot', '1'], {}, /--prot/],
    [
      'HERALD_IDLE_TIMEOUT_MS equal to the ping interval',
      ['--port', '0'],
      { HERALD_IDLE_TIMEOUT_MS: '5000', HERALD_PING_INTERVAL_MS: '5000' },
      names('idleTimeout'),
    ],
    [
      'HERALD_IDLE_TIMEOUT_MS below the ping interval',
      ['--port', '0'],
      { HERALD_IDLE_TIMEOUT_MS: '1000', HERALD_PING_INTERVAL_MS: '5000' },
      names('idleTimeout'),
    ],
    ['--idle-timeout-ms below the default ping interval', ['--port', '0', '--idle-timeout-ms', '1000'], {}, names('idleTimeout')],
    ['an API key shorter than 16 characters', ['--port', '0'], { HERALD_API_KEY: 'short_key_15chr' }, names('apiKeys')],
    ['a second API key shorter than 16 characters', ['--port', '0', '--api-key', `${API_KEY},tooshort`], {}, names('apiKeys')],
    ['a JWT secret shorter than 32 characters', ['--port', '0'], { HERALD_API_KEY: API_KEY, HERALD_JWT_SECRET: 'x'.repeat(31) }, names('jwtSecrets')],
    ['HERALD_ALLOW_ANONYMOUS=maybe', ['--port', '0'], { HERALD_ALLOW_ANONYMOUS: 'maybe' }, /HERALD_ALLOW_ANONYMOUS/],
    ['--log-level loud', ['--port', '0', '--log-level', 'loud'], {}, /--log-level/],
    ['HERALD_CLIENT_RATE=0', ['--port', '0'], { HERALD_CLIENT_RATE: '0' }, names('clientRate')],
    ['--ws-path without a leading slash', ['--port', '0', '--ws-path', 'ws'], {}, names('wsPaths')],
    ['HERALD_JWKS_URL that is not http(s)', ['--port', '0'], { HERALD_API_KEY: API_KEY, HERALD_JWKS_URL: 'ftp://idp.example/jwks' }, names('jwksUrl')],
  ];

  it.each(cases)(
    'refuses %s with exit code 2, naming the setting',
    async (_name, args, env, named) => {
      const r = await runCli(args, env);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(named);
      expect(r.stdout).not.toContain('gateway listening');
      expect(r.stdout).not.toMatch(/API key \(dev\)/);
    },
    TEST_TIMEOUT,
  );

  it(
    'never echoes a rejected secret back on stderr',
    async () => {
      const shortKey = 'tiny_secret_key';
      const r = await runCli(['--port', '0'], { HERALD_API_KEY: shortKey });
      expect(r.code).toBe(2);
      expect(r.stderr).not.toContain(shortKey);
    },
    TEST_TIMEOUT,
  );

  it(
    'exits with code 1 (not 2) when the port is taken',
    async () => {
      const blocker = createServer();
      await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
      onCleanup(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
      const port = (blocker.address() as { port: number }).port;
      const r = await runCli(['--port', String(port)], { HERALD_API_KEY: API_KEY, HERALD_JWT_SECRET: JWT_SECRET });
      expect(r.code).toBe(1);
      expect(r.stdout).not.toContain('gateway listening');
    },
    TEST_TIMEOUT,
  );
});

describe('herald CLI: --help and --version', () => {
  it(
    'prints every flag and env variable of SETTINGS with --help and exits 0 without starting',
    async () => {
      for (const args of [['--help'], ['-h'], ['help'], ['serve', '--help'], ['--port', 'abc', '--help']]) {
        const h = new HeraldProcess(args);
        const { code } = await h.exited();
        expect(code, `${args.join(' ')}: ${h.stderr}`).toBe(0);
        for (const s of SETTINGS) {
          // With the placeholder docs/configuration.md shows (<ms>, <n>, <list>...).
          expect(h.stdout).toContain(`${s.flag}${flagArgument(s)} `);
          expect(h.stdout).toContain(s.env);
        }
        expect(h.stdout).toContain('--help');
        expect(h.stdout).not.toContain('gateway listening');
      }
    },
    TEST_TIMEOUT,
  );

  it(
    'refuses an unknown command with exit 2, naming it and the commands there are',
    async () => {
      const h = new HeraldProcess(['srve', '--port', '0']);
      expect((await h.exited()).code).toBe(2);
      expect(h.stderr).toContain('unknown command srve (commands: serve, publish, token, stats, webhooks');
      expect(h.stdout).not.toContain('gateway listening');
    },
    TEST_TIMEOUT,
  );

  it(
    'prints the package version with --version and exits 0',
    async () => {
      const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
      const h = new HeraldProcess(['--version']);
      expect((await h.exited()).code).toBe(0);
      expect(h.stdout.trim()).toBe(`herald ${pkg.version}`);
    },
    TEST_TIMEOUT,
  );
});

describe('herald CLI: graceful shutdown', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)(
    'closes every client with 1012 and exits 0 on %s',
    async (signal) => {
      const h = await startHerald(['--allow-anonymous'], { HERALD_API_KEY: API_KEY, HERALD_JWT_SECRET: JWT_SECRET });
      const a = await TestClient.connect(h.ws);
      a.client.send({ type: 'subscribe', channel: 'news', id: 1 });
      expect(await a.client.nextOf('subscribed', WAIT)).toMatchObject({ channel: 'news', id: 1 });
      const b = await TestClient.connect(h.ws, { token: await token({ sub: '42' }, { secret: JWT_SECRET }) });
      expect(b.connected.user).toBe('42');

      const closes = [a.client.closed(WAIT), b.client.closed(WAIT)];
      const exit = h.exited();
      expect(h.proc.kill(signal)).toBe(true);
      expect((await Promise.all(closes)).map((c) => c.code)).toEqual([1012, 1012]);
      expect(await exit).toEqual({ code: 0, signal: null });
    },
    TEST_TIMEOUT,
  );

  it(
    'shuts down gracefully (exit 0) on a SIGTERM sent as soon as it announces that it is listening',
    async () => {
      // "gateway listening" is the readiness signal a supervisor waits for: from then on, a SIGTERM must be a
      // graceful shutdown, never the default signal death. Several rounds, since it is a race inside the child.
      for (let round = 0; round < 8; round++) {
        const h = new HeraldProcess(['--port', '0'], { HERALD_API_KEY: API_KEY, HERALD_JWT_SECRET: JWT_SECRET });
        await h.listening();
        const exit = h.exited();
        h.proc.kill('SIGTERM');
        expect(await exit, `round ${round}`).toEqual({ code: 0, signal: null });
      }
    },
    TEST_TIMEOUT,
  );

  it.each([2 ** 31 - 1, 2 ** 31, 3_000_000_000])(
    'with HERALD_SHUTDOWN_TIMEOUT_MS=%i either refuses to start (exit 2) or shuts down gracefully',
    async (shutdownTimeout) => {
      // Node timers take at most 2^31-1 ms and fire after 1 ms above it: no accepted value may turn a
      // graceful shutdown (or the CLI's hard deadline derived from it) into an immediate exit.
      const env = { HERALD_API_KEY: API_KEY, HERALD_JWT_SECRET: JWT_SECRET, HERALD_SHUTDOWN_TIMEOUT_MS: String(shutdownTimeout) };
      const h = new HeraldProcess(['--port', '0', '--allow-anonymous'], env);
      const started = await Promise.race([h.listening().then(() => true), h.exited().then(() => false)]);
      if (!started) {
        expect(h.exitCode).toBe(2);
        expect(h.stderr).toMatch(/HERALD_SHUTDOWN_TIMEOUT_MS|--shutdown-timeout-ms|shutdownTimeout/);
        return;
      }
      const { ws } = await h.listening();
      const clients = await Promise.all([0, 1, 2].map(() => TestClient.connect(ws, { subs: { news: {} } })));
      const closes = clients.map((c) => c.client.closed(WAIT));
      const exit = h.exited();
      h.proc.kill('SIGTERM');
      for (const c of await Promise.all(closes)) expect(c.code).toBe(1012);
      expect(await exit).toEqual({ code: 0, signal: null });
    },
    TEST_TIMEOUT,
  );
});

describe('herald CLI: environment variables', () => {
  it(
    'honours HERALD_PORT, HERALD_HOST, HERALD_API_KEY and HERALD_JWT_SECRET',
    async () => {
      const port = await freePort();
      // 127.0.0.2 is loopback on Linux and differs from the default host, so the setting is observable.
      const h = new HeraldProcess([], { HERALD_PORT: String(port), HERALD_HOST: '127.0.0.2', HERALD_API_KEY: API_KEY, HERALD_JWT_SECRET: JWT_SECRET });
      const { http, ws } = await h.listening();
      expect(http).toBe(`http://127.0.0.2:${port}`);
      expect(h.stdout).not.toMatch(/API key \(dev\)/);

      const { client, connected } = await TestClient.connect(ws, { token: await token({ sub: '42' }, { secret: JWT_SECRET }) });
      expect(connected).toMatchObject({ user: '42', subs: { 'user:42': { seq: 0 } } });
      const ok = await api(http, 'POST', '/api/publish', { channel: 'user:42', type: 'note', payload: { n: 1 } }, { key: API_KEY });
      expect(ok.status).toBe(200);
      expect(ok.body.results['user:42']).toMatchObject({ seq: 1, online: true });
      expect((await client.waitMessages('user:42', 1, WAIT))[0]).toMatchObject({ type: 'note', payload: { n: 1 }, seq: 1 });

      const wrong = await api(http, 'POST', '/api/publish', { channel: 'x', type: 'note', payload: {} }, { key: 'another_key_0123456789' });
      expect(wrong.status).toBe(401);
      expect(wrong.body.error.code).toBe('unauthorized');
      // A token signed with another secret is refused.
      expect(await refusedWith(ws, { token: await token({ sub: '42' }, { secret: 'some_other_secret_0123456789_0123456789' }) })).toBe(4501);
    },
    TEST_TIMEOUT,
  );

  it(
    'accepts several comma-separated API keys and JWT secrets (rotation)',
    async () => {
      const key2 = 'cli_api_key_second_0123456789';
      const secret2 = 'cli_jwt_secret_second_0123456789_0123456789';
      const h = await startHerald([], { HERALD_API_KEY: `${API_KEY}, ${key2}`, HERALD_JWT_SECRET: `${JWT_SECRET},${secret2}` });
      for (const key of [API_KEY, key2]) expect((await api(h.http, 'GET', '/api/online?users=1', undefined, { key })).status).toBe(200);
      for (const secret of [JWT_SECRET, secret2]) {
        const { connected } = await TestClient.connect(h.ws, { token: await token({ sub: 'u1' }, { secret }) });
        expect(connected.user).toBe('u1');
      }
    },
    TEST_TIMEOUT,
  );

  it(
    'HERALD_ALLOW_ANONYMOUS=false refuses a token-less client with 4501; =true lets it connect; the flag wins over the variable',
    async () => {
      const secrets = { HERALD_API_KEY: API_KEY, HERALD_JWT_SECRET: JWT_SECRET };
      const off = await startHerald([], { ...secrets, HERALD_ALLOW_ANONYMOUS: 'false' });
      expect(await refusedWith(off.ws, {})).toBe(4501);

      const on = await startHerald([], { ...secrets, HERALD_ALLOW_ANONYMOUS: 'true' });
      expect((await TestClient.connect(on.ws)).connected.user).toBeNull();

      const flagWins = await startHerald(['--allow-anonymous'], { ...secrets, HERALD_ALLOW_ANONYMOUS: 'false' });
      expect((await TestClient.connect(flagWins.ws)).connected.user).toBeNull();

      // Without the variable, secrets configured: anonymous is off by default.
      const dflt = await startHerald([], secrets);
      expect(await refusedWith(dflt.ws, {})).toBe(4501);
    },
    TEST_TIMEOUT,
  );

  it(
    'honours HERALD_WS_PATHS and flags win over HERALD_PORT',
    async () => {
      const port = await freePort();
      const h = new HeraldProcess(['--port', '0'], {
        HERALD_PORT: String(port),
        HERALD_WS_PATHS: '/socket',
        HERALD_API_KEY: API_KEY,
        HERALD_JWT_SECRET: JWT_SECRET,
        HERALD_ALLOW_ANONYMOUS: '1',
      });
      const { http, ws } = await h.listening();
      expect(ws.endsWith('/socket')).toBe(true);
      expect(new URL(http).port).not.toBe(String(port));
      expect((await TestClient.connect(ws)).connected.type).toBe('connected');
    },
    TEST_TIMEOUT,
  );
});

describe('herald CLI: asymmetric token keys', () => {
  it(
    'HERALD_JWT_PUBLIC_KEY_FILES and HERALD_JWKS_URL verify RS256/ES256 tokens, and count as token keys in production',
    async () => {
      const [rsa, ec, stranger] = await Promise.all([makeKey('RS256'), makeKey('ES256'), makeKey('RS256')]);
      const dir = mkdtempSync(join(tmpdir(), 'herald-keys-'));
      onCleanup(() => rmSync(dir, { recursive: true, force: true }));
      const file = (name: string, text: string): string => {
        writeFileSync(join(dir, name), text);
        return join(dir, name);
      };
      const exp = Math.floor(Date.now() / 1000) + 600;
      const prod = { NODE_ENV: 'production', HERALD_API_KEY: API_KEY };

      const files = await startHerald([], { ...prod, HERALD_JWT_PUBLIC_KEY_FILES: `${file('rsa.pem', rsa.pem)},${file('ec.pem', ec.pem)}` });
      expect((await TestClient.connect(files.ws, { token: await signWith(rsa.privateKey, 'RS256', { sub: '42' }, { exp }) })).connected.user).toBe('42');
      expect((await TestClient.connect(files.ws, { token: await signWith(ec.privateKey, 'ES256', { sub: '43' }, { exp }) })).connected.user).toBe('43');
      expect(await refusedWith(files.ws, { token: await signWith(stranger.privateKey, 'RS256', { sub: '42' }, { exp }) })).toBe(4501);
      expect(await refusedWith(files.ws, {})).toBe(4501);

      const jwks = await serveJwks([{ ...rsa.jwk, kid: 'rsa-1', alg: 'RS256' }]);
      const remote = await startHerald([], { ...prod, HERALD_JWKS_URL: jwks.url });
      const viaJwks = await signWith(rsa.privateKey, 'RS256', { sub: '44' }, { kid: 'rsa-1', exp });
      expect((await TestClient.connect(remote.ws, { token: viaJwks })).connected.user).toBe('44');
      expect((await TestClient.connect(remote.ws, { token: viaJwks })).connected.user).toBe('44');
      expect(await refusedWith(remote.ws, { token: await signWith(rsa.privateKey, 'RS256', { sub: '44' }, { kid: 'other', exp }) })).toBe(4501);
      expect(jwks.requests()).toBe(1);

      const bad = await runCli(['--port', '0'], { ...prod, HERALD_JWT_PUBLIC_KEY_FILES: file('bad.pem', 'not a key') });
      expect(bad.code, bad.stderr).toBe(2);
      expect(bad.stderr).toMatch(/HERALD_JWT_PUBLIC_KEY_FILES|--jwt-public-key-files|jwtPublicKeys/);
    },
    TEST_TIMEOUT,
  );
});

describe('herald CLI: logs', () => {
  it(
    'writes JSON logs to stdout that never contain the API key, the JWT secret or a token',
    async () => {
      const wrongKey = 'wrong_api_key_never_logged_0123';
      const otherSecret = 'other_secret_never_logged_0123456789_0123';
      const h = await startHerald([], { HERALD_API_KEY: API_KEY, HERALD_JWT_SECRET: JWT_SECRET, HERALD_LOG_LEVEL: 'trace' });
      const good = await token({ sub: '42', channels: ['private:team-*'] }, { secret: JWT_SECRET });
      const bad = await token({ sub: '43' }, { secret: otherSecret });
      const expired = await token({ sub: '44' }, { secret: JWT_SECRET, expiresAt: Math.floor(Date.now() / 1000) - 60 });

      const { client } = await TestClient.connect(h.ws, { token: good, subs: { 'private:team-a': {} } });
      expect(await refusedWith(h.ws, { token: bad })).toBe(4501);
      expect(await refusedWith(h.ws, { token: expired })).toBe(4401);
      expect(await refusedWith(h.ws, { token: `${good}x` })).toBe(4501);

      expect((await api(h.http, 'POST', '/api/publish', { channel: 'private:team-a', type: 'note', payload: { n: 1 } }, { key: API_KEY })).status).toBe(200);
      await client.waitMessages('private:team-a', 1, WAIT);
      expect((await api(h.http, 'POST', '/api/publish', { channel: 'x', type: 'note', payload: {} }, { key: wrongKey })).status).toBe(401);
      expect((await api(h.http, 'POST', '/api/publish', undefined, { key: API_KEY, raw: '{"channel":' })).status).toBe(400);
      expect((await api(h.http, 'GET', '/api/online?users=42', undefined, { key: API_KEY })).body.users['42'].online).toBe(true);
      expect((await api(h.http, 'POST', '/api/disconnect', { user: '42' }, { key: API_KEY })).status).toBe(200);
      expect((await client.closed(WAIT)).code).toBe(4509);

      const exit = h.exited();
      h.proc.kill('SIGTERM');
      expect((await exit).code).toBe(0);

      const lines = h.lines.filter((l) => l.trim() !== '');
      expect(lines.length).toBeGreaterThan(3);
      for (const l of lines) expect(() => JSON.parse(l), l).not.toThrow();
      const all = h.stdout + h.stderr;
      for (const secret of [API_KEY, JWT_SECRET, wrongKey, otherSecret, good, bad, expired]) expect(all).not.toContain(secret);
      // The signature part alone must not leak either (a log could print a token split or truncated).
      for (const t of [good, bad, expired]) expect(all).not.toContain(t.split('.')[2] as string);
    },
    TEST_TIMEOUT,
  );
});
