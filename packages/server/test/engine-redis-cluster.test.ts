/**
 * The Redis engine on a real Redis Cluster (three masters started for this file by scripts/redis-cluster.mjs,
 * plus a second cluster of three masters with a replica each): the engine contract; two gateways with
 * publishes over HTTP and through the ingest, presence and recovery; and, during a stream of publishes, a
 * master killed and restarted, a master killed and its replica promoted, a channel's slot migrated, after
 * each of which every publish answered 2xx has reached every subscriber exactly once. Then a publish in
 * flight when its master dies (never resent), and the engine while one master or every master is down.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisCluster, type TestRedisCluster } from '../../../scripts/redis-cluster.mjs';
import { parseConfig } from '../src/cli/config.js';
import { createRedisEngine } from '../src/engine/redis/engine.js';
import { redisTarget } from '../src/gateway/node.js';
import { api, eventually, onCleanup, TestClient, token, type Frame } from './helpers.js';
import { engineContract } from './engine-contract.js';
import { Recorder, startRedisNode, testPrefix, type RunningNode } from './redis-helpers.js';

let cluster: TestRedisCluster | undefined;
const started = startRedisCluster().then((c) => (cluster = c));
// A cluster that could not start fails the tests that wait for it (below), not the whole run.
started.catch(() => undefined);
// Every test of this file waits for the cluster; it is started once, at import.
const theCluster = (): Promise<TestRedisCluster> => started;
let raw: Cluster | undefined;
const rawCluster = async (): Promise<Cluster> => (raw ??= new Cluster((await theCluster()).nodes, { lazyConnect: false }));

beforeAll(async () => {
  await theCluster();
}, 60_000);

afterAll(async () => {
  raw?.disconnect();
  await (cluster ?? (await started.catch(() => undefined)))?.stop();
});

engineContract('redis cluster', {
  make: async (limits = {}) => createRedisEngine({ cluster: (await theCluster()).spec, prefix: testPrefix(), ...limits }),
  advance: (ms) => new Promise((r) => setTimeout(r, ms)),
});

/** A node on the test cluster (or on the cluster `spec`). */
async function startClusterNode(prefix: string, spec?: string): Promise<RunningNode> {
  return startRedisNode(prefix, `redis+cluster://${spec ?? (await theCluster()).spec}`);
}

describe('Redis Cluster settings', () => {
  it('reads a cluster from HERALD_REDIS_CLUSTER or a redis+cluster:// URL, and one Redis from any other URL', () => {
    expect(redisTarget({ redisUrl: undefined, redisCluster: '10.0.0.1:7000,10.0.0.2:7000' })).toEqual({ cluster: '10.0.0.1:7000,10.0.0.2:7000' });
    expect(redisTarget({ redisUrl: 'redis+cluster://10.0.0.1:7000,10.0.0.2:7001/' })).toEqual({ cluster: '10.0.0.1:7000,10.0.0.2:7001' });
    expect(redisTarget({ redisUrl: 'redis://10.0.0.1:6379' })).toEqual({ url: 'redis://10.0.0.1:6379' });
    expect(redisTarget({ redisUrl: undefined })).toBeUndefined();
    const fromEnv = parseConfig([], { HERALD_REDIS_CLUSTER: '10.0.0.1:7000,10.0.0.2:7000', HERALD_API_KEY: 'a_key_0123456789abcdef' });
    expect(redisTarget(fromEnv.node)).toEqual({ cluster: '10.0.0.1:7000,10.0.0.2:7000' });
    const fromFlag = parseConfig(['--redis-cluster', '10.0.0.3:7000'], { HERALD_API_KEY: 'a_key_0123456789abcdef' });
    expect(redisTarget(fromFlag.node)).toEqual({ cluster: '10.0.0.3:7000' });
    expect(() => createRedisEngine({ cluster: '10.0.0.1' })).toThrow(/host:port/);
    expect(() => createRedisEngine({ cluster: ' , ' })).toThrow(/at least one/);
  });
});

