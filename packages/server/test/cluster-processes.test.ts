/**
 * The Redis engine as operators run it: several `herald` CLI processes (`node packages/server/bin/herald.js`)
 * on one Redis prefix, and one process with `--workers 2`. Covers issue 4's multi-process tests:
 *
 * - `kill -9` of one of three nodes while 10 000 messages are published: SDK clients behind a TCP proxy
 *   that spreads new connections over the live nodes (as a load balancer would) reconnect to another node
 *   with `since` and the app sees every seq exactly once, in order, without a reset; the dead node's
 *   connections leave presence within `presenceTtl`.
 * - `--workers 2`: connections spread over both worker processes, one publish reaches each exactly once,
 *   `/api/online` counts all of them, SIGTERM closes every client with 1012 and exits 0; refused without Redis.
 * - Publishes through every node (and both Redis ingest paths) reach the clients of every node exactly once,
 *   in seq order.
 *
 * Every test uses its own random key prefix and deletes its keys afterwards (SCAN + UNLINK, never FLUSHALL).
 * Waits are on events (process output, frames, closes); presence, which has no event, is polled.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { poll, proxyTo, range, sdkApp, Signal, type AppLog } from '../../client/test/support/harness.js';
import { api, API_KEY, JWT_SECRET, onCleanup, TestClient, token, type Frame } from './helpers.js';
import { nodeOf, REDIS_URL, redisPrefix } from './redis-helpers.js';
import { buildCli, HeraldProcess, startRedisNode } from './support/cli-process.js';
import type { TcpProxy } from './tcp-proxy.js';

/** Generous: a noisy 2-core machine runs three gateways, Redis and the test at once. */
const WAIT = 30_000;
/** Short, so the presence bound is observable within the test: a dead node leaves presence within it. */
const PRESENCE_TTL = 3000;
/** Slack on top of PRESENCE_TTL for timers and HTTP round trips on a loaded machine. */
const PRESENCE_MARGIN = 3000;

// The CLI runs from dist/: build it (a no-op when up to date) so these tests never exercise a stale build.
beforeAll(buildCli, 180_000);

const SECRETS = { HERALD_API_KEY: API_KEY, HERALD_JWT_SECRET: JWT_SECRET };

/** Starts one Redis-backed single-process node (`--workers 1`) with node id `name`; resolves once it listens. */
const startNode = (name: string, prefix: string): Promise<HeraldProcess> =>
  startRedisNode(name, prefix, { env: { ...SECRETS, HERALD_PRESENCE_TTL_MS: String(PRESENCE_TTL) }, timeoutMs: WAIT });

/** The CLI with `--workers 2` on the Redis engine (key prefix `prefix`), named `name`; not waited for. */
const twoWorkers = (name: string, prefix: string, env: Record<string, string> = {}): HeraldProcess =>
  new HeraldProcess(
    ['--port', '0', '--workers', '2', '--allow-anonymous'],
    { ...SECRETS, HERALD_REDIS_URL: REDIS_URL, HERALD_REDIS_PREFIX: prefix, ...env },
    { name, timeoutMs: WAIT },
  );

/** Waits until the machine view of `h` (`/api/stats`) counts two workers. */
const twoWorkersAnswer = (h: HeraldProcess): Promise<true> =>
  poll(
    async () => {
      const st = await api(h.http, 'GET', '/api/stats');
      return st.status === 200 && st.body.workers === 2 ? true : undefined;
    },
    'the machine view to count two workers',
    WAIT,
  );

/** The pids of a process's children (the workers of `--workers`). */
const childrenOf = (h: HeraldProcess): number[] =>
  execFileSync('ps', ['-o', 'pid=', '--ppid', String(h.proc.pid)], { encoding: 'utf8' })
    .split('\n')
    .map((l) => Number(l.trim()))
    .filter((n) => n > 0);

/** Whether `seqs` is exactly 1..n (a cheap check before the full `toEqual`). */
const isRange = (seqs: readonly number[], n: number): boolean => seqs.length === n && seqs.every((s, i) => s === i + 1);

