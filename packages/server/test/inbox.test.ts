/**
 * The per-user inbox over the native protocol and the HTTP API (docs/inbox.md), on the memory engine and on
 * two Redis-backed nodes: a push to an offline user reaches the next connection of a new client first and is
 * acknowledged once; two devices get it live and one ack clears it; TTL and cap; receipts; the inbox routes.
 * Time is the gateways' manual clock (the Redis engine's too: inbox expiry is judged by the gateway's clock).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisEngine } from '../src/engine/redis/engine.js';
import type { GatewayOptions } from '../src/gateway/options.js';
import { api, capturingLogger, ManualClock, publish, startGateway, TestClient, token, type Frame, type TestGateway } from './helpers.js';
import { cleanupRun, engineWithSubscriberProxy, REDIS_URL, testPrefix, waitFor } from './redis-helpers.js';

afterAll(cleanupRun);

/** Two gateways: where backends publish (`pub`) and where clients connect (`sub`); the same one on memory. */
interface Setup {
  pub: TestGateway;
  sub: TestGateway;
  clock: ManualClock;
}

const setups: Record<string, (opts?: GatewayOptions) => Promise<Setup>> = {
  memory: async (opts = {}) => {
    const clock = new ManualClock();
    const gw = await startGateway({ clock, ...opts });
    const g = { ...gw, clock };
    return { pub: g, sub: g, clock };
  },
  'redis, two nodes': async (opts = {}) => {
    const clock = new ManualClock();
    const prefix = testPrefix();
    const node = async (): Promise<TestGateway> => ({
      ...(await startGateway({ clock, engine: createRedisEngine({ url: REDIS_URL, prefix, clock }), ...opts })),
      clock,
    });
    return { pub: await node(), sub: await node(), clock };
  },
};

/** Connects a client of `user` to `gw`; resolves it with its `connected` frame. */
async function device(gw: TestGateway, user: string): Promise<TestClient> {
  const { client } = await TestClient.connect(gw.ws, { token: await token({ sub: user }) });
  return client;
}

/** Inbox frames (messages carrying an `inbox` id) received so far. */
const inboxFrames = (c: TestClient): Frame[] => c.frames.filter((f) => typeof f['inbox'] === 'string');

const push = (gw: TestGateway, user: string, n: number, extra: Record<string, unknown> = {}) =>
  publish(gw.http, { user, type: 'notice', payload: { n }, inbox: true, ...extra });

