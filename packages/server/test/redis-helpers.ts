/**
 * Helpers for tests against a real Redis: a key prefix of their own per run (so runs never see each
 * other's state and cleanup touches nothing else; never FLUSHALL on a shared instance), raw clients, a
 * recorder of what an engine hands to its node, and polling that waits for a condition, not for time.
 */
import { randomBytes } from 'node:crypto';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import type { DisconnectTarget, EngineHandlers, EngineMessage } from '../src/engine/types.js';
import type { InboxMessage } from '../src/engine/inbox.js';
import type { NodeSettings } from '../src/cli/config.js';
import { startNode, type HeraldNode } from '../src/gateway/node.js';
import { createRedisEngine, type RedisEngine, type RedisEngineOptions } from '../src/engine/redis/engine.js';
import type { GatewayOptions } from '../src/gateway/options.js';
import { silentLogger } from '../src/util/logger.js';
import { API_KEY, JWT_SECRET } from './helpers.js';
import { onCleanup } from './support/cleanup.js';
import { TcpProxy } from './tcp-proxy.js';

/** The Redis the tests use. */
export const REDIS_URL = process.env['HERALD_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';

/** Every key of this run starts with it. */
export const RUN_PREFIX = `herald-test-${randomBytes(6).toString('hex')}`;

let prefixes = 0;

/** A fresh prefix inside this run's: one per engine cluster under test. */
export function testPrefix(): string {
  prefixes += 1;
  return `${RUN_PREFIX}-${prefixes}`;
}

const raws: Redis[] = [];

/** A plain client, as another language's SDK would use; quit by `closeRaw`. */
export function rawClient(): Redis {
  const r = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  r.on('error', () => undefined);
  raws.push(r);
  return r;
}

/** Deletes every key matching `pattern` (SCAN, never KEYS or FLUSH*), through `redis` or a client of its own. */
export async function deleteKeys(pattern: string, redis?: Redis): Promise<void> {
  const r = redis ?? new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  if (redis === undefined) r.on('error', () => undefined);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await r.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    if (redis === undefined) r.disconnect();
  }
}

/** Deletes every key of this run, then quits the raw clients. */
export async function cleanupRun(): Promise<void> {
  try {
    await deleteKeys(`${RUN_PREFIX}*`);
  } finally {
    for (const c of raws.splice(0)) c.disconnect();
  }
}

/**
 * A fresh key prefix `herald-<label>-<random>` for one test, and a client: the prefix's keys are deleted
 * after the test (after whatever was registered for cleanup before, such as the processes using them).
 */
export function redisPrefix(label: string): { prefix: string; redis: Redis } {
  const prefix = `herald-${label}-${randomBytes(6).toString('hex')}`;
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  onCleanup(async () => {
    try {
      await deleteKeys(`${prefix}*`, redis);
    } finally {
      redis.disconnect();
    }
  });
  return { prefix, redis };
}

/** The node id a connection is on, from the engine's presence key `<prefix>:client:{<client>}` (docs/redis.md). */
export const nodeOf = (redis: Redis, prefix: string, client: string): Promise<string | null> => redis.get(`${prefix}:client:{${client}}`);

