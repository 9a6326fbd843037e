/**
 * The CLI's client commands against a running gateway: `herald publish`, `herald token`, `herald stats`,
 * and `herald serve --config`. Every command runs as a real child process of the built CLI.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../src/util/clock.js';
import { API_KEY, JWT_SECRET, onCleanup, startGateway, TestClient } from './helpers.js';
import { buildCli, HeraldProcess, runCli as run } from './support/cli-process.js';

beforeAll(buildCli, 180_000);

describe('herald publish', () => {
  it('publishes through the HTTP API and prints the answer', async () => {
    const gw = await startGateway();
    const { client } = await TestClient.connect(gw.ws, { subs: { news: {} } });
    const r = await run(['publish', '--url', gw.http, '--key', API_KEY, '--channel', 'news', '--type', 'headline', '--payload', '{"title":"from the CLI 😀"}']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).results.news).toMatchObject({ seq: 1, subscribers: 1 });
    expect((await client.waitMessages('news', 1))[0]).toEqual({ type: 'headline', channel: 'news', payload: { title: 'from the CLI 😀' }, seq: 1 });
  });

  it('takes HERALD_URL and HERALD_API_KEY as defaults and the payload from stdin', async () => {
    const gw = await startGateway();
    const r = await run(['publish', '--user', '42', '--type', 'notice', '--id', 'once'], { HERALD_URL: gw.http, HERALD_API_KEY: API_KEY }, '{"text":"piped"}');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ id: 'once', results: { 'user:42': { seq: 1, online: false } } });
  });

  it('exits 1 with the error code when the gateway refuses, 2 on bad usage', async () => {
    const gw = await startGateway();
    const bad = await run(['publish', '--url', gw.http, '--key', 'wrong_key_0123456789', '--channel', 'a', '--type', 't', '--payload', '{}']);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout).error.code).toBe('unauthorized');
    const gone = await run(['publish', '--url', gw.http, '--key', API_KEY, '--client', 'nobody', '--type', 't', '--payload', '{}']);
    expect(gone.code).toBe(1);
    expect(JSON.parse(gone.stdout).error.code).toBe('no_such_client');
    expect((await run(['publish', '--url', gw.http, '--key', API_KEY, '--channel', 'a', '--payload', '{}'])).code).toBe(2);
    expect((await run(['publish', '--url', gw.http, '--key', API_KEY, '--channel', 'a', '--type', 't', '--payload', '{oops'])).code).toBe(2);
    const unknown = await run(['publish', '--chanel', 'a']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('--chanel');
    const down = await run(['publish', '--url', 'http://127.0.0.1:1', '--key', API_KEY, '--channel', 'a', '--type', 't', '--payload', '{}']);
    expect(down.code).toBe(1);
    expect(down.stdout).toContain('cannot reach');
  });
});

describe('herald publish retries', () => {
  it('retries an unknown outcome (504 engine_timeout) with the same id, a random one when none was given', async () => {
    const ids: string[] = [];
    const server = createServer((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString()));
      req.on('end', () => {
        const id = (JSON.parse(text) as { id: string }).id;
        ids.push(id);
        if (ids.length === 1) {
          res.writeHead(504, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'engine_timeout', message: 'outcome unknown' } }));
        } else {
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id, results: { a: { seq: 1, duplicate: true } } }));
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    onCleanup(() => new Promise<void>((r) => server.close(() => r())));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const r = await run(['publish', '--url', url, '--key', API_KEY, '--channel', 'a', '--type', 't', '--payload', '{}']);
    expect(r.code).toBe(0);
    expect(ids).toHaveLength(2);
    expect(ids[0]).toMatch(/^cli-/);
    expect(ids[1]).toBe(ids[0]);
    expect(JSON.parse(r.stdout).results.a.duplicate).toBe(true);
    // --retries 0: the unknown outcome is reported (exit 1) with the error the gateway gave.
    ids.length = 0;
    const once = await run(['publish', '--url', url, '--key', API_KEY, '--channel', 'a', '--type', 't', '--payload', '{}', '--id', 'mine', '--retries', '0']);
    expect(once.code).toBe(1);
    expect(JSON.parse(once.stdout).error.code).toBe('engine_timeout');
    expect(ids).toEqual(['mine']);
  });
});

describe('herald token', () => {
  it('mints a token the gateway accepts, with the granted private channels', async () => {
    // Real time on both sides: the token's exp is minted from the system clock.
    const gw = await startGateway({ clock: systemClock });
    const r = await run(['token', '--user', '42', '--channels', 'private:team-*', '--ttl', '600'], { HERALD_JWT_SECRET: JWT_SECRET });
    expect(r.code).toBe(0);
    const { client, connected } = await TestClient.connect(gw.ws, { token: r.stdout.trim(), subs: { 'private:team-a': {} } });
    expect(connected.user).toBe('42');
    expect(Object.keys(connected.subs as object).sort()).toEqual(['private:team-a', 'user:42']);
    client.terminate();
  });

  it('mints publish grants and presence info', async () => {
    const gw = await startGateway({ clock: systemClock });
    const r = await run(['token', '--user', 'ann', '--channels', 'presence:*', '--publish', 'chat:*', '--info', '{"name":"Ann"}'], {
      HERALD_JWT_SECRET: JWT_SECRET,
    });
    expect(r.code).toBe(0);
    const { client, connected } = await TestClient.connect(gw.ws, { token: r.stdout.trim(), subs: { 'presence:room': {} } });
    expect((connected.subs as Record<string, unknown>)['presence:room']).toMatchObject({ members: [{ user: 'ann', info: { name: 'Ann' } }] });
    client.send({ type: 'publish', channel: 'chat:1', event: 'said', payload: {}, id: 1 });
    expect(await client.nextOf('published')).toMatchObject({ seq: 1, id: 1 });
    expect((await run(['token', '--user', '1', '--secret', JWT_SECRET, '--info', '{nope'])).code).toBe(2);
  });

  it('refuses to mint without a user or a secret', async () => {
    expect((await run(['token', '--secret', JWT_SECRET])).code).toBe(2);
    expect((await run(['token', '--user', '1'])).code).toBe(2);
    expect((await run(['token', '--user', '1', '--secret', JWT_SECRET, '--ttl', 'soon'])).code).toBe(2);
  });

  it('refuses a user id and a secret the gateway would refuse, naming the rule, instead of printing a useless token', async () => {
    const spaced = await run(['token', '--user', 'a b', '--secret', JWT_SECRET]);
    expect(spaced.code).toBe(2);
    expect(spaced.stdout).toBe('');
    expect(spaced.stderr).toContain('--user must be a user id');
    expect((await run(['token', '--user', 'x'.repeat(196), '--secret', JWT_SECRET])).code).toBe(2);
    const short = await run(['token', '--user', '42', '--secret', 'short']);
    expect(short.code).toBe(2);
    expect(short.stderr).toContain('at least 32 characters');
    expect(short.stderr).not.toContain('short');
  });

  it('signs with the first secret of a rotation list in HERALD_JWT_SECRET, which the gateway accepts', async () => {
    const gw = await startGateway({ clock: systemClock, jwtSecrets: [JWT_SECRET, 'the_older_secret_0123456789_0123456789'] });
    const r = await run(['token', '--user', '42'], { HERALD_JWT_SECRET: ` ${JWT_SECRET} , the_older_secret_0123456789_0123456789` });
    expect(r.code).toBe(0);
    const { client, connected } = await TestClient.connect(gw.ws, { token: r.stdout.trim() });
    expect(connected.user).toBe('42');
    client.terminate();
  });
});

describe('herald stats', () => {
  it('shows connections, channels and counts of a running gateway', async () => {
    const gw = await startGateway();
    await TestClient.connect(gw.ws, { subs: { a: {}, b: {} } });
    await TestClient.connect(gw.ws, { subs: { a: {} } });
    const r = await run(['stats', '--url', gw.http, '--key', API_KEY, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ engine: 'memory', connections: 2, channels: 2, published: 0 });
    const table = await run(['stats'], { HERALD_URL: gw.http, HERALD_API_KEY: API_KEY });
    expect(table.stdout).toMatch(/connections\s+2/);
    expect((await run(['stats', '--url', gw.http, '--key', 'wrong_key_0123456789'])).code).toBe(1);
  });
});

describe('herald webhooks', () => {
  it('lists the queue and dead letters, and replays them (all, or one by id)', async () => {
    const gw = await startGateway({
      webhooks: [{ name: 'app', url: 'http://127.0.0.1:9/hooks', secret: `whsec_${Buffer.from('x'.repeat(32)).toString('base64')}` }],
    });
    const { outbox } = gw.gateway.engine;
    // Two dead letters, as the dispatcher leaves them after webhookRetryFor.
    await outbox.publish([
      '{"id":"evt_1","type":"user.online","time":1,"data":{"user":"1"}}',
      '{"id":"evt_2","type":"user.online","time":1,"data":{"user":"2"}}',
    ]);
    await outbox.fanOut(() => ['app'], 10, 0);
    for (const job of await outbox.claim(0, 1000, 10)) await outbox.settle(job, { kind: 'dead', reason: 'status 503' }, 1);
    const listed = await run(['webhooks', 'list', '--url', gw.http, '--key', API_KEY]);
    expect(listed.code).toBe(0);
    const body = JSON.parse(listed.stdout) as { dead: number; deadLetters: Array<{ id: string; reason: string }> };
    expect(body.dead).toBe(2);
    expect(body.deadLetters.map((d) => d.reason)).toEqual(['status 503', 'status 503']);
    const one = await run(['webhooks', 'replay', '--id', (body.deadLetters[0] as { id: string }).id], { HERALD_URL: gw.http, HERALD_API_KEY: API_KEY });
    expect([one.code, one.stdout]).toEqual([0, 'replayed 1 dead letter(s)\n']);
    const all = await run(['webhooks', 'replay', '--url', gw.http, '--key', API_KEY]);
    expect([all.code, all.stdout]).toEqual([0, 'replayed 1 dead letter(s)\n']);
    expect((await outbox.deadLetters(10)).length).toBe(0);
    expect((await run(['webhooks', 'replay', '--url', gw.http, '--key', 'wrong_key_0123456789'])).code).toBe(1);
    expect((await run(['webhooks', 'nonsense', '--url', gw.http, '--key', API_KEY])).code).toBe(2);
  });
});

describe('herald serve --config', () => {
  it('reads settings from a JSON file, and rejects an unknown key naming it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-config-'));
    const good = join(dir, 'herald.json');
    writeFileSync(good, JSON.stringify({ port: 0, apiKeys: [API_KEY], jwtSecrets: [JWT_SECRET], allowAnonymous: true, logLevel: 'info' }));
    const { http } = await new HeraldProcess(['--config', good]).listening();
    const r = await fetch(`${http}/api/online?users=1`, { headers: { authorization: `Bearer ${API_KEY}` } });
    expect(r.status).toBe(200);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ prot: 8080 }));
    const refused = await run(['--config', bad]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('prot');
  });

  it('lists the commands in --help', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['publish', 'token', 'stats', '--config']) expect(r.stdout).toContain(c);
    expect((await run(['publish', '--help'])).stdout).toContain('--payload');
  });
});