for (const [name, setup] of Object.entries(setups)) {
  describe(`inbox: ${name}`, () => {
    it('keeps a push to an offline user for the next connection of a new client: first, in order, acknowledged once', async () => {
      const { pub, sub } = await setup();
      const r1 = await push(pub, 'off', 1, { receipt: true });
      const r2 = await push(pub, 'off', 2);
      const first = r1.results['user:off'];
      expect(first).toMatchObject({ stored: true, live: false, online: false, duplicate: false, dropped: 0 });
      expect(typeof first.message).toBe('string');
      expect((await api(sub.http, 'GET', `/api/receipts/${first.message}`)).body).toMatchObject({ status: 'pending', delivered: 0, acknowledged: null });

      const c = await device(sub, 'off');
      const frames = await c.waitFor(() => (inboxFrames(c).length >= 2 ? inboxFrames(c) : undefined), 'two inbox messages');
      // Right after `connected`, before anything else, oldest first, with their ids.
      expect(c.frames[0]?.type).toBe('connected');
      expect(c.frames.slice(1, 3)).toEqual(frames);
      expect(frames.map((f) => [f.type, f['channel'], f['payload'], f['seq'], f['inbox']])).toEqual([
        ['notice', 'user:off', { n: 1 }, 0, first.message],
        ['notice', 'user:off', { n: 2 }, 0, r2.results['user:off'].message],
      ]);
      expect((await api(pub.http, 'GET', `/api/receipts/${first.message}`)).body).toMatchObject({ status: 'delivered', delivered: 1 });

      c.send({ type: 'ack', inbox: [first.message] });
      const acked = await c.nextOf('acked');
      expect(acked).toEqual({ type: 'acked', inbox: [first.message] });
      const receipt = (await api(pub.http, 'GET', `/api/receipts/${first.message}`)).body;
      expect(receipt).toMatchObject({ id: first.message, user: 'off', status: 'acknowledged', acknowledged: { client: expect.any(String) } });
      // Acknowledged once: a second ack (another device, a retry) changes nothing.
      const again = await device(sub, 'off');
      const left = await again.waitFor(() => (inboxFrames(again).length >= 1 ? inboxFrames(again) : undefined), 'the unacknowledged message');
      expect(left.map((f) => f['payload'])).toEqual([{ n: 2 }]);
      again.send({ type: 'ack', inbox: [first.message, r2.results['user:off'].message] });
      await again.nextOf('acked');
      expect((await api(pub.http, 'GET', `/api/receipts/${first.message}`)).body.acknowledged).toEqual(receipt.acknowledged);
      expect((await api(pub.http, 'GET', '/api/users/off/inbox')).body).toEqual({ user: 'off', messages: [] });
      const third = await device(sub, 'off');
      await third.roundTrip();
      await publish(pub.http, { channel: 'user:off', type: 'marker', payload: {} });
      await third.waitMessages('user:off', 1);
      expect(inboxFrames(third)).toEqual([]);
    });

    it('gives a push to every device online at once; one acknowledgement clears it for all', async () => {
      const { pub, sub } = await setup();
      const phone = await device(sub, 'two');
      const laptop = await device(pub, 'two');
      const r = await push(pub, 'two', 7);
      expect(r.results['user:two']).toMatchObject({ stored: true, live: true, online: true });
      const id = r.results['user:two'].message as string;
      for (const d of [phone, laptop]) {
        const [f] = await d.waitFor(() => (inboxFrames(d).length === 1 ? inboxFrames(d) : undefined), 'the live inbox message');
        expect(f).toMatchObject({ type: 'notice', channel: 'user:two', payload: { n: 7 }, seq: 0, inbox: id });
      }
      laptop.send({ type: 'ack', inbox: [id] });
      await laptop.nextOf('acked');
      expect((await api(sub.http, 'GET', '/api/users/two/inbox')).body.messages).toEqual([]);
      const tablet = await device(sub, 'two');
      await tablet.roundTrip();
      expect(inboxFrames(tablet)).toEqual([]);
    });

    it('expires messages after their TTL and keeps at most the cap, dropping the oldest (counted)', async () => {
      const { pub, sub, clock } = await setup({ inboxMaxMessages: 3 });
      await push(pub, 'cap', 0, { ttl: 60 });
      for (let n = 1; n <= 4; n++) await push(pub, 'cap', n);
      const list = (await api(sub.http, 'GET', '/api/users/cap/inbox')).body.messages as Array<Record<string, unknown>>;
      expect(list.map((m) => m['payload'])).toEqual([{ n: 2 }, { n: 3 }, { n: 4 }]);
      expect(list[0]).toMatchObject({ type: 'notice', channel: 'user:cap', seq: 0, receipt: false, expires: expect.any(Number) });
      const dropped = (await api(pub.http, 'GET', '/api/stats')).body.dropped;
      expect(dropped['inbox_full']).toBe(2);
      await push(pub, 'ttl', 1, { ttl: 60 });
      await push(pub, 'ttl', 2, { ttl: 3600 });
      clock.advance(61_000);
      const c = await device(sub, 'ttl');
      const got = await c.waitFor(() => (inboxFrames(c).length >= 1 ? inboxFrames(c) : undefined), 'the inbox');
      await c.roundTrip();
      expect(inboxFrames(c).map((f) => f['payload'])).toEqual([{ n: 2 }]);
      expect(got).toHaveLength(1);
    });

    it('lists and removes over HTTP; refuses what is not an inbox publish', async () => {
      const { pub } = await setup();
      const a = (await push(pub, 'h', 1)).results['user:h'].message;
      await push(pub, 'h', 2);
      expect((await api(pub.http, 'DELETE', `/api/users/h/inbox/${a}`)).body).toEqual({ user: 'h', removed: 1 });
      const missing = await api(pub.http, 'DELETE', `/api/users/h/inbox/${a}`);
      expect([missing.status, missing.body.error.code]).toEqual([404, 'no_such_message']);
      expect((await api(pub.http, 'GET', '/api/users/h/inbox?limit=10')).body.messages.map((m: Frame) => m['payload'])).toEqual([{ n: 2 }]);
      expect((await api(pub.http, 'DELETE', '/api/users/h/inbox')).body).toEqual({ user: 'h', removed: 1 });
      expect((await api(pub.http, 'GET', '/api/receipts/nope')).body.error.code).toBe('no_such_message');
      const refusals: Array<[Record<string, unknown>, string]> = [
        [{ channel: 'news', type: 't', payload: {}, inbox: true }, 'inbox'],
        [{ user: 'h', type: 't', payload: {}, receipt: true }, 'receipt'],
        [{ user: 'h', type: 't', payload: {}, inbox: true, ttl: 0 }, 'ttl'],
        [{ user: 'h', channel: 'x', type: 't', payload: {} }, 'user'],
        [{ user: 'bad user', type: 't', payload: {} }, 'user'],
      ];
      for (const [body, field] of refusals) {
        const r = await api(pub.http, 'POST', '/api/publish', body);
        expect([r.status, r.body.error.code, r.body.error.field], JSON.stringify(body)).toEqual([400, 'invalid_field', field]);
      }
      // Publishing once per id: the same id stores once.
      const once = await push(pub, 'idem', 1, { id: 'order-1' });
      const twice = await push(pub, 'idem', 1, { id: 'order-1' });
      expect(twice.results['user:idem']).toMatchObject({ message: once.results['user:idem'].message, duplicate: true });
      expect((await api(pub.http, 'GET', '/api/users/idem/inbox')).body.messages).toHaveLength(1);
    });

    it('keeps publish order in the inbox when some items wait for a receipt (one request, then the next)', async () => {
      const { pub } = await setup();
      const item = (n: number, receipt: boolean) => ({ user: 'ord', type: 'notice', payload: { n }, inbox: true, ...(receipt ? { receipt: true } : {}) });
      const first = await api(pub.http, 'POST', '/api/publish', [item(1, true), item(2, false), item(3, true), item(4, false)]);
      expect(first.status).toBe(200);
      const [second] = await Promise.all([api(pub.http, 'POST', '/api/publish', [item(5, true)]), api(pub.http, 'POST', '/api/publish', [item(6, false)])]);
      expect(second.status).toBe(200);
      const listed = (await api(pub.http, 'GET', '/api/users/ord/inbox?limit=10')).body.messages.map((m: Frame) => (m['payload'] as { n: number }).n);
      expect(listed.slice(0, 4)).toEqual([1, 2, 3, 4]);
      expect(listed).toHaveLength(6);
    });

    it('refuses an ack from an anonymous connection, and a malformed one', async () => {
      const { sub } = await setup();
      const { client } = await TestClient.connect(sub.ws);
      client.send({ type: 'ack', inbox: ['x'] });
      expect((await client.nextOf('error'))['code']).toBe('forbidden');
      client.send({ type: 'ack', inbox: [] });
      expect((await client.nextOf('error'))['code']).toBe('invalid_frame');
    });
  });
}

