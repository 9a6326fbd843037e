import { randomBytes } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { systemClock, type Clock, type TimerHandle } from '../../util/clock.js';
import { EngineUnavailableError } from '../../util/errors.js';
import { silentLogger, type Logger } from '../../util/logger.js';
import { RedisBroker } from './broker.js';
import {
  clientDefaults,
  clusterOptions,
  isCluster,
  LuaScript,
  parseClusterNodes,
  RedisContext,
  type RedisClient,
  type RedisFactory,
  type RedisRole,
} from './client.js';
import { RedisHistory } from './history.js';
import { RedisKeys } from './keys.js';
import { RedisMembers } from './members.js';
import { RedisPresence } from './presence.js';
import { RedisInbox } from './inbox.js';
import { RedisLifecycle } from './lifecycle.js';
import { RedisOutbox } from './outbox.js';
import type { LifecycleOptions } from '../outbox.js';
import { defaultMetaTtl, ENGINE_DEFAULTS } from '../defaults.js';
import type { Engine, EngineCheck, EngineHandlers, NodeId } from '../types.js';

export type { EngineRedisOptions, RedisClient, RedisFactory, RedisRole } from './client.js';

/** Options of the Redis engine. */
export interface RedisEngineOptions {
  /** Redis URL: `redis://[[user]:password@]host:port[/db]`, `rediss://` for TLS. Unused when `redis` is given. @default 'redis://127.0.0.1:6379' */
  url?: string;
  /**
   * The nodes of a Redis Cluster to start from (`host:port,host:port`, or a list), instead of `url`: the
   * engine builds ioredis `Cluster` clients, follows MOVED/ASK and failovers, and uses sharded pub/sub
   * (`sharded` is implied). Redis 7+. Unused when `redis` is given.
   * @default none (one Redis at `url`)
   */
  cluster?: string | ReadonlyArray<{ host: string; port: number }>;
  /**
   * Builds the engine's two clients (one for commands, one for pub/sub) instead of `url`: for TLS options,
   * Sentinel, or tests. Spread the `defaults` it is given into the client's options; they make calls fail
   * fast while Redis is down. The engine owns the clients and quits them on `close()`. A client with ioredis'
   * `keyPrefix` is refused (RangeError): the engine's `prefix` is the one that applies to every key and channel.
   * @default clients for `url`
   */
  redis?: RedisFactory;
  /** Prefix of every key and pub/sub channel; several Herald clusters can share one Redis with different prefixes. No braces. @default 'herald' */
  prefix?: string;
  /** This node's id, unique in the cluster: direct messages are routed to it. @default 12 random bytes, base64url */
  nodeId?: NodeId;
  /** Messages kept per channel for recovery. @default 1000 */
  historySize?: number;
  /** Bytes of message frames kept per channel; a larger message is published but not kept. @default 1048576 */
  historyMaxBytes?: number;
  /** How long a message stays in history, in ms (measured in Redis server time). @default 600000 (10 minutes) */
  historyTtl?: number;
  /** How long a channel's seq and epoch outlive its last publish or read, in ms; at least `historyTtl`. @default max(historyTtl, 3600000) (one hour) */
  historyMetaTtl?: number;
  /** Idempotency window for publish ids, in ms. @default 300000 (5 minutes) */
  idempotencyTtl?: number;
  /** A node that stops without cleaning up (kill -9) disappears from presence within this many ms; nodes refresh every third of it. @default 30000 */
  presenceTtl?: number;
  /** Use sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis 7+) instead of PUBLISH/SUBSCRIBE. @default true with `cluster`, else false */
  sharded?: boolean;
  /** Most ms a Redis command may take before the call fails with EngineUnavailableError (a hung connection). @default 5000 */
  commandTimeout?: number;
  /** Lifecycle events to queue for the webhooks (user online/offline, channel occupied/vacated). @default none */
  lifecycle?: LifecycleOptions;
  /** @default a silent logger */
  logger?: Logger;
  /** Drives the presence refresh and presence expiry times. @default the system clock */
  clock?: Clock;
}