describe('two gateways on a Redis Cluster', () => {
  it('spreads channels over every master and gives each client every message once, in order, over HTTP, XADD and PUBLISH', async () => {
    const c = await theCluster();
    const prefix = testPrefix();
    const channels = Array.from({ length: 9 }, (_, i) => `room-${i}`);
    const owners = new Set(await Promise.all(channels.map((ch) => c.ownerOf(`${prefix}:{${ch}}:meta`))));
    expect(owners.size).toBe(3);
    const [a, b] = [await startClusterNode(prefix), await startClusterNode(prefix)];
    await eventually(() => ([a, b].filter((n) => n.node.ingest?.leader).length === 1 ? true : undefined), 'exactly one ingest leader');
    const subs = Object.fromEntries(channels.map((ch) => [ch, {}]));
    const clients = [(await TestClient.connect(a.ws, { subs })).client, (await TestClient.connect(b.ws, { subs })).client];
    const r = await rawCluster();
    const perChannel = 4;
    for (let i = 0; i < perChannel; i++) {
      for (const [k, channel] of channels.entries()) {
        const msg = { channel, type: 'm', payload: { i } };
        const path = (i + k) % 4;
        if (path === 0) expect((await api(a.http, 'POST', '/api/publish', msg)).status).toBe(200);
        else if (path === 1) expect((await api(b.http, 'POST', '/api/publish', msg)).status).toBe(200);
        else if (path === 2) await r.xadd(`${prefix}:ingest`, '*', 'msg', JSON.stringify(msg));
        // On a cluster, PUBLISH counts the subscribers of the node it was sent to only.
        else await r.publish(`${prefix}:publish`, JSON.stringify(msg));
      }
    }
    for (const client of clients) {
      for (const channel of channels) {
        const got = await client.waitMessages(channel, perChannel);
        expect(got.map((m) => m.seq)).toEqual([1, 2, 3, 4]);
        expect(new Set(got.map((m) => (m.payload as { i: number }).i)).size).toBe(perChannel);
      }
    }
    await eventually(async () => ((await r.xlen(`${prefix}:ingest`)) === 0 ? true : undefined), 'every stream entry acknowledged');
  });

  it('answers presence, channels, direct messages, idempotency, disconnects and recovery across gateways', async () => {
    const prefix = testPrefix();
    const [a, b] = [await startClusterNode(prefix), await startClusterNode(prefix)];
    const t = await token({ sub: '42' });
    const onA = await TestClient.connect(a.ws, { token: t, subs: { 'lobby-1': {}, 'lobby-2': {}, other: {} } });
    const onB = await TestClient.connect(b.ws, { token: t });
    expect((await api(b.http, 'GET', '/api/online?users=42,43')).body.users).toEqual({
      '42': { online: true, connections: 2 },
      '43': { online: false, connections: 0 },
    });
    const direct = await api(a.http, 'POST', '/api/publish', { client: onB.connected.client, type: 'only-you', payload: {} });
    expect(direct.body).toEqual({ client: onB.connected.client, delivered: true });
    await onB.client.nextWhere((f) => f.type === 'only-you');
    const first = await api(a.http, 'POST', '/api/publish', { channel: 'user:42', type: 'once', payload: {}, id: 'order-7' });
    const again = await api(b.http, 'POST', '/api/publish', { channel: 'user:42', type: 'once', payload: {}, id: 'order-7' });
    expect(first.body.results['user:42']).toMatchObject({ seq: 1, duplicate: false, online: true });
    expect(again.body.results['user:42']).toMatchObject({ seq: 1, duplicate: true });
    await onA.client.waitMessages('user:42', 1);
    // Recovery: a client that was away gets what it missed, from the history on the channel's master.
    const epoch = (onA.connected.subs as Record<string, { epoch: string }>)['lobby-1']?.epoch;
    for (let i = 0; i < 3; i++) expect((await api(b.http, 'POST', '/api/publish', { channel: 'lobby-1', type: 'm', payload: { i } })).status).toBe(200);
    await onA.client.waitMessages('lobby-1', 3);
    const back = await TestClient.connect(b.ws, { subs: { 'lobby-1': { since: 1, epoch } } });
    expect((back.connected.subs as Record<string, unknown>)['lobby-1']).toEqual({ seq: 3, epoch, recovered: true });
    expect((await back.client.waitMessages('lobby-1', 2)).map((m) => m.seq)).toEqual([2, 3]);
    expect((await api(b.http, 'POST', '/api/disconnect', { user: '42' })).status).toBe(200);
    expect((await onA.client.closed()).code).toBe(4509);
    expect((await onB.client.closed()).code).toBe(4509);
    await eventually(async () => ((await api(a.http, 'GET', '/api/online?users=42')).body.users['42'].online === false ? true : undefined), 'user 42 offline');
  });
});