describe('inbox on Redis: the replay and the live messages travel apart', () => {
  it('sends a stored message once to a new connection when its live copy comes after the replay that read it', async () => {
    const clock = new ManualClock();
    const { engine, proxy } = await engineWithSubscriberProxy({ clock });
    const gw = { ...(await startGateway({ clock, engine })), clock };
    const a = await device(gw, 'late');
    // The message is stored; its live copy waits on the subscriber connection while a second device connects.
    expect(proxy.freeze()).toBe(1);
    const first = (await push(gw, 'late', 1)).results['user:late'].message as string;
    const b = await device(gw, 'late');
    await b.waitFor(() => inboxFrames(b).find((f) => f['inbox'] === first), 'the stored message on the new device');
    proxy.unfreeze();
    await a.waitFor(() => inboxFrames(a).find((f) => f['inbox'] === first), 'its live copy on the first device');
    const second = (await push(gw, 'late', 2)).results['user:late'].message as string;
    await waitFor(() => [a, b].every((c) => inboxFrames(c).some((f) => f['inbox'] === second)), 'the next message on both');
    expect(inboxFrames(b).map((f) => f['inbox'])).toEqual([first, second]);
    expect(inboxFrames(a).map((f) => f['inbox'])).toEqual([first, second]);
  });
});