/** Most ms `check()` waits for PING. */
const CHECK_TIMEOUT = 1000;

/** The oldest Redis the engine runs on: lua/publish.lua appends with `XADD ... NOMKSTREAM` (6.2). */
export const MIN_REDIS_VERSION: readonly [major: number, minor: number] = [6, 2];

/** Why the server that wrote `info` (INFO server) is too old for the engine, or undefined when it is not (or says no version). */
export function redisVersionProblem(info: string): string | undefined {
  const v = /^redis_version:(\d+)\.(\d+)/m.exec(info);
  if (!v) return undefined;
  const [major, minor] = [Number(v[1]), Number(v[2])];
  const [wantMajor, wantMinor] = MIN_REDIS_VERSION;
  if (major > wantMajor || (major === wantMajor && minor >= wantMinor)) return undefined;
  return `Redis ${major}.${minor} is too old for the Redis engine: it needs Redis ${wantMajor}.${wantMinor} or later (see docs/redis.md)`;
}

/** `p`, or a rejection (`late()`) once `ms` passed without its answer (`p` is then left to settle unobserved, harmlessly). */
async function withTimeout<T>(p: Promise<T>, clock: Clock, ms: number, late: () => Error = () => new Error('no answer in time')): Promise<T> {
  let timer: TimerHandle | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = clock.setTimeout(() => reject(late()), ms);
  });
  try {
    return await Promise.race([p, expired]);
  } finally {
    if (timer !== undefined) clock.clearTimeout(timer);
    // The loser of the race must not become an unhandled rejection.
    p.catch(() => undefined);
  }
}

/**
 * PINGs every master that holds slots in the client's map of the cluster: the ones that do not answer, or that the
 * client has no connection to (it drops the connection of a node that went away, so asking only the connected ones
 * would pass while that node's slots refuse every call), make the cluster degraded; all of them, unavailable.
 */
async function pingMasters(cluster: Cluster, clock: Clock, timeout: number): Promise<EngineCheck> {
  const owners = new Set<string>();
  for (const nodes of cluster.slots) if (nodes?.[0] !== undefined) owners.add(nodes[0]);
  if (owners.size === 0) throw new EngineUnavailableError('Redis Cluster: no slot has a master');
  const connected = new Map(cluster.nodes('master').map((m) => [`${m.options.host ?? ''}:${m.options.port ?? ''}`, m]));
  const answers = await Promise.allSettled(
    [...owners].map(async (key) => {
      const node = connected.get(key);
      if (node === undefined) throw new Error('no connection');
      // A stalled master (not answering, its connection up) is down too, within the check's time.
      await withTimeout(node.ping(), clock, timeout);
    }),
  );
  const keys = [...owners];
  const down = keys.filter((_, i) => answers[i]?.status === 'rejected');
  if (down.length === 0) return undefined;
  const what = `Redis Cluster: ${down.length === 1 ? 'master' : 'masters'} ${down.join(', ')} did not answer PING`;
  if (down.length === keys.length) throw new EngineUnavailableError(what);
  // With cluster-require-full-coverage yes (Redis's default), once the cluster marks the master failed the others
  // refuse every command (CLUSTERDOWN), though they answer PING: ask one of them how the cluster sees itself.
  const live = connected.get(keys.find((_, i) => answers[i]?.status === 'fulfilled') ?? '');
  const info = live === undefined ? undefined : await withTimeout(live.cluster('INFO') as Promise<string>, clock, timeout / 4).catch(() => undefined);
  if (info !== undefined && /^cluster_state:fail/m.test(info)) {
    throw new EngineUnavailableError(`${what}, and the cluster refuses every command (cluster_state:fail: it requires full coverage)`);
  }
  return { degraded: `${what}; the channels of ${down.length === 1 ? 'its' : 'their'} slots fail, the others work` };
}

/** The scripts the engine runs through `RedisContext.script` (reads, presence, members, lifecycle): the turn script's. */
const TURN_SCRIPTS = ['history', 'touch', 'inbox', 'members', 'lifecycle', 'refresh'];