describe('presence on a Redis Cluster', () => {
  it('finds occupied channels by prefix on every master', async () => {
    const c = await theCluster();
    const engine = createRedisEngine({ cluster: c.spec, prefix: testPrefix() });
    onCleanup(() => engine.close());
    await engine.start(new Recorder());
    const channels = Array.from({ length: 9 }, (_, i) => `lobby-${i}`);
    expect(new Set(await Promise.all(channels.map((ch) => c.ownerOf(`${engine.prefix}:{${ch}}:members`)))).size).toBe(3);
    await engine.presence.add({ client: 'c1', user: '1' });
    for (const ch of [...channels, 'other']) await engine.presence.join(ch, { client: 'c1', user: '1' });
    expect((await engine.presence.channels('lobby-', 100)).sort()).toEqual(channels);
    expect(await engine.presence.channels('lobby-', 4)).toHaveLength(4);
  });
});

/**
 * Two gateways, a client on each subscribed to six channels (one of them on `victim`'s slots), two
 * publishers in a loop alternating gateways; `outage` runs in the middle of the stream (kills the master of
 * channel s-0 and brings a master back for it). Then every publish answered 2xx must reach both clients,
 * once, in seq order.
 */
async function exactlyOnceThrough(
  c: TestRedisCluster,
  outage: (victim: number, key: string, during: () => Promise<void>) => Promise<void>,
  someFail = true,
): Promise<void> {
  const prefix = testPrefix();
  const channels = Array.from({ length: 6 }, (_, i) => `s-${i}`);
  const key = `${prefix}:{s-0}:meta`;
  const victim = await c.ownerOf(key);
  const [a, b] = [await startClusterNode(prefix, c.spec), await startClusterNode(prefix, c.spec)];
  const subs = Object.fromEntries(channels.map((ch) => [ch, {}]));
  const clients = [(await TestClient.connect(a.ws, { subs })).client, (await TestClient.connect(b.ws, { subs })).client];
  /** The payload numbers answered 2xx, per channel. */
  const acked = new Map<string, number[]>(channels.map((ch) => [ch, []]));
  const statuses = new Map<number, number>();
  let i = 0;
  const publish = async (): Promise<void> => {
    const n = i++;
    const channel = channels[n % channels.length] as string;
    const gw = n % 2 === 0 ? a : b;
    const res = await api(gw.http, 'POST', '/api/publish', { channel, type: 'm', payload: { n } });
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    if (res.status >= 200 && res.status < 300) acked.get(channel)?.push(n);
  };
  // Two publishers at a time.
  const stream = async (count: number): Promise<void> => {
    const one = async (): Promise<void> => {
      for (let k = 0; k < count / 2; k++) await publish();
    };
    await Promise.all([one(), one()]);
  };
  await stream(40);
  await outage(victim, key, () => stream(20));
  // Once a master is back for s-0, its channels take publishes again, on both gateways.
  for (const gw of [a, b]) {
    await eventually(
      async () => {
        const n = i++;
        const res = await api(gw.http, 'POST', '/api/publish', { channel: 's-0', type: 'm', payload: { n } });
        if (res.status !== 200) return undefined;
        acked.get('s-0')?.push(n);
        return true;
      },
      'publishes to the channel of the master that was killed answered',
      30_000,
    );
  }
  await stream(40);
  // Some publishes to the victim's channels failed while it was down; the others went through.
  if (someFail) expect([...statuses.keys()].some((s) => s >= 500)).toBe(true);
  expect(statuses.get(200) ?? 0).toBeGreaterThan(80);
  for (const client of clients) {
    for (const channel of channels) {
      const want = acked.get(channel) ?? [];
      const payloads = (): number[] => client.messages(channel).map((m: Frame) => (m.payload as { n: number }).n);
      await eventually(() => (want.every((n) => payloads().includes(n)) ? true : undefined), `every acknowledged publish on ${channel}`, 30_000);
      const got = payloads();
      // Exactly once: no payload twice (a 5xx "outcome unknown" publish may have run, and then arrives once too).
      expect(got.length).toBe(new Set(got).size);
      const seqs = client.messages(channel).map((m) => m.seq as number);
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    }
  }
}