describe('inbox on the memory engine: the bound on receipts', () => {
  it('keeps at most inboxMaxReceipts receipts: the oldest answers 404 before its message expires, counted in /metrics and logged', async () => {
    const { logger, entries } = capturingLogger();
    const clock = new ManualClock();
    const gw = await startGateway({ clock, inboxMaxReceipts: 2, logger });
    const ids: string[] = [];
    for (let n = 0; n < 3; n++) ids.push((await push(gw, `r${n}`, n, { receipt: true })).results[`user:r${n}`].message as string);
    const first = await api(gw.http, 'GET', `/api/receipts/${ids[0]}`);
    expect(first.status).toBe(404);
    expect(first.body).toMatchObject({ error: { code: 'no_such_message' } });
    for (const id of ids.slice(1)) expect((await api(gw.http, 'GET', `/api/receipts/${id}`)).body).toMatchObject({ status: 'pending' });
    // Its message is still in the user's inbox: only the receipt went.
    expect((await api(gw.http, 'GET', '/api/users/r0/inbox')).body.messages).toHaveLength(1);
    const metrics = (await api(gw.http, 'GET', '/metrics')).body as string;
    expect(metrics).toMatch(/herald_inbox_receipts_evicted_total\{node="[^"]+"\} 1\n/);
    expect(metrics).toMatch(/herald_inbox_receipts\{node="[^"]+"\} 2\n/);
    // The operations tick (each second of the gateway's clock) says so once, with the count.
    clock.advance(1000);
    const said = entries.filter((e) => String(e['msg']).startsWith('delivery receipts dropped'));
    expect(said).toEqual([expect.objectContaining({ level: 40, dropped: 1, total: 1 })]);
  });
});

describe('inbox on the memory engine: the bound on every inbox together', () => {
  it('refuses an inbox publish past inboxTotalBytes with 507 inbox_storage_full, drops nothing stored, counts it in /metrics and logs it', async () => {
    const { logger, entries } = capturingLogger();
    const clock = new ManualClock();
    // Room for two notifications to two users (each about 200 bytes of frame, 512 + 256 counted beside it).
    const gw = await startGateway({ clock, inboxTotalBytes: 2_200, logger });
    const first = (await push(gw, 'full-a', 1)).results['user:full-a'];
    expect(first).toMatchObject({ stored: true });
    await push(gw, 'full-b', 2);
    const refused = await api(gw.http, 'POST', '/api/publish', { user: 'full-c', type: 'notice', payload: { n: 3 }, inbox: true, id: 'k-3' });
    expect(refused.status).toBe(507);
    expect(refused.body).toEqual({ error: { code: 'inbox_storage_full', message: expect.stringContaining('inboxTotalBytes'), limit: 2_200 } });
    // Nothing stored was dropped to make room, and the refused user has nothing.
    expect((await api(gw.http, 'GET', '/api/users/full-a/inbox')).body.messages).toEqual([expect.objectContaining({ inbox: first.message })]);
    expect((await api(gw.http, 'GET', '/api/users/full-b/inbox')).body.messages).toHaveLength(1);
    expect((await api(gw.http, 'GET', '/api/users/full-c/inbox')).body.messages).toEqual([]);
    const metrics = (await api(gw.http, 'GET', '/metrics')).body as string;
    expect(metrics).toMatch(/herald_inbox_rejected_total\{node="[^"]+"\} 1\n/);
    const bytes = Number(/herald_inbox_bytes\{node="[^"]+"\} (\d+)\n/.exec(metrics)?.[1]);
    expect(bytes).toBeGreaterThan(2 * (512 + 256));
    expect(bytes).toBeLessThanOrEqual(2_200);
    // The operations tick says so once, with the count.
    clock.advance(1000);
    expect(entries.filter((e) => String(e['msg']).startsWith('inbox publishes refused'))).toEqual([
      expect.objectContaining({ level: 40, refused: 1, total: 1 }),
    ]);
    // Once a message is acknowledged (removed), the retry with the same id is stored.
    expect((await api(gw.http, 'DELETE', `/api/users/full-a/inbox/${first.message}`)).status).toBe(200);
    const retried = await publish(gw.http, { user: 'full-c', type: 'notice', payload: { n: 3 }, inbox: true, id: 'k-3' });
    expect(retried.results['user:full-c']).toMatchObject({ stored: true, duplicate: false });
  });
});