/** `/api/online` for one user, asked of `node`. */
async function online(node: HeraldProcess, user: string): Promise<{ online: boolean; connections: number }> {
  const r = await api(node.http, 'GET', `/api/online?users=${encodeURIComponent(user)}`);
  if (r.status !== 200) throw new Error(`online: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.users[user];
}

// ---- the tests -------------------------------------------------------------------------------------

describe('Redis engine, several gateway processes', () => {
  it('kill -9 of one of three nodes while 10 000 messages are published: every app sees 1..10000 exactly once, in order; presence drops the dead node in time', async () => {
    const started = Date.now();
    const { prefix, redis } = redisPrefix('cluster-proc');
    const nodes = await Promise.all(['node-a', 'node-b', 'node-c'].map((n) => startNode(n, prefix)));
    const [nodeA, doomed, nodeC] = nodes as [HeraldProcess, HeraldProcess, HeraldProcess];
    const proxy = await proxyTo(nodeA.port);
    proxy.setTargets(nodes.map((n) => n.port));

    // A client of user "ghost" straight on the doomed node (no proxy, no reconnect), seen from another node.
    const ghost = await TestClient.connect(doomed.ws, { token: await token({ sub: 'ghost' }) });
    expect(ghost.connected.user).toBe('ghost');
    expect(await online(nodeA, 'ghost')).toEqual({ online: true, connections: 1 });

    const channel = 'ticks';
    const signal = new Signal();
    const apps = range(1, 6).map((i) => sdkApp(`ws://127.0.0.1:${proxy.port}/ws`, channel, { pingInterval: 2000 }, { name: `app${i}`, signal }));
    await signal.until(
      () => apps.every((a) => a.subscribed >= 1),
      'every app to be subscribed',
      WAIT,
      () => apps.map((a) => `${a.name}:${a.client.state}/${a.subscribed}`).join(' '),
    );
    // Where each app is: the round-robin proxy spread them over the three nodes.
    const placement = new Map<AppLog, string | null>();
    for (const a of apps) placement.set(a, await nodeOf(redis, prefix, a.client.clientId as string));
    const onDoomed = apps.filter((a) => placement.get(a) === doomed.name);
    const elsewhere = apps.filter((a) => placement.get(a) !== doomed.name);
    expect(new Set(placement.values())).toEqual(new Set(['node-a', 'node-b', 'node-c']));
    expect(onDoomed.length).toBeGreaterThanOrEqual(1);

    const TOTAL = 10_000;
    const KILL_AT = 3000;
    const WINDOW = 400; // publishers stay at most this far ahead of the slowest app (history keeps 1000)
    let next = 1;
    let published = 0;
    let duplicates = 0;
    let retried = 0;
    let rr = 0;
    let stopped = false;
    const assigned: number[] = [];
    onCleanup(() => {
      stopped = true;
      signal.notify();
    });
    const slowest = (): number => Math.min(...apps.map((a) => a.seqs.length));
    const progress = (): string =>
      `published ${published}, slowest app ${slowest()}, ` +
      apps.map((a) => `${a.name}@${placement.get(a)}: ${a.seqs.length} ${a.client.state} connects ${a.connects}`).join(', ') +
      `; proxy accepted ${proxy.accepted} skipped ${proxy.skipped} failures ${proxy.upstreamFailures}`;

    /** Publishes message `i` through a live node (round-robin); only a request to the killed node may fail, then it is retried elsewhere. */
    const publishOne = async (i: number): Promise<void> => {
      for (let attempt = 0; ; attempt++) {
        const live = nodes.filter((n) => n.alive);
        const node = live[rr++ % live.length] as HeraldProcess;
        try {
          // The id makes a retry safe: a publish the dead node ran just before dying is not published twice.
          const r = await api(node.http, 'POST', '/api/publish', { channel, type: 'tick', payload: { i }, id: `tick-${i}` });
          if (r.status !== 200) throw new Error(`publish ${i} through ${node.name}: ${r.status} ${JSON.stringify(r.body)}`);
          const result = r.body.results[channel] as { seq: number; duplicate: boolean };
          if (result.duplicate) duplicates += 1;
          assigned.push(result.seq);
          return;
        } catch (err) {
          if (node !== doomed || !doomed.killed || attempt >= 3) throw err;
          retried += 1;
        }
      }
    };
    const worker = async (): Promise<void> => {
      for (;;) {
        await signal.until(() => stopped || next > TOTAL || next - slowest() <= WINDOW, 'room to publish', 60_000, progress);
        if (stopped || next > TOTAL) return;
        const i = next++;
        await publishOne(i);
        published += 1;
        signal.notify();
      }
    };
    const workers = Promise.all([worker(), worker(), worker(), worker()]);
    workers.catch(() => undefined); // awaited below; this only keeps an early failure from going unhandled

    // kill -9 in the middle of the stream.
    await signal.until(() => published >= KILL_AT, `${KILL_AT} publishes`, 60_000, progress);
    const doomedExit = doomed.exited();
    const ghostClosed = ghost.client.closed(WAIT);
    const killedAt = Date.now();
    expect(doomed.kill9()).toBe(true);
    expect((await doomedExit).signal).toBe('SIGKILL');
    expect((await ghostClosed).code).toBe(1006);

    // Presence, asked of a live node, drops the dead node's connection within presenceTtl.
    const goneAfter = await poll(
      async () => ((await online(nodeA, 'ghost')).online ? undefined : Date.now() - killedAt),
      'ghost to go offline',
      PRESENCE_TTL + 20_000,
    );
    expect(goneAfter).toBeLessThanOrEqual(PRESENCE_TTL + PRESENCE_MARGIN);
    expect(await online(nodeC, 'ghost')).toEqual({ online: false, connections: 0 });
    // Channel presence too: the dead node's members stop counting; the apps that moved count once, elsewhere.
    const membersAfter = await poll(
      async () => {
        const r = await api(nodeC.http, 'GET', `/api/channels/${channel}`);
        return r.status === 200 && r.body.subscribers === apps.length ? Date.now() - killedAt : undefined;
      },
      `${apps.length} subscribers of ${channel}`,
      PRESENCE_TTL + 20_000,
    );
    expect(membersAfter).toBeLessThanOrEqual(PRESENCE_TTL + PRESENCE_MARGIN);

    await workers;
    await signal.until(() => apps.every((a) => a.seqs.length >= TOTAL), `${TOTAL} messages in every app`, 60_000, progress);
    const elapsed = Date.now() - started;

    // Every publish got its own seq: 1..TOTAL, none lost, none doubled by the retries.
    expect([...assigned].sort((a, b) => a - b)).toEqual(range(1, TOTAL));
    for (const a of apps) {
      if (!isRange(a.seqs, TOTAL)) expect(a.seqs, a.name).toEqual(range(1, TOTAL));
      expect(a.resets, a.name).toEqual([]);
      expect(a.errors, a.name).toEqual([]);
      expect(a.client.getSubscription(channel)?.position?.seq, a.name).toBe(TOTAL);
    }
    // The apps of the dead node came back through the proxy on a live node and resumed with `since`.
    for (const a of onDoomed) {
      expect(a.connects, a.name).toBe(2);
      expect(a.states.filter((s) => s.from === 'connected').map((s) => s.code)).toEqual([1006]);
      expect(a.recoveries, a.name).toHaveLength(1);
      expect(['node-a', 'node-c']).toContain(await nodeOf(redis, prefix, a.client.clientId as string));
    }
    expect(proxy.accepted).toBeGreaterThanOrEqual(apps.length + onDoomed.length);
    // The others never noticed.
    for (const a of elsewhere) {
      expect(a.connects, a.name).toBe(1);
      expect(a.recoveries, a.name).toEqual([]);
    }
    console.info(
      `kill -9 test: ${TOTAL} messages in ${elapsed} ms; ghost offline ${goneAfter} ms and channel members right ${membersAfter} ms after the kill (presenceTtl ${PRESENCE_TTL}); ` +
        `${onDoomed.length} apps moved, recovered ${onDoomed.map((a) => a.recoveries.map((r) => r.seq - r.since).join('+')).join(', ')} messages; ` +
        `${retried} publishes retried, ${duplicates} answered as duplicates; proxy skipped a dead target ${proxy.skipped} times`,
    );
  }, 120_000);

  it('publishes through every node and through both Redis ingest paths reach the clients of every node exactly once, in seq order', async () => {
    const { prefix, redis } = redisPrefix('cluster-proc');
    const nodes = await Promise.all(['node-a', 'node-b', 'node-c'].map((n) => startNode(n, prefix)));
    const channel = 'orders';

    // Two clients on each node, subscribed in the connect frame.
    const clients: Array<{ node: HeraldProcess; client: TestClient }> = [];
    for (const node of nodes) {
      for (let k = 0; k < 2; k++) {
        const { client, connected } = await TestClient.connect(node.ws, { subs: { [channel]: {} } });
        expect(connected['subs']).toMatchObject({ [channel]: { seq: 0 } });
        expect(await nodeOf(redis, prefix, connected['client'] as string)).toBe(node.name);
        clients.push({ node, client });
      }
    }

    // The PUBLISH ingest is taken by one node, the leader: wait until one is subscribed.
    await poll(async () => (((await redis.pubsub('NUMSUB', `${prefix}:publish`)) as [string, number])[1] === 1 ? true : undefined), 'an ingest leader', WAIT);

    const PER_NODE = 100;
    const INGEST = 50;
    const key = (p: Record<string, unknown>): string => `${String(p['src'])}:${String(p['i'])}`;
    const viaHttp = nodes.map(async (node) => {
      for (let i = 1; i <= PER_NODE; i++) {
        const r = await api(node.http, 'POST', '/api/publish', { channel, type: 'order', payload: { src: node.name, i } });
        expect(r.status, JSON.stringify(r.body)).toBe(200);
        expect(r.body.results[channel].subscribers).toBe(clients.length);
      }
    });
    const viaPublish = (async () => {
      for (let i = 1; i <= INGEST; i++) {
        const taken = await redis.publish(`${prefix}:publish`, JSON.stringify({ channel, type: 'order', payload: { src: 'pubsub', i } }));
        expect(taken).toBe(1); // exactly one gateway took it
      }
    })();
    const viaStream = (async () => {
      for (let i = 1; i <= INGEST; i++) {
        await redis.xadd(`${prefix}:ingest`, '*', 'msg', JSON.stringify({ channel, type: 'order', payload: { src: 'stream', i } }));
      }
    })();
    await Promise.all([...viaHttp, viaPublish, viaStream]);

    const total = nodes.length * PER_NODE + 2 * INGEST;
    for (const { client } of clients) await client.waitMessages(channel, total, WAIT);
    // A last message after everything: whatever was still on its way (a duplicate) would come before it.
    const last = await api(nodes[0]!.http, 'POST', '/api/publish', { channel, type: 'order', payload: { src: 'last', i: 1 } });
    expect(last.body.results[channel].seq).toBe(total + 1);
    for (const { client } of clients) await client.waitMessages(channel, total + 1, WAIT);

    const reference = clients[0]!.client.messages(channel);
    expect(reference.map((f) => f.seq)).toEqual(range(1, total + 1));
    // Each message once: every (source, i) exactly once.
    const keys = reference.map((f) => key(f['payload'] as Record<string, unknown>));
    expect(new Set(keys).size).toBe(total + 1);
    for (const src of ['node-a', 'node-b', 'node-c']) for (let i = 1; i <= PER_NODE; i++) expect(keys).toContain(`${src}:${i}`);
    for (const src of ['pubsub', 'stream']) for (let i = 1; i <= INGEST; i++) expect(keys).toContain(`${src}:${i}`);
    // Every client, whichever node it is on, got the same frames: the same seq for the same message.
    for (const { node, client } of clients) {
      const got: Frame[] = client.messages(channel);
      expect(got, node.name).toEqual(reference);
      expect(
        client.frames.filter((f) => f.type === 'error'),
        node.name,
      ).toEqual([]);
    }
    // The ingested stream entries were acknowledged and deleted; nothing went to the dead-letter stream.
    expect(await redis.xlen(`${prefix}:ingest`)).toBe(0);
    expect(await redis.exists(`${prefix}:ingest:dead`)).toBe(0);
  }, 90_000);

  it('--workers 2: connections spread over both worker processes, one publish reaches each once, /api/online counts all; SIGTERM closes all with 1012 and exits 0', async () => {
    const { prefix, redis } = redisPrefix('cluster-proc');
    const h = twoWorkers('workers', prefix, { HERALD_SHUTDOWN_TIMEOUT_MS: '5000' });
    await h.listening();
    expect(h.logs().find((l) => l.msg === 'gateway listening')?.['workers']).toBe(2);
    // A worker's lines say which worker wrote them (the `worker` label of its metrics); the primary's do not.
    expect(h.logs().find((l) => l.msg === 'gateway listening')?.['worker']).toBeUndefined();

    const channel = 'fan';
    const USERS = 10;
    const N = 20;
    const conns: Array<{ client: TestClient; id: string; user: string }> = [];
    for (let i = 0; i < N; i++) {
      const user = `crowd-${i % USERS}`;
      const { client, connected } = await TestClient.connect(h.ws, { token: await token({ sub: user }), subs: { [channel]: {} } });
      expect(connected.user).toBe(user);
      conns.push({ client, id: connected['client'] as string, user });
    }
    // Both worker processes took connections: two distinct node ids in presence.
    const nodeIds = await Promise.all(conns.map((c) => nodeOf(redis, prefix, c.id)));
    expect(nodeIds.every((n) => typeof n === 'string')).toBe(true);
    const perNode = new Map<string, number>();
    for (const n of nodeIds) perNode.set(n as string, (perNode.get(n as string) ?? 0) + 1);
    expect(perNode.size, JSON.stringify([...perNode])).toBe(2);

    // Asked of either worker, /api/online counts every connection of the cluster.
    const users = range(0, USERS - 1).map((i) => `crowd-${i}`);
    for (let round = 0; round < 4; round++) {
      const r = await api(h.http, 'GET', `/api/online?users=${users.join(',')}`);
      expect(r.status).toBe(200);
      for (const u of users) expect(r.body.users[u], u).toEqual({ online: true, connections: N / USERS });
    }

    // Published once (through whichever worker takes the request): every client gets it exactly once.
    for (let i = 1; i <= 2; i++) {
      const r = await api(h.http, 'POST', '/api/publish', { channel, type: 'note', payload: { i } });
      expect(r.status).toBe(200);
      expect(r.body.results[channel]).toMatchObject({ seq: i, subscribers: N });
    }
    for (const { client } of conns) {
      const got = await client.waitMessages(channel, 2, WAIT);
      expect(got).toEqual([1, 2].map((i) => ({ type: 'note', channel, payload: { i }, seq: i })));
    }

    // A direct message reaches a connection whichever worker takes the request (round-robin: both do).
    for (const { client, id } of conns.slice(0, 4)) {
      for (let k = 1; k <= 2; k++) {
        const r = await api(h.http, 'POST', '/api/publish', { client: id, type: 'dm', payload: { k } });
        expect(r.status, JSON.stringify(r.body)).toBe(200);
      }
      const dms = await client.waitMessages(`client:${id}`, 2, WAIT);
      expect(dms.map((f) => f['payload'])).toEqual([{ k: 1 }, { k: 2 }]);
    }

    // One /metrics and one /api/stats for the machine, whichever worker answers (asked several times: both do).
    const published = 2 + 4 * 2;
    const perWorker = [...perNode.values()].sort((a, b) => a - b);
    for (let round = 0; round < 4; round++) {
      const m = await api(h.http, 'GET', '/metrics');
      expect(m.status).toBe(200);
      const text = m.body as string;
      const series = (name: string): Array<{ labels: string; value: number }> =>
        text
          .split('\n')
          .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
          .map((l) => ({ labels: l.slice(name.length, l.lastIndexOf(' ')), value: Number(l.slice(l.lastIndexOf(' ') + 1)) }));
      const conn = series('herald_connections');
      expect(conn.length, text).toBe(2);
      expect(conn.every((c) => /worker="\d+"/.test(c.labels))).toBe(true);
      expect(conn.map((c) => c.value).sort((a, b) => a - b)).toEqual(perWorker);
      expect(conn.reduce((a, c) => a + c.value, 0)).toBe(N);
      expect(series('herald_event_loop_lag_seconds')).toHaveLength(2);
      // Each process's own series, one per worker: a leak shows in the worker that has it, not in a sum.
      const rss = series('process_resident_memory_bytes');
      const workerOf = (labels: string): string => /worker="(\d+)"/.exec(labels)?.[1] ?? 'none';
      expect(rss).toHaveLength(2);
      expect(new Set(rss.map((r) => workerOf(r.labels)))).toEqual(new Set(conn.map((c) => workerOf(c.labels))));
      expect(rss.every((r) => r.value > 10_000_000)).toBe(true);
      expect(series('nodejs_heap_size_used_bytes')).toHaveLength(2);
      // Counters are summed into one series per label set, without a worker label.
      expect(series('herald_messages_published_total')).toEqual([{ labels: expect.not.stringContaining('worker') as string, value: published }]);
      expect(series('herald_connections_opened_total').map((c) => c.value)).toEqual([N]);
      expect(series('herald_info')).toHaveLength(1);
      const st = await api(h.http, 'GET', '/api/stats');
      expect(st.status).toBe(200);
      expect(st.body).toMatchObject({ workers: 2, connections: N, subscriptions: 2 * N, published, connectionsOpened: N });
      expect(st.body.topChannels[0]).toEqual({ channel, subscribers: N });
    }

    const closes = conns.map((c) => c.client.closed(WAIT));
    const exit = h.exited();
    expect(h.proc.kill('SIGTERM')).toBe(true);
    expect((await Promise.all(closes)).map((c) => c.code)).toEqual(conns.map(() => 1012));
    expect(await exit).toEqual({ code: 0, signal: null });
    // Each worker's own lines name it.
    expect(
      new Set(
        h
          .logs()
          .filter((l) => l.msg === 'gateway stopped')
          .map((l) => typeof l['worker']),
      ),
    ).toEqual(new Set(['number']));
    expect(
      new Set(
        h
          .logs()
          .filter((l) => l.msg === 'gateway stopped')
          .map((l) => l['worker']),
      ).size,
    ).toBe(2);
    // A graceful stop leaves presence at once: no connection of any user, no client key left.
    for (const u of users) expect(await redis.zcard(`${prefix}:user:{${u}}`), u).toBe(0);
    for (const c of conns) expect(await nodeOf(redis, prefix, c.id)).toBeNull();
  }, 60_000);

  it('--workers 2, the primary killed with kill -9: the workers do not run orphaned, and stop gracefully (1012, presence left at once)', async () => {
    // cli.ts: "The primary is gone (killed): stop too rather than run orphaned", with node.close(): a
    // graceful stop, which closes clients with 1012 and removes the node's connections from presence.
    const { prefix, redis } = redisPrefix('cluster-proc');
    const h = twoWorkers('workers', prefix, { HERALD_SHUTDOWN_TIMEOUT_MS: '5000' });
    await h.listening();
    const workerPids = execFileSync('ps', ['-o', 'pid=', '--ppid', String(h.proc.pid)], { encoding: 'utf8' })
      .split('\n')
      .map((l) => Number(l.trim()))
      .filter((n) => n > 0);
    expect(workerPids).toHaveLength(2);
    const running = (pid: number): boolean => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    // They are not this process's children: make sure none outlives the test, whatever happens.
    onCleanup(() => {
      for (const pid of workerPids) if (running(pid)) process.kill(pid, 'SIGKILL');
    });

    const conns: Array<{ client: TestClient; id: string }> = [];
    for (let i = 0; i < 6; i++) {
      const { client, connected } = await TestClient.connect(h.ws, { token: await token({ sub: 'orphan-test' }), subs: { news: {} } });
      conns.push({ client, id: connected['client'] as string });
    }
    expect(new Set(await Promise.all(conns.map((c) => nodeOf(redis, prefix, c.id)))).size).toBe(2);
    expect(await online(h, 'orphan-test')).toEqual({ online: true, connections: 6 });

    const closes = Promise.all(conns.map((c) => c.client.closed(WAIT)));
    expect(h.kill9()).toBe(true);
    expect((await h.exited()).signal).toBe('SIGKILL');
    const codes = (await closes).map((c) => c.code);
    // Not orphaned: both workers exit (no event for a process that is not a child: polled).
    await poll(async () => (workerPids.some(running) ? undefined : true), 'both workers to exit', WAIT);
    // Graceful: every client told 1012 (not a dropped TCP connection, 1006), and presence left at once.
    const left = await redis.zcard(`${prefix}:user:{orphan-test}`);
    const clientKeys = (await Promise.all(conns.map((c) => nodeOf(redis, prefix, c.id)))).filter((n) => n !== null).length;
    expect({ codes, left, clientKeys }).toEqual({ codes: conns.map(() => 1012), left: 0, clientKeys: 0 });
  }, 60_000);

  it('--workers 2, a worker killed with kill -9: the primary forks a new one, and the machine answers for two workers again', async () => {
    const { prefix } = redisPrefix('cluster-proc');
    const h = twoWorkers('workers-restart', prefix, { HERALD_SHUTDOWN_TIMEOUT_MS: '5000' });
    await h.listening();
    const children = (): number[] => childrenOf(h);
    const [doomed, survivor] = children();
    expect(doomed).toBeDefined();
    process.kill(doomed as number, 'SIGKILL');
    await poll(
      async () => {
        const now = children();
        return now.length === 2 && !now.includes(doomed as number) && now.includes(survivor as number) ? true : undefined;
      },
      'a new worker beside the survivor',
      WAIT,
    );
    // The new worker listens and answers for its share: the machine view counts two workers again.
    await twoWorkersAnswer(h);
    expect(h.logs().some((l) => l.msg === 'worker exited; forking a new one' && l['signal'] === 'SIGKILL')).toBe(true);
    const { client } = await TestClient.connect(h.ws, { subs: { news: {} } });
    client.terminate();
    expect(h.proc.kill('SIGTERM')).toBe(true);
    expect((await h.exited()).code).toBe(0);
  }, 60_000);

  it('--workers 2: a new worker that fails to start (its configuration file broken since) is forked again until one starts', async () => {
    const { prefix } = redisPrefix('cluster-proc');
    const dir = mkdtempSync(join(tmpdir(), 'herald-workers-'));
    onCleanup(() => rmSync(dir, { recursive: true, force: true }));
    const config = join(dir, 'herald.json');
    writeFileSync(config, JSON.stringify({ historySize: 100 }));
    const h = new HeraldProcess(
      ['--port', '0', '--workers', '2', '--allow-anonymous', '--config', config],
      { ...SECRETS, HERALD_REDIS_URL: REDIS_URL, HERALD_REDIS_PREFIX: prefix, HERALD_SHUTDOWN_TIMEOUT_MS: '5000' },
      { name: 'workers-refork', timeoutMs: WAIT },
    );
    await h.listening();
    const children = (): number[] => childrenOf(h);
    // An operator's typo, saved while the gateway runs: the next worker to start refuses it (exit 2).
    writeFileSync(config, JSON.stringify({ histroySize: 100 }));
    process.kill(children()[0] as number, 'SIGKILL');
    await h.waitFor(() => h.logs().find((l) => l.msg === 'new worker exited before it listened; forking another' && l['code'] === 2), 'a new worker to fail');
    writeFileSync(config, JSON.stringify({ historySize: 100 }));
    await twoWorkersAnswer(h);
    expect(h.logs().filter((l) => l.msg === 'worker forked anew').length).toBeGreaterThanOrEqual(2);
    expect(h.proc.kill('SIGTERM')).toBe(true);
    expect((await h.exited()).code).toBe(0);
  }, 60_000);

  it('HERALD_NODE_ID with --workers 2 (ids must be unique per process): either refused with exit 2 naming HERALD_NODE_ID, or direct messages reach connections on either worker', async () => {
    const { prefix } = redisPrefix('cluster-proc');
    const h = twoWorkers('workers-node-id', prefix, { HERALD_NODE_ID: 'gw-1' });
    const started = await Promise.race([h.listening().then(() => true), h.exited().then(() => false)]);
    if (!started) {
      expect(h.exitCode, h.stderr).toBe(2);
      expect(h.stderr).toMatch(/HERALD_NODE_ID|--node-id/);
      return;
    }
    // Started: each worker must still be addressable. The primary hands HTTP requests round-robin to the
    // workers, so a few direct publishes per connection go through both of them.
    const statuses: string[] = [];
    for (let i = 0; i < 4; i++) {
      const { client, connected } = await TestClient.connect(h.ws);
      const id = connected['client'] as string;
      for (let k = 0; k < 3; k++) {
        const r = await api(h.http, 'POST', '/api/publish', { client: id, type: 'dm', payload: { k } });
        statuses.push(`${id}#${k}: ${r.status}${r.status === 200 ? '' : ` ${String(r.body?.error?.code)}`}`);
      }
      client.terminate();
    }
    expect(statuses.filter((s) => !s.endsWith(': 200'))).toEqual([]);
  }, 60_000);

  it('refuses --workers 2 (and HERALD_WORKERS=2) without HERALD_REDIS_URL with exit code 2, naming HERALD_WORKERS', async () => {
    for (const [args, env] of [
      [['--port', '0', '--workers', '2'], SECRETS],
      [['--port', '0'], { ...SECRETS, HERALD_WORKERS: '2' }],
    ] as const) {
      const h = new HeraldProcess([...args], { ...env }, { name: 'no-redis', timeoutMs: WAIT });
      const { code } = await h.exited();
      expect(code, h.stderr).toBe(2);
      expect(h.stderr).toContain('HERALD_WORKERS');
      expect(h.stdout).not.toContain('gateway listening');
    }
  }, 60_000);
});