describe('a master killed during a stream of publishes', () => {
  it('restarted (its AOF kept): every publish answered 2xx reaches every subscriber exactly once', async () => {
    await exactlyOnceThrough(await theCluster(), async (victim, _key, during) => {
      const c = await theCluster();
      const killed = c.kill(victim);
      await during();
      await killed;
      await during();
      const restarted = c.restart(victim);
      await during();
      await restarted;
    });
  }, 120_000);

  it("a channel's slot migrated to another master meanwhile (ASK, TRYAGAIN, MOVED): every publish answered 2xx reaches every subscriber exactly once", async () => {
    const c = await theCluster();
    await exactlyOnceThrough(
      c,
      async (from, key, during) => {
        const to = c.ports.find((p) => p !== from) as number;
        const migrated = c.migrate(key, to);
        await during();
        await migrated;
        await during();
        expect(await c.ownerOf(key)).toBe(to);
      },
      false,
    );
  }, 120_000);

  describe('with replicas', () => {
    let withReplicas: TestRedisCluster | undefined;
    beforeAll(async () => {
      withReplicas = await startRedisCluster({ masters: 3, replicas: 1 });
    }, 60_000);
    afterAll(async () => {
      await withReplicas?.stop();
    });

    it('its replica promoted: the gateways follow the new master, and every publish answered 2xx reaches every subscriber exactly once', async () => {
      const c = withReplicas as TestRedisCluster;
      await exactlyOnceThrough(c, async (victim, key, during) => {
        const killed = c.kill(victim);
        await during();
        await killed;
        const promoted = c.promoted(key, victim);
        await during();
        await promoted;
        expect(await c.ownerOf(key)).not.toBe(victim);
      });
    }, 120_000);
  });
});

describe('counts with a publish on a Redis Cluster', () => {
  it("answers a user channel's subscribers from the script and the user's connections from their own slot", async () => {
    const c = await theCluster();
    const engine = createRedisEngine({ cluster: c.spec, prefix: testPrefix() });
    onCleanup(() => engine.close());
    await engine.start(new Recorder());
    const a = { client: 'k1', user: '42' };
    const b = { client: 'k2', user: '42' };
    for (const conn of [a, b]) await engine.presence.add(conn);
    await engine.presence.join('user:42', a);
    await engine.presence.join('room', b);
    // The user's key and the channel's keys are on different slots: no CROSSSLOT, both counts right.
    expect(await engine.broker.publish({ channel: 'user:42', type: 't', payloadJson: '{}', counts: true })).toMatchObject({
      seq: 1,
      subscribers: 1,
      online: 2,
    });
    expect(await engine.broker.publish({ channel: 'user:7', type: 't', payloadJson: '{}', counts: true })).toMatchObject({ seq: 1, subscribers: 0, online: 0 });
    const room = await engine.broker.publish({ channel: 'room', type: 't', payloadJson: '{}', counts: true });
    expect(room).toMatchObject({ seq: 1, subscribers: 1 });
    expect(room.online).toBeUndefined();
  });
});