/** An invalid createRedisEngine option: `option` names it (the gateway maps it to its own setting). */
export class EngineOptionError extends RangeError {
  constructor(
    readonly option: keyof RedisEngineOptions,
    message: string,
  ) {
    super(`createRedisEngine: ${message}`);
    this.name = 'EngineOptionError';
  }
}

function integer(name: keyof RedisEngineOptions, value: number, min: number): number {
  if (!Number.isSafeInteger(value) || value < min) throw new EngineOptionError(name, `${name} must be an integer >= ${min}, got ${String(value)}`);
  return value;
}

/** Checks `o` as createRedisEngine would, without connecting: throws an EngineOptionError for an invalid option. */
export function checkRedisEngineOptions(o: RedisEngineOptions): void {
  resolve(o);
}

/** Options with defaults merged and checked: the one place defaults live. */
function resolve(o: RedisEngineOptions) {
  const D = ENGINE_DEFAULTS;
  const historyTtl = integer('historyTtl', o.historyTtl ?? D.historyTtl, 1);
  const historyMetaTtl = integer('historyMetaTtl', o.historyMetaTtl ?? defaultMetaTtl(historyTtl), 1);
  if (historyMetaTtl < historyTtl) throw new EngineOptionError('historyMetaTtl', `historyMetaTtl (${historyMetaTtl}) must be >= historyTtl (${historyTtl})`);
  const prefix = o.prefix ?? D.redisPrefix;
  // A brace would become the hash tag of every key, putting the whole cluster's data on one slot.
  if (prefix.length === 0 || /[{}\s]/.test(prefix)) throw new EngineOptionError('prefix', 'prefix must be non-empty, without braces or spaces');
  const nodeId = o.nodeId ?? randomBytes(12).toString('base64url');
  if (nodeId.length === 0 || /\s/.test(nodeId)) throw new EngineOptionError('nodeId', 'nodeId must be non-empty, without spaces');
  const cluster = o.cluster === undefined ? undefined : typeof o.cluster === 'string' ? parseClusterNodes(o.cluster) : [...o.cluster];
  return {
    url: o.url ?? 'redis://127.0.0.1:6379',
    cluster,
    prefix,
    nodeId,
    historySize: integer('historySize', o.historySize ?? D.historySize, 0),
    historyMaxBytes: integer('historyMaxBytes', o.historyMaxBytes ?? D.historyMaxBytes, 1),
    historyTtl,
    historyMetaTtl,
    idempotencyTtl: integer('idempotencyTtl', o.idempotencyTtl ?? D.idempotencyTtl, 1),
    presenceTtl: integer('presenceTtl', o.presenceTtl ?? D.presenceTtl, 30),
    sharded: o.sharded ?? cluster !== undefined,
    commandTimeout: integer('commandTimeout', o.commandTimeout ?? D.commandTimeout, 1),
    logger: o.logger ?? silentLogger(),
    clock: o.clock ?? systemClock,
    lifecycle: o.lifecycle,
  };
}

/** The Redis engine, with what tests and operators may inspect. */
export interface RedisEngine extends Engine {
  /** This node's id. */
  readonly nodeId: NodeId;
  /** The key prefix. */
  readonly prefix: string;
}

/**
 * The engine for many processes and machines: history, seq and epoch in Redis streams and hashes (one
 * atomic Lua script per publish, `lua/publish.lua`, shared with the PHP SDK), fan-out over Redis pub/sub,
 * presence in ZSETs with TTLs. Uses two connections: commands, and pub/sub. While Redis is down every
 * call rejects at once with EngineUnavailableError; both connections reconnect by themselves, the
 * subscriber resubscribes and fills from history what it missed. Key layout: docs/redis.md.
 */
