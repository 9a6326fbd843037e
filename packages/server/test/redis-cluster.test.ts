/**
 * The Redis engine as users run it: several nodes (in this process) on one Redis, the ingest paths,
 * cluster-wide presence, and Redis itself going away and coming back empty.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/util/logger.js';
import { createRedisEngine } from '../src/engine/redis/engine.js';
import { createGateway } from '../src/gateway/gateway.js';
import { pruneConsumers } from '../src/engine/redis/consumers.js';
import { INGEST_GROUP, startRedisIngest } from '../src/engine/redis/ingest.js';
import { createIngestHandler } from '../src/ingest/handler.js';
import { api, API_KEY, eventually, onCleanup, TestClient, token, type Frame } from './helpers.js';
import { cleanupRun, rawClient, REDIS_URL, startRedisNode, testPrefix, type RunningNode } from './redis-helpers.js';

afterAll(cleanupRun);

const history = async (n: RunningNode, channel: string): Promise<Frame[]> => (await api(n.http, 'GET', `/api/history/${channel}`)).body.messages as Frame[];

describe('Redis ingest', () => {
  it('publishes a message XADDed while no gateway ran, once one starts, and acknowledges it', async () => {
    const prefix = testPrefix();
    const raw = rawClient();
    await raw.xadd(`${prefix}:ingest`, '*', 'msg', JSON.stringify({ channel: 'early', type: 'hello', payload: { text: 'written while no gateway ran 😀' } }));
    const n = await startRedisNode(prefix);
    const got = await eventually(async () => {
      const h = await history(n, 'early');
      return h.length > 0 ? h : undefined;
    }, 'the ingested message in history');
    expect(got).toEqual([{ type: 'hello', channel: 'early', payload: { text: 'written while no gateway ran 😀' }, seq: 1 }]);
    await eventually(async () => ((await raw.xlen(`${prefix}:ingest`)) === 0 ? true : undefined), 'the entry acknowledged and removed');
    expect(n.node.gateway.stats.ingested).toBe(1);
  });

  it('delivers stream and pub/sub ingest to connected clients, and says when PUBLISH found no gateway', async () => {
    const prefix = testPrefix();
    const raw = rawClient();
    expect(await raw.publish(`${prefix}:publish`, JSON.stringify({ channel: 'live', type: 't', payload: {} }))).toBe(0);
    const n = await startRedisNode(prefix);
    await eventually(() => (n.node.ingest?.leader ? true : undefined), 'the ingest leader');
    const { client } = await TestClient.connect(n.ws, { subs: { live: {} } });
    await raw.xadd(`${prefix}:ingest`, '*', 'msg', JSON.stringify({ channel: 'live', type: 'from-xadd', payload: { n: 1 } }));
    await client.waitMessages('live', 1);
    expect(await raw.publish(`${prefix}:publish`, JSON.stringify({ channel: 'live', type: 'from-publish', payload: { n: 2 } }))).toBe(1);
    const msgs = await client.waitMessages('live', 2);
    expect(msgs.map((m) => [m.type, m.seq])).toEqual([
      ['from-xadd', 1],
      ['from-publish', 2],
    ]);
  });

  it('claims and publishes the pending entries of a consumer that died before acknowledging them', async () => {
    const prefix = testPrefix();
    const raw = rawClient();
    const stream = `${prefix}:ingest`;
    await raw.xgroup('CREATE', stream, INGEST_GROUP, '0', 'MKSTREAM');
    await raw.xadd(stream, '*', 'msg', JSON.stringify({ channel: 'orphan', type: 't', payload: { n: 1 } }));
    // A consumer reads the entry, then dies without acknowledging it.
    await raw.call('XREADGROUP', ['GROUP', INGEST_GROUP, 'dead-node', 'COUNT', 1, 'STREAMS', stream, '>']);
    expect(((await raw.xpending(stream, INGEST_GROUP)) as unknown[])[0]).toBe(1);
    const logger = silentLogger();
    const engine = createRedisEngine({ url: REDIS_URL, prefix, logger });
    const gateway = await createGateway({ port: 0, apiKeys: [API_KEY], engine, logger, shutdownTimeout: 2000 });
    onCleanup(() => gateway.close());
    const ingest = await startRedisIngest({
      url: REDIS_URL,
      prefix,
      nodeId: engine.nodeId,
      handle: createIngestHandler({ publisher: gateway.publisher, stats: gateway.stats, maxItems: 100 }),
      logger,
      claimIdle: 300,
      pubsub: false,
    });
    onCleanup(() => ingest.close());
    const http = `http://127.0.0.1:${gateway.address().port}`;
    const got = await eventually(async () => {
      const h = (await api(http, 'GET', '/api/history/orphan')).body.messages as Frame[];
      return h.length > 0 ? h : undefined;
    }, 'the orphaned entry published by another node');
    expect(got.map((m) => m.seq)).toEqual([1]);
    await eventually(async () => (((await raw.xpending(stream, INGEST_GROUP)) as unknown[])[0] === 0 ? true : undefined), 'nothing pending');
    // The dead node's consumer goes too, once it holds nothing (each process reads under an id of its own: every
    // restart would leave one behind); the live node's stays.
    const consumers = async (): Promise<string[]> =>
      ((await raw.call('XINFO', 'CONSUMERS', stream, INGEST_GROUP)) as unknown[][]).map((c) => String(c[c.indexOf('name') + 1]));
    await eventually(async () => (!(await consumers()).includes('dead-node') ? true : undefined), "the dead node's consumer removed");
    expect(await consumers()).toEqual([engine.nodeId]);
  });

  it('removes only the consumers that hold nothing and were idle long enough, never the caller (webhook events and ingest alike)', async () => {
    const prefix = testPrefix();
    const raw = rawClient();
    const stream = `${prefix}:consumers`;
    await raw.xgroup('CREATE', stream, 'g', '0', 'MKSTREAM');
    await raw.xadd(stream, '*', 'n', '1');
    await raw.xadd(stream, '*', 'n', '2');
    await raw.xadd(stream, '*', 'n', '3');
    const read = (consumer: string) => raw.call('XREADGROUP', ['GROUP', 'g', consumer, 'COUNT', 1, 'STREAMS', stream, '>']);
    await read('holding');
    const [[, [[done]]]] = (await read('idle')) as [[string, [[string]]]];
    await raw.xack(stream, 'g', done);
    await read('self');
    await raw.xack(stream, 'g', ...((await raw.xpending(stream, 'g', '-', '+', 10, 'self')) as [[string]]).map(([id]) => id));
    const names = async (): Promise<string[]> =>
      ((await raw.call('XINFO', 'CONSUMERS', stream, 'g')) as unknown[][]).map((c) => String(c[c.indexOf('name') + 1])).sort();
    expect(await names()).toEqual(['holding', 'idle', 'self']);
    // Not idle long enough yet: nobody goes.
    expect(await pruneConsumers(raw, stream, 'g', 'self', 60_000)).toBe(0);
    await new Promise((r) => setTimeout(r, 30));
    expect(await pruneConsumers(raw, stream, 'g', 'self', 20)).toBe(1);
    expect(await names()).toEqual(['holding', 'self']);
  });

  it('dead-letters what cannot be published, with the reason, and counts it', async () => {
    const prefix = testPrefix();
    const raw = rawClient();
    const n = await startRedisNode(prefix);
    const stream = `${prefix}:ingest`;
    await raw.xadd(stream, '*', 'msg', 'not json');
    await raw.xadd(stream, '*', 'msg', JSON.stringify({ channel: 'bad name', type: 't', payload: {} }));
    await raw.xadd(stream, '*', 'msg', JSON.stringify({ channel: 'ok', type: 'subscribed', payload: {} }));
    await raw.xadd(stream, '*', 'other', 'field');
    await raw.xadd(stream, '*', 'msg', JSON.stringify({ client: 'nobody', type: 't', payload: {} }));
    await raw.xadd(stream, '*', 'msg', JSON.stringify({ channel: 'ok', type: 't', payload: { fine: true } }));
    await eventually(async () => ((await history(n, 'ok')).length === 1 ? true : undefined), 'the valid message');
    const dead = await eventually(async () => {
      const d = await raw.xrange(`${prefix}:ingest:dead`, '-', '+');
      return d.length === 5 ? d : undefined;
    }, 'five dead letters');
    const reasons = dead.map(([, f]) => f[f.indexOf('reason') + 1]);
    expect(reasons).toEqual(['invalid_body', 'invalid_channel', 'reserved_type', 'invalid_body', 'no_such_client']);
    expect(dead[0]?.[1]).toEqual(expect.arrayContaining(['msg', 'not json', 'source', 'stream']));
    expect(n.node.gateway.stats.ingestDeadLetters).toBe(5);
  });
});

describe('three nodes on one Redis', () => {
  it('gives every client each message exactly once, in seq order, whichever node or ingest path published it', async () => {
    const prefix = testPrefix();
    const raw = rawClient();
    const nodes = [await startRedisNode(prefix), await startRedisNode(prefix), await startRedisNode(prefix)];
    await eventually(() => (nodes.filter((n) => n.node.ingest?.leader).length === 1 ? true : undefined), 'exactly one ingest leader');
    const clients: TestClient[] = [];
    for (const n of nodes) for (let i = 0; i < 2; i++) clients.push((await TestClient.connect(n.ws, { subs: { room: {} } })).client);
    const total = 60;
    for (let i = 0; i < total; i++) {
      const msg = { channel: 'room', type: 'm', payload: { i } };
      const path = i % 5;
      if (path < 3) expect((await api((nodes[path] as RunningNode).http, 'POST', '/api/publish', msg)).status).toBe(200);
      else if (path === 3) await raw.xadd(`${prefix}:ingest`, '*', 'msg', JSON.stringify(msg));
      else expect(await raw.publish(`${prefix}:publish`, JSON.stringify(msg))).toBe(1);
    }
    for (const c of clients) {
      const got = await c.waitMessages('room', total);
      expect(got.map((m) => m.seq)).toEqual(Array.from({ length: total }, (_, k) => k + 1));
      expect(new Set(got.map((m) => (m.payload as { i: number }).i)).size).toBe(total);
    }
    await eventually(async () => ((await raw.xlen(`${prefix}:ingest`)) === 0 ? true : undefined), 'every stream entry acknowledged');
    // Counted once the publish call returns, which can be just after its subscribers already got it.
    const ingested = () => nodes.reduce((sum, n) => sum + n.node.gateway.stats.ingested, 0);
    await eventually(() => (ingested() >= 24 ? true : undefined), '24 ingested messages counted');
    expect(ingested()).toBe(24);
  });

  it('answers presence, direct messages, idempotency and disconnects cluster-wide', async () => {
    const prefix = testPrefix();
    const [a, b, c] = [await startRedisNode(prefix), await startRedisNode(prefix), await startRedisNode(prefix)];
    const t = await token({ sub: '42' });
    const onA = await TestClient.connect(a.ws, { token: t });
    const onB = await TestClient.connect(b.ws, { token: t });
    expect((await api(c.http, 'GET', '/api/online?users=42,43')).body.users).toEqual({
      '42': { online: true, connections: 2 },
      '43': { online: false, connections: 0 },
    });
    const direct = await api(c.http, 'POST', '/api/publish', { client: onB.connected.client, type: 'only-you', payload: {} });
    expect(direct.body).toEqual({ client: onB.connected.client, delivered: true });
    expect((await onB.client.nextWhere((f) => f.type === 'only-you')).channel).toBe(`client:${onB.connected.client as string}`);
    expect((await api(c.http, 'POST', '/api/publish', { client: 'nobody', type: 't', payload: {} })).status).toBe(404);
    const first = await api(a.http, 'POST', '/api/publish', { channel: 'user:42', type: 'once', payload: {}, id: 'order-7' });
    const again = await api(b.http, 'POST', '/api/publish', { channel: 'user:42', type: 'once', payload: {}, id: 'order-7' });
    expect(first.body.results['user:42']).toMatchObject({ seq: 1, duplicate: false, online: true });
    expect(again.body.results['user:42']).toMatchObject({ seq: 1, duplicate: true });
    await onA.client.waitMessages('user:42', 1);
    expect((await api(c.http, 'POST', '/api/disconnect', { user: '42' })).status).toBe(200);
    expect((await onA.client.closed()).code).toBe(4509);
    expect((await onB.client.closed()).code).toBe(4509);
    await eventually(async () => ((await api(c.http, 'GET', '/api/online?users=42')).body.users['42'].online === false ? true : undefined), 'user 42 offline');
  });
});

/** A Redis server of this test's own, so it can be stopped and started without touching the shared one. */
class OwnRedis {
  private proc: ChildProcess | undefined;
  constructor(readonly port: number) {}