describe('a publish in flight when its master dies', () => {
  it('fails as engine_timeout (outcome unknown) and is never resent', async () => {
    const c = await theCluster();
    const engine = createRedisEngine({ cluster: c.spec, prefix: testPrefix(), commandTimeout: 5000 });
    onCleanup(() => engine.close());
    await engine.start(new Recorder());
    await engine.broker.publish({ channel: 'inflight', type: 't', payloadJson: '{"n":1}' });
    const victim = await c.ownerOf(`${engine.prefix}:{inflight}:meta`);
    // Writes (scripts included) wait on the master: the next publish is sent and not answered.
    await promisify(execFile)('redis-cli', ['-p', String(victim), 'CLIENT', 'PAUSE', '10000', 'WRITE']);
    const inFlight = engine.broker.publish({ channel: 'inflight', type: 't', payloadJson: '{"n":2}' }).then(
      () => undefined,
      (err: unknown) => err,
    );
    // Sent and held by the pause (a client blocked in a script), not still on its way.
    await eventually(async () => {
      const { stdout } = await promisify(execFile)('redis-cli', ['-p', String(victim), 'CLIENT', 'LIST']);
      return stdout.split('\n').some((l) => /\bflags=\w*b/.test(l) && /\bcmd=eval/.test(l)) ? true : undefined;
    }, 'the publish held by the paused master');
    await c.kill(victim);
    expect(await inFlight).toMatchObject({ code: 'engine_timeout' });
    await c.restart(victim);
    const next = await eventually(
      () =>
        engine.broker.publish({ channel: 'inflight', type: 't', payloadJson: '{"n":3}' }).then(
          (o) => o,
          () => undefined,
        ),
      'a publish accepted again',
      30_000,
    );
    // The paused publish never ran and was not sent again once the master was back.
    expect(next.seq).toBe(2);
    expect((await engine.history.read('inflight', { limit: 10 })).messages.map((m) => JSON.parse(m.frame.toString()).payload)).toEqual([{ n: 1 }, { n: 3 }]);
  }, 90_000);
});