/** Polls `pred` until it holds (every 20 ms, up to `timeout`): for effects that have no event to wait on. */
export async function waitFor(pred: () => boolean | Promise<boolean>, what: string, timeout = 10_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Records what an engine hands to its node; `local` is the set of connections this node "has". */
export class Recorder implements EngineHandlers {
  readonly messages: EngineMessage[] = [];
  readonly directs: Array<{ client: string; frame: Buffer }> = [];
  readonly disconnects: DisconnectTarget[] = [];
  readonly local = new Set<string>();

  message(msg: EngineMessage): void {
    this.messages.push(msg);
  }

  direct(client: string, msg: EngineMessage): boolean {
    if (!this.local.has(client)) return false;
    this.directs.push({ client, frame: msg.frame });
    return true;
  }

  disconnect(target: DisconnectTarget): number {
    this.disconnects.push(target);
    return target.client !== undefined && this.local.has(target.client) ? 1 : 0;
  }

  readonly inboxes: InboxMessage[] = [];
  inbox(msg: InboxMessage): void {
    this.inboxes.push(msg);
  }

  /** `[channel, seq]` of every message received. */
  get received(): Array<[string, number]> {
    return this.messages.map((m) => [m.channel, m.seq]);
  }

  until(pred: (r: this) => boolean, what: string): Promise<void> {
    return waitFor(() => pred(this), what);
  }
}

/**
 * A TCP proxy in front of the test Redis: `stop()` cuts every connection and refuses new ones, as a Redis
 * that went down would; `start()` listens again on the same port, as a Redis that came back (with its
 * data: wipe keys by hand to simulate a restart without persistence).
 */
export class RedisProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  /** The sockets from the engine's side (the ones `pause` stops reading). */
  private readonly clients = new Set<Socket>();
  private paused = false;
  private port = 0;

  /** The Redis URL through the proxy (credentials and database of REDIS_URL kept). */
  get url(): string {
    const u = new URL(REDIS_URL);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.toString();
  }

  async start(): Promise<void> {
    const target = new URL(REDIS_URL);
    const server = createServer((client) => {
      const upstream = createConnection({ host: target.hostname, port: Number(target.port || 6379) });
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => {
          this.sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
      }
      this.clients.add(client);
      client.on('close', () => this.clients.delete(client));
      // What the engine sends goes on chunk by chunk, so that holdNext() can stop one on its way.
      client.on('data', (chunk: Buffer) => {
        const hold = this.hold;
        if (hold && hold.match(chunk)) {
          this.hold = undefined;
          client.pause();
          hold.caught(() => {
            upstream.write(chunk);
            client.resume();
          });
          return;
        }
        upstream.write(chunk);
      });
      upstream.pipe(client);
      if (this.paused) client.pause();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    if (address !== null && typeof address === 'object') this.port = address.port;
    this.server = server;
  }

  private hold: { match: (chunk: Buffer) => boolean; caught: (release: () => void) => void } | undefined;

  /**
   * Holds back the next chunk the engine sends that `match` accepts (and what follows it on that connection):
   * `held` settles once one was caught, and `release()` sends it on. A command on its way, for as long as a test
   * needs to do something while it is out.
   */
  holdNext(match: (chunk: Buffer) => boolean): { held: Promise<void>; release: () => void } {
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      this.hold = {
        match,
        caught: (send) => {
          release = send;
          resolve();
        },
      };
    });
    return { held, release: () => release() };
  }

  /** Stops forwarding what the engine sends, keeping the connections open: a hung Redis, no RST. */
  pause(): void {
    this.paused = true;
    for (const s of this.clients) s.pause();
  }

  /** Forwards again, in order, everything held back. */
  resume(): void {
    this.paused = false;
    for (const s of this.clients) s.resume();
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** A Herald node (the CLI's startNode) on Redis, in this process, with its HTTP and WebSocket addresses. */
export interface RunningNode {
  node: HeraldNode;
  http: string;
  ws: string;
}

/** Starts a node on `url` (a single Redis, or `redis+cluster://...`) under `prefix`; closed after the test. */
export async function startRedisNode(prefix: string, url = REDIS_URL, extra: Partial<NodeSettings> = {}, options: GatewayOptions = {}): Promise<RunningNode> {
  const logger = silentLogger();
  const settings: NodeSettings = {
    logLevel: 'silent',
    redisUrl: url,
    redisPrefix: prefix,
    redisSharded: false,
    presenceTtl: 3000,
    nodeId: undefined,
    ingest: true,
    workers: 1,
    config: undefined,
    devAllowRemote: false,
    logFormat: 'json',
    ...extra,
  };
  const node = await startNode(
    { port: 0, apiKeys: [API_KEY], jwtSecrets: [JWT_SECRET], allowAnonymous: true, shutdownTimeout: 2000, logger, ...options },
    settings,
    logger,
  );
  onCleanup(() => node.close());
  const { port } = node.gateway.address();
  return { node, http: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}/ws` };
}

/**
 * A Redis engine (own prefix) whose subscriber connection goes through a TcpProxy and whose command connection does
 * not: `proxy.freeze()` holds the live messages back while history reads and publishes go on, as when the two
 * connections of a busy node are read at different moments.
 */
export async function engineWithSubscriberProxy(options: RedisEngineOptions = {}): Promise<{ engine: RedisEngine; proxy: TcpProxy }> {
  const { proxy, url } = await redisBehindProxy();
  const engine = createRedisEngine({
    prefix: testPrefix(),
    logger: silentLogger(),
    ...options,
    redis: (role, defaults) => new Redis(role === 'subscriber' ? url : REDIS_URL, defaults),
  });
  return { engine, proxy };
}

/** A TcpProxy in front of the test Redis (closed after the test), and the Redis URL through it. */
export async function redisBehindProxy(): Promise<{ proxy: TcpProxy; url: string }> {
  const redis = new URL(REDIS_URL);
  const proxy = await TcpProxy.start(Number(redis.port || 6379), redis.hostname);
  onCleanup(() => proxy.close());
  const via = new URL(REDIS_URL);
  via.hostname = '127.0.0.1';
  via.port = String(proxy.port);
  return { proxy, url: via.toString() };
}