  static async create(): Promise<OwnRedis> {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const r = new OwnRedis(port);
    onCleanup(() => r.stop());
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.proc = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    await eventually(
      async () => {
        const c = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
        c.on('error', () => undefined);
        try {
          await c.connect();
          return (await c.ping()) === 'PONG' ? true : undefined;
        } catch {
          return undefined;
        } finally {
          c.disconnect();
        }
      },
      'redis-server up',
      15_000,
    );
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  }
}

describe('Redis trouble', () => {
  it('answers 503 while Redis is down, keeps clients connected, and resumes (new epoch announced) when it returns empty', async () => {
    const redis = await OwnRedis.create();
    await redis.start();
    const n = await startRedisNode(testPrefix(), redis.url);
    const { client, connected } = await TestClient.connect(n.ws, { subs: { r: {} } });
    const oldEpoch = (connected.subs as Record<string, { epoch: string }>)['r']?.epoch;
    for (let i = 1; i <= 3; i++) expect((await api(n.http, 'POST', '/api/publish', { channel: 'r', type: 'm', payload: { i } })).status).toBe(200);
    await client.waitMessages('r', 3);

    await redis.stop();
    const down = await eventually(async () => {
      const r = await api(n.http, 'POST', '/api/publish', { channel: 'r', type: 'm', payload: { lost: true } });
      return r.status === 503 ? r : undefined;
    }, '503 while Redis is down');
    expect(down.body.error.code).toBe('engine_unavailable');
    expect((await api(n.http, 'GET', '/readyz', undefined, { key: null })).status).toBe(503);
    client.send({ type: 'ping' });
    expect((await client.nextOf('pong')).type).toBe('pong');

    await redis.start(); // empty: no persistence
    await eventually(async () => ((await api(n.http, 'GET', '/readyz', undefined, { key: null })).status === 200 ? true : undefined), 'ready again', 20_000);
    const after = await eventually(
      async () => {
        const r = await api(n.http, 'POST', '/api/publish', { channel: 'r', type: 'm', payload: { after: true } });
        return r.status === 200 ? r : undefined;
      },
      'publishes accepted again',
      20_000,
    );
    expect(after.body.results.r.seq).toBe(1);
    const newEpoch = after.body.results.r.epoch as string;
    expect(newEpoch).not.toBe(oldEpoch);
    const reset = await client.nextWhere((f) => f.type === 'subscribed', 'the new epoch announced');
    expect(reset).toEqual({ type: 'subscribed', channel: 'r', seq: 0, epoch: newEpoch, recovered: false });
    const next = await client.next();
    expect(next).toMatchObject({ type: 'm', channel: 'r', seq: 1, payload: { after: true } });
    expect(client.closeCode).toBeUndefined();
    expect(client.frames.filter((f) => f.type === 'connected')).toHaveLength(1);
  }, 90_000);
});