describe('the engine without its cluster', () => {
  it("fails the calls of a dead master's slots fast, and works again once it is back", async () => {
    const c = await theCluster();
    const engine = createRedisEngine({ cluster: c.spec, prefix: testPrefix(), commandTimeout: 2000 });
    onCleanup(() => engine.close());
    const rec = new Recorder();
    await engine.start(rec);
    await engine.broker.subscribe('x');
    await engine.broker.publish({ channel: 'x', type: 't', payloadJson: '{}' });
    await rec.until((r) => r.messages.length === 1, 'the first message');
    const victim = await c.ownerOf(`${engine.prefix}:{x}:meta`);
    await c.kill(victim);
    const started = Date.now();
    const failure = await engine.broker.publish({ channel: 'x', type: 't', payloadJson: '{}' }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toMatchObject({ code: expect.stringMatching(/^engine_(unavailable|timeout)$/) });
    expect(Date.now() - started).toBeLessThan(3000);
    // Not ready once the cluster marks the master failed: with cluster-require-full-coverage yes (Redis's default,
    // and this cluster's) the other masters then refuse every command, though they answer PING. Before that (the
    // node timeout, 2 s here) it is degraded: the others still serve their slots.
    const checked = Date.now();
    const first = await engine.check().then(
      (v) => v,
      (err: unknown) => err,
    );
    expect(Date.now() - checked).toBeLessThan(2500);
    if (first instanceof Error) expect(first.message).toContain('cluster_state:fail');
    else expect(first).toEqual({ degraded: expect.stringContaining(`:${victim} did not answer PING`) as string });
    const down = await eventually(
      () =>
        engine.check().then(
          () => undefined,
          (err: unknown) => err as Error & { code?: string },
        ),
      'the check failing once the cluster is down',
      30_000,
    );
    expect(down).toMatchObject({
      code: 'engine_unavailable',
      message: expect.stringContaining(`:${victim} did not answer PING, and the cluster refuses every command`) as string,
    });
    await c.restart(victim);
    await eventually(
      () =>
        engine.broker.publish({ channel: 'x', type: 't', payloadJson: '{}' }).then(
          (o) => o,
          () => undefined,
        ),
      'a publish accepted again',
      30_000,
    );
    await rec.until((r) => r.messages.length >= 2, 'a message after the restart');
    await eventually(
      () =>
        engine.check().then(
          () => true,
          () => undefined,
        ),
      'check() passing again',
      30_000,
    );
  }, 90_000);

  it('fails every call with engine_unavailable and fails check() while no master answers, and recovers when they are back', async () => {
    const c = await theCluster();
    const engine = createRedisEngine({ cluster: c.spec, prefix: testPrefix(), commandTimeout: 2000 });
    onCleanup(() => engine.close());
    const rec = new Recorder();
    await engine.start(rec);
    await engine.broker.subscribe('gone');
    await engine.check();
    await Promise.all(c.ports.map((p) => c.kill(p)));
    const failure = await eventually(
      () =>
        engine.broker.publish({ channel: 'gone', type: 't', payloadJson: '{}' }).then(
          () => undefined,
          (err: unknown) => ((err as { code?: string }).code === 'engine_unavailable' ? err : undefined),
        ),
      'publishes refused as engine_unavailable',
      30_000,
    );
    expect(failure).toMatchObject({ code: 'engine_unavailable' });
    const started = Date.now();
    await expect(engine.presence.online(['u'])).rejects.toMatchObject({ code: 'engine_unavailable' });
    expect(Date.now() - started).toBeLessThan(1000);
    await expect(engine.check()).rejects.toMatchObject({ code: 'engine_unavailable' });
    for (const p of c.ports) await c.restart(p);
    // The shard subscribers come back too (ioredis needs unstickShardedSubscribers for that, see client.ts).
    await eventually(
      () =>
        engine.check().then(
          () => true,
          () => undefined,
        ),
      'check() passing again',
      30_000,
    );
    const after = await eventually(
      () =>
        engine.broker.publish({ channel: 'gone', type: 't', payloadJson: '{}' }).then(
          (o) => o,
          () => undefined,
        ),
      'a publish accepted again',
      30_000,
    );
    await rec.until((r) => r.messages.some((m) => m.seq === after.seq), 'the message after the outage, delivered');
  }, 90_000);

  it('is degraded, not unready, while a master is down in a cluster that does not require full coverage: the others serve their slots', async () => {
    const c = await theCluster();
    const configure = async (value: 'yes' | 'no'): Promise<void> => {
      for (const port of c.ports) {
        const node = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
        await node.connect().then(
          () => node.config('SET', 'cluster-require-full-coverage', value),
          () => undefined,
        );
        node.disconnect();
      }
    };
    await configure('no');
    onCleanup(() => configure('yes'));
    const engine = createRedisEngine({ cluster: c.spec, prefix: testPrefix(), commandTimeout: 2000 });
    onCleanup(() => engine.close());
    await engine.start(new Recorder());
    const victim = await c.ownerOf(`${engine.prefix}:{y}:meta`);
    const other = c.ports.find((p) => p !== victim) as number;
    await c.kill(victim);
    let back = false;
    onCleanup(async () => {
      if (!back) await c.restart(victim);
    });
    // Past the node timeout: the cluster has marked the master failed, and still serves the other slots.
    const observer = new Redis({ port: other, host: '127.0.0.1' });
    onCleanup(() => observer.disconnect());
    await eventually(
      async () =>
        ((await observer.cluster('NODES')) as string).split('\n').some((l) => l.includes(`:${victim}@`) && / fail[ ,]|,fail[ ,]/.test(l)) || undefined,
      'the master marked failed',
      30_000,
    );
    expect(await engine.check()).toEqual({
      degraded: expect.stringContaining(`:${victim} did not answer PING; the channels of its slots fail, the others work`) as string,
    });
    await c.restart(victim);
    back = true;
    await eventually(
      () =>
        engine.check().then(
          (v) => (v === undefined ? true : undefined),
          () => undefined,
        ),
      'ready again',
      30_000,
    );
  }, 90_000);
});
