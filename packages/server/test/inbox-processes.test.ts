/**
 * The inbox on the Redis engine as operators run it: `herald` CLI processes on one Redis prefix. A gateway
 * killed with kill -9 between storing a message and its acknowledgement loses nothing: the message is handed
 * to the next connection of the user, on another node; an acknowledged message stays acknowledged across a
 * restart, an unacknowledged one stays. Messages ingested from Redis (XADD <prefix>:ingest) with
 * `"inbox": true` are kept the same way. Waits are on events (process output, frames); the ingest, which has
 * no event, is polled.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { api, API_KEY, eventually, JWT_SECRET, TestClient, token, type Frame } from './helpers.js';
import { redisPrefix } from './redis-helpers.js';
import { buildCli, startRedisNode, type HeraldProcess } from './support/cli-process.js';

const WAIT = 30_000;
beforeAll(buildCli, 180_000);

const node = (name: string, prefix: string): Promise<HeraldProcess> =>
  startRedisNode(name, prefix, { env: { HERALD_API_KEY: API_KEY, HERALD_JWT_SECRET: JWT_SECRET }, timeoutMs: WAIT });

const inboxOf = (c: TestClient): Frame[] => c.frames.filter((f) => typeof f['inbox'] === 'string');

async function pushTo(n: HeraldProcess, user: string, text: string): Promise<string> {
  const r = await api(n.http, 'POST', '/api/publish', { user, type: 'notice', payload: { text }, inbox: true });
  if (r.status !== 200) throw new Error(`publish: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.results[`user:${user}`].message as string;
}

describe('inbox across gateway processes (Redis engine)', () => {
  it('loses nothing when the gateway holding the connection is killed with kill -9 between store and ack', async () => {
    const { prefix } = redisPrefix('inbox-proc');
    const [a, b] = await Promise.all([node('node-a', prefix), node('node-b', prefix)]);
    const first = await pushTo(a, 'k9', 'stored while offline');

    // Delivered on node b, never acknowledged: then node b dies.
    const early = await TestClient.connect(b.ws, { token: await token({ sub: 'k9' }) });
    await early.client.waitFor(() => (inboxOf(early.client).length === 1 ? true : undefined), 'the stored message on node b', WAIT);
    const closed = early.client.closed(WAIT);
    expect(b.kill9()).toBe(true);
    await b.exited(WAIT);
    await closed;
    const second = await pushTo(a, 'k9', 'while node b was dead');

    // A new client on node a gets both, first and in order, and acknowledges the first only.
    const next = await TestClient.connect(a.ws, { token: await token({ sub: 'k9' }) });
    const got = await next.client.waitFor(() => (inboxOf(next.client).length === 2 ? inboxOf(next.client) : undefined), 'both messages on node a', WAIT);
    expect(got.map((f) => [f['inbox'], f['payload']])).toEqual([
      [first, { text: 'stored while offline' }],
      [second, { text: 'while node b was dead' }],
    ]);
    next.client.send({ type: 'ack', inbox: [first] });
    await next.client.nextOf('acked', WAIT);
    next.client.terminate();

    // Node a dies too; a node started afterwards still has the unacknowledged message, and only it.
    expect(a.kill9()).toBe(true);
    await a.exited(WAIT);
    const c = await node('node-c', prefix);
    const late = await TestClient.connect(c.ws, { token: await token({ sub: 'k9' }) });
    const left = await late.client.waitFor(() => (inboxOf(late.client).length >= 1 ? inboxOf(late.client) : undefined), 'the unacknowledged message', WAIT);
    await late.client.roundTrip();
    expect(inboxOf(late.client).map((f) => f['inbox'])).toEqual([second]);
    expect(left).toHaveLength(1);
  }, 120_000);

  it('keeps what backends write to the Redis ingest with "inbox": true', async () => {
    const { prefix, redis } = redisPrefix('inbox-ingest');
    const n = await node('node-i', prefix);
    await redis.xadd(`${prefix}:ingest`, '*', 'msg', JSON.stringify({ user: 'ing', type: 'notice', payload: { via: 'xadd' }, inbox: true, ttl: 3600 }));
    const messages = await eventually(
      async () => {
        const list = (await api(n.http, 'GET', '/api/users/ing/inbox')).body.messages as Frame[];
        return list.length > 0 ? list : undefined;
      },
      'the ingested message in the inbox',
      WAIT,
    );
    expect(messages.map((m) => [m.type, m['payload'], m['channel']])).toEqual([['notice', { via: 'xadd' }, 'user:ing']]);
    const c = await TestClient.connect(n.ws, { token: await token({ sub: 'ing' }) });
    const [f] = await c.client.waitFor(() => (inboxOf(c.client).length === 1 ? inboxOf(c.client) : undefined), 'the ingested message', WAIT);
    expect(f?.['inbox']).toBe(messages[0]?.['inbox']);
  }, 60_000);
});