export function createRedisEngine(options: RedisEngineOptions = {}): RedisEngine {
  const o = resolve(options);
  const { logger, clock } = o;
  const make = (role: RedisRole): RedisClient => {
    const defaults = { ...clientDefaults(role, o.commandTimeout, o.nodeId), lazyConnect: true };
    // ioredis' auto-pipelining stays off. The engine gathers each turn's commands itself (the publishes as one
    // script call, PublishBatch; presence, counts and reads as one pipeline, RedisContext.pipeline), and an
    // auto-pipeline is a whole Pipeline object per turn even for one command: about 40 µs of client CPU per
    // publish when requests come one at a time (bench/redis-clients.mjs), a third of what such a request costs.
    // On a Redis Cluster it would also batch over several slots, which ioredis redirects (MOVED/ASK) only when
    // every command that succeeded was a read: a batch holding a write would fail during a slot migration.
    const client = options.redis ? options.redis(role, defaults) : o.cluster ? new Cluster(o.cluster, clusterOptions(defaults)) : new Redis(o.url, defaults);
    // ioredis' keyPrefix prefixes the keys of plain commands only, not those the engine's scripts name in their
    // arguments nor the pub/sub channels: half the engine's data would move and the rest would not. `prefix` does it all.
    if (client.options.keyPrefix) {
      client.disconnect();
      throw new RangeError(`createRedisEngine: the ${role} client has ioredis' keyPrefix, which the engine does not support; use the prefix option`);
    }
    watch(client, role);
    return client;
  };
  // One log line per outage and per recovery, not one per reconnection attempt.
  const watch = (client: RedisClient, role: RedisRole): void => {
    let down = false;
    client.on('error', (err: unknown) => {
      if (down) return;
      down = true;
      logger.warn({ err, role }, 'redis engine: connection failed; retrying');
    });
    client.on('ready', () => {
      if (down) logger.info({ role }, 'redis engine: connection restored');
      down = false;
    });
  };

  const redis = make('command');
  const sub = make('subscriber');
  const keys = new RedisKeys(o.prefix);
  // The scripts the engine runs with a turn's other calls (RedisContext.script), in the turn script from the start.
  const ctx = new RedisContext(
    redis,
    clock,
    TURN_SCRIPTS.map((name) => LuaScript.load(name)),
  );
  const history = new RedisHistory(ctx, keys, {
    size: o.historySize,
    ttl: o.historyTtl,
    metaTtl: o.historyMetaTtl,
    maxBytes: o.historyMaxBytes,
    emptyTtl: ENGINE_DEFAULTS.emptyMetaTtl,
  });
  const lifecycle = o.lifecycle && new RedisLifecycle(ctx, keys, o.lifecycle, o.presenceTtl, () => clock.now(), logger);
  const presence = new RedisPresence(ctx, keys, o.nodeId, o.presenceTtl, () => clock.now(), lifecycle);
  const members = new RedisMembers(ctx, keys, o.presenceTtl, () => clock.now(), logger);
  let handlers: EngineHandlers | undefined;
  const inbox = new RedisInbox({ ctx, sub, keys, sharded: o.sharded, now: () => clock.now(), handlers: () => handlers, logger });
  const outbox = new RedisOutbox(ctx, keys, o.nodeId, logger);
  const broker = new RedisBroker({
    ctx,
    sub,
    keys,
    node: o.nodeId,
    sharded: o.sharded,
    history,
    presence,
    publishScript: LuaScript.load('publish'),
    idempotencyTtl: o.idempotencyTtl,
    commandTimeout: o.commandTimeout,
    handlers: () => handlers,
    logger,
  });

  let timer: TimerHandle | undefined;
  let sweepTimer: TimerHandle | undefined;
  let lastTouch = clock.now();
  // Subscribed channels keep their seq and epoch: extend their meta TTL well before it can run out.
  const touchEvery = Math.min(o.historyMetaTtl / 4, ENGINE_DEFAULTS.emptyMetaTtl / 3, 3_600_000);
  const tick = (): void => {
    presence.refresh().catch((err: unknown) => logger.debug({ err }, 'redis engine: presence refresh failed'));
    members.refresh().catch((err: unknown) => logger.debug({ err }, 'redis engine: members refresh failed'));
    members.sweep().catch((err: unknown) => logger.debug({ err }, 'redis engine: members sweep failed'));
    if (clock.now() - lastTouch >= touchEvery) {
      lastTouch = clock.now();
      history.touch(broker.channels()).catch((err: unknown) => logger.debug({ err }, 'redis engine: touching channels failed'));
    }
  };
  // After an outage, put this node's connections back at once rather than at the next tick.
  let everReady = false;
  redis.on('ready', () => {
    if (everReady) tick();
    everReady = true;
  });

  /** Resolves when both connections are up and subscribed, or at the first failure: Redis may come later. */
  const connected = (): Promise<void> =>
    new Promise<void>((done) => {
      const finish = (): void => {
        clock.clearTimeout(timeout);
        redis.off('error', finish).off('ready', check);
        sub.off('error', finish);
        stopWatching();
        done();
      };
      const check = (): void => {
        if (broker.ready && redis.status === 'ready') finish();
      };
      const timeout = clock.setTimeout(finish, o.commandTimeout);
      redis.once('error', finish).on('ready', check);
      sub.once('error', finish);
      const stopWatching = broker.onSync(check);
      for (const c of [redis, sub]) if (c.status === 'wait') c.connect().catch(() => undefined);
      check();
    });

  let closed = false;
  return {
    name: 'redis',
    nodeId: o.nodeId,
    prefix: o.prefix,
    broker,
    history,
    presence,
    inbox,
    outbox,
    members,
    async start(h) {
      if (closed) throw new EngineUnavailableError('the Redis engine is closed');
      handlers = h;
      await connected();
      if (!broker.ready) logger.warn({ prefix: o.prefix }, 'redis engine: Redis is not reachable yet; requests fail until it is');
      if (redis.status === 'ready') {
        // A Redis that will not say (INFO refused by an ACL, a timeout) is given the benefit of the doubt.
        const info = await ctx
          .call('info', (r) => r.info('server'))
          .catch((err: unknown) => void logger.warn({ err }, 'redis engine: could not read the Redis version'));
        const problem = info === undefined ? undefined : redisVersionProblem(info);
        if (problem !== undefined) throw new RangeError(problem);
      }
      timer = clock.setInterval(tick, Math.max(10, Math.floor(o.presenceTtl / 3)));
      // Dead nodes' connections, every second: their offline is held back a few seconds from then.
      if (lifecycle) sweepTimer = clock.setInterval(() => void lifecycle.fire('sweep'), 1000);
    },
    async check() {
      if (closed) throw new EngineUnavailableError('the Redis engine is closed');
      if (!broker.ready) throw new EngineUnavailableError('Redis is unavailable (subscriber connection down)');
      // Readiness probes give up after about a second: answer within one, whatever commandTimeout is.
      // On a Redis Cluster every master is asked: one that is down (its slots not yet failed over) refuses the
      // publishes, presence and history of every channel it holds, which a PING to some node would not show.
      const limit = Math.min(o.commandTimeout, CHECK_TIMEOUT);
      const ping = ctx.call('ping', (r): Promise<EngineCheck> => (isCluster(r) ? pingMasters(r, clock, limit * 0.8) : r.ping().then(() => undefined)));
      return withTimeout(ping, clock, limit, () => new EngineUnavailableError('Redis did not answer PING in time'));
    },
    async close() {
      if (closed) return;
      closed = true;
      if (timer !== undefined) clock.clearInterval(timer);
      if (sweepTimer !== undefined) clock.clearInterval(sweepTimer);
      // Members go first, while the broker still runs: whoever listens may broadcast that they left.
      if (redis.status === 'ready') await members.clear().catch((err: unknown) => logger.debug({ err }, 'redis engine: members cleanup failed'));
      handlers = undefined;
      // A graceful stop leaves presence at once; a crash leaves it within presenceTtl.
      if (redis.status === 'ready') await presence.clear().catch((err: unknown) => logger.debug({ err }, 'redis engine: presence cleanup failed'));
      ctx.close();
      await Promise.all(
        [redis, sub].map((c) =>
          c.status === 'ready'
            ? c.quit().then(
                () => undefined,
                () => c.disconnect(),
              )
            : c.disconnect(),
        ),
      );
    },
  };
}