// ---- the load-balancing proxy the tests above rely on --------------------------------------------

/** A TCP server counting the connections it got; `stop()` closes it and its connections (a dead node). */
async function countingServer(): Promise<{ port: number; conns: Socket[]; stop(): Promise<void> }> {
  const conns: Socket[] = [];
  const server: Server = createServer((s) => {
    s.on('error', () => undefined);
    conns.push(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const c of conns) c.destroy();
    await closed;
  };
  onCleanup(stop);
  return { port, conns, stop };
}

/** Connects through the proxy; resolves with the socket once it is forwarded, or null when it was ended instead. */
async function dialThrough(proxy: TcpProxy): Promise<Socket | null> {
  const before = proxy.accepted;
  const socket = createConnection({ port: proxy.port, host: '127.0.0.1' });
  socket.on('error', () => undefined);
  onCleanup(() => socket.destroy());
  const closed = new Promise<null>((resolve) => socket.once('close', () => resolve(null)));
  return Promise.race([proxy.waitAccepted(before + 1, WAIT).then(() => socket), closed]);
}

describe('the machine view of --workers (one /metrics, one /api/stats)', () => {
  /** Runs support/machine-view-child.mjs: what a worker asking for the machine's /metrics gets back. */
  const machineMetrics = (scenario: 'starting' | 'exits'): Promise<string> =>
    new Promise((resolve, reject) => {
      execFile(process.execPath, [fileURLToPath(new URL('./support/machine-view-child.mjs', import.meta.url)), scenario], { timeout: WAIT }, (err, stdout) => {
        if (err) reject(err);
        else resolve((JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { result: string }).result);
      });
    });

  // The primary waits for workers up to a timeout (2 s in production, 10 minutes here): asking a worker that cannot
  // answer made every scrape during a worker's start, or around its death, wait for it.
  it('does not wait for a worker that is still starting: the machine answers with the workers that run', async () => {
    const metrics = await machineMetrics('starting');
    expect(metrics).not.toBe('LOCAL');
    expect(metrics).toMatch(/^probe_total\{node="n1"\} 1$/m);
  });

  it('does not wait for a worker that exits before it answers', async () => {
    const metrics = await machineMetrics('exits');
    expect(metrics).not.toBe('LOCAL');
    expect(metrics).toMatch(/^probe_total\{node="n1"\} 1$/m);
  });
});

describe('TcpProxy with several targets', () => {
  it('spreads new connections round-robin, skips a target that refuses, and ends the client only when every target refuses', async () => {
    const a = await countingServer();
    const b = await countingServer();
    const c = await countingServer();
    const proxy = await proxyTo(a.port);
    proxy.setTargets([a.port, b.port, c.port]);
    expect(proxy.targetPorts).toEqual([a.port, b.port, c.port]);

    for (let i = 0; i < 6; i++) expect(await dialThrough(proxy)).not.toBeNull();
    expect([proxy.activeTo(a.port), proxy.activeTo(b.port), proxy.activeTo(c.port)]).toEqual([2, 2, 2]);

    // b dies: its pairs end with it, and new connections skip it (it refuses) for the next target.
    await b.stop();
    await poll(async () => (proxy.activeTo(b.port) === 0 ? true : undefined), "the dead target's pairs to end", WAIT);
    for (let i = 0; i < 6; i++) expect(await dialThrough(proxy)).not.toBeNull();
    expect(proxy.activeTo(a.port) + proxy.activeTo(c.port)).toBe(10);
    expect(proxy.activeTo(a.port)).toBeGreaterThanOrEqual(4);
    expect(proxy.activeTo(c.port)).toBeGreaterThanOrEqual(4);
    expect(proxy.skipped).toBeGreaterThanOrEqual(2);
    expect(proxy.upstreamFailures).toBe(0);

    // Taken out of the rotation (a failing health check): everything goes to what is left.
    expect(proxy.removeTarget(a.port)).toBe(true);
    expect(proxy.targetPorts).toEqual([b.port, c.port]);
    const cBefore = proxy.activeTo(c.port);
    for (let i = 0; i < 2; i++) expect(await dialThrough(proxy)).not.toBeNull();
    expect(proxy.activeTo(c.port)).toBe(cBefore + 2);

    // Every target down: the client's connection is ended, as with a refused dial.
    await c.stop();
    expect(await dialThrough(proxy)).toBeNull();
    expect(proxy.upstreamFailures).toBe(1);
  }, 60_000);
});
