import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Command, type ChainableCommander, type Cluster, type ClusterOptions, type Redis, type RedisOptions } from 'ioredis';
import type { Clock } from '../../util/clock.js';
import { EngineTimeoutError, EngineUnavailableError, HeraldError } from '../../util/errors.js';
import { commandOps, encodeOps, toTurnArgs, TURN_SCRIPT_OPS, turnScriptSource, utf8, type RecordedCommand, type TurnOp } from './turn-script.js';
import { TurnGate } from './turns.js';

/** A Redis client of the engine: one Redis, or a Redis Cluster (every key of one operation on one slot). */
export type RedisClient = Redis | Cluster;

/** Which of the engine's two connections a client is for. */
export type RedisRole = 'command' | 'subscriber';

/** Client options the engine passes to a factory (reply mapping stays ioredis' default, 'legacy'). */
export type EngineRedisOptions = Omit<RedisOptions, 'replyMapping'>;

/**
 * Builds one of the engine's Redis clients. `defaults` holds the options the engine relies on (fail fast
 * while Redis is down, never resend a command that may have run); spread them into your own options.
 */
export type RedisFactory = (role: RedisRole, defaults: EngineRedisOptions) => RedisClient;

/** Where the Lua scripts live: `packages/server/lua`, the same relative path from `src/` and `dist/`. */
export const LUA_DIR = new URL('../../../lua/', import.meta.url);

/** Options every engine client gets unless the factory overrides them. */
export function clientDefaults(role: RedisRole, commandTimeout: number, node: string): EngineRedisOptions {
  return {
    // While Redis is down a call must fail at once (503), not wait in a queue the caller gave up on.
    enableOfflineQueue: false,
    // A command in flight when the connection drops fails immediately and is never resent: a publish
    // that may have run must not run twice (callers retry with an idempotency key instead).
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    // A hung connection (no RST, e.g. a network partition) would otherwise hold requests forever.
    commandTimeout,
    // The broker resubscribes itself, so that it knows when to read what it missed from history.
    autoResubscribe: false,
    // Names the connection in CLIENT LIST: which node, which role.
    connectionName: `herald-${role}-${node}`,
  };
}

/**
 * Options of a Redis Cluster client built from the engine's client `defaults` (see clientDefaults): the
 * nodes get them, and the cluster itself fails fast as well. MOVED and ASK are followed (a command refused
 * by a node that no longer holds the slot never ran there), CLUSTERDOWN and TRYAGAIN retried after a pause
 * (refused too); a command whose connection closed with it in flight is never resent (it may have run:
 * `retryDelayOnFailover: 0`), it fails as "outcome unknown" and the slots are read again. Pub/sub is
 * sharded (SSUBSCRIBE on the master of each channel's slot).
 */
export function clusterOptions(
  defaults: EngineRedisOptions,
): Omit<ClusterOptions, 'redisOptions'> & { redisOptions: Omit<NonNullable<ClusterOptions['redisOptions']>, 'replyMapping'> } {
  // The cluster decides about offline queueing and reconnection for its nodes.
  const { enableOfflineQueue: _queue, retryStrategy: _retry, ...node } = defaults;
  return {
    redisOptions: node,
    // A node connects on its first command: the commands of that tick wait for it (and fail when it cannot
    // be reached). While the cluster as a whole is not ready, RedisContext refuses calls itself (503).
    enableOfflineQueue: true,
    retryDelayOnFailover: 0,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    maxRedirections: 16,
    // A promoted replica or a restarted master is found within a few seconds even with no command failing.
    slotsRefreshInterval: 2000,
    shardedSubscribers: true,
    lazyConnect: defaults.lazyConnect ?? false,
  };
}

/** Whether `client` is a Redis Cluster client. */
export function isCluster(client: RedisClient): client is Cluster {
  return 'isCluster' in client && client.isCluster;
}

/**
 * Calls `fn` whenever the subscriber connection `sub` may have lost subscriptions and got them back: its
 * `ready`, and on a Redis Cluster also `subscribersReady` (ioredis connected the subscriber of a shard
 * again, e.g. after a failover or a restarted master, and resubscribed it).
 */
export function onSubscriberBack(sub: RedisClient, fn: () => void): void {
  sub.on('ready', fn);
  if (isCluster(sub)) sub.on('subscribersReady', fn);
}

/**
 * Works around ioredis' sharded subscriber group (5.11 as 6.0) getting stuck after the whole cluster was unreachable:
 * a shard subscriber stopped while it was still connecting (the cluster client gave up all its nodes) leaves
 * its start promise unsettled (stop() removes the listeners that would settle it), the group's reset waits on
 * it forever, and no shard subscriber is created again. Clears that flag and reads the slots again, which
 * makes the group create its subscribers anew. Relies on a private field: a no-op if the shape changed
 * (engine-redis-cluster.test.ts, "no master answers", tells whether recovery still works).
 */
export function unstickShardedSubscribers(sub: Cluster): void {
  const group = (sub as unknown as { shardedSubscribers?: { isResetting?: unknown; pendingReset?: unknown } }).shardedSubscribers;
  if (group?.isResetting !== true) return;
  group.isResetting = false;
  group.pendingReset = null;
  sub.refreshSlotsCache();
}

/** Parses `host:port,host:port` (the nodes of a Redis Cluster to start from). */
export function parseClusterNodes(text: string): Array<{ host: string; port: number }> {
  const nodes = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => {
      const m = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(s);
      const port = m ? Number(m[2]) : NaN;
      if (!m || !(port > 0 && port < 65536)) throw new RangeError(`Redis Cluster node must be host:port, got "${s}"`);
      return { host: (m[1] ?? '').replace(/^\[|\]$/g, ''), port };
    });
  if (nodes.length === 0) throw new RangeError('Redis Cluster: at least one host:port is needed');
  return nodes;
}

/**
 * A Lua script run with EVALSHA, falling back to EVAL when the server does not have it yet (a restart,
 * SCRIPT FLUSH, a failover): the same behaviour as ioredis' defineCommand, without widening its types.
 */
export class LuaScript {
  /** The SHA1 digest EVALSHA takes. */
  readonly sha: string;

  constructor(
    readonly name: string,
    readonly source: string,
  ) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  /** Reads `lua/<name>.lua`. */
  static load(name: string): LuaScript {
    return new LuaScript(name, readFileSync(new URL(`${name}.lua`, LUA_DIR), 'utf8'));
  }

  /**
   * Runs the script; `buffers` keeps bulk replies as Buffers (binary-safe, no UTF-8 round trip). Sent as a Command
   * of its own (see sendCommand), never through `call`/`callBuffer`: with auto-pipelining on (a client from a
   * custom factory) ioredis drops the command name of `callBuffer` (redis/ioredis#1923) and its pipeline then
   * waits forever.
   */
  async run(redis: RedisClient, keys: readonly string[], args: ReadonlyArray<string | number | Buffer>, buffers = false): Promise<unknown> {
    try {
      return await sendCommand(redis, 'evalsha', [this.sha, keys.length, ...keys, ...args], buffers);
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('NOSCRIPT')) return this.evaluate(redis, keys, args, buffers);
      throw err;
    }
  }

  /** Sends the script's source (EVAL), which also loads it: for after a NOSCRIPT answer. */
  evaluate(redis: RedisClient, keys: readonly string[], args: ReadonlyArray<string | number | Buffer>, buffers = false): Promise<unknown> {
    return sendCommand(redis, 'eval', [this.source, keys.length, ...keys, ...args], buffers);
  }
}

/**
 * Sends one command with `args` (flat already, and taken over: ioredis turns its numbers into strings in place);
 * `buffers` answers bulk replies as Buffers. Builds the ioredis Command with no arguments and hands it `args`
 * afterwards (its public `args`, then its own `stringifyArguments`): the Command constructor copies its arguments
 * with `Array.prototype.flat`, which V8 runs at about 200 ns per element, 0.35 ms for the 1 700 arguments of a
 * batch of 100 publishes (more than the rest of building and encoding the command). With a client `keyPrefix`
 * (which the constructor applies) it goes the usual way.
 */
export function sendCommand(redis: RedisClient, name: string, args: Array<string | number | Buffer>, buffers = false): Promise<unknown> {
  const replyEncoding = buffers ? null : 'utf8';
  if (redis.options.keyPrefix) return redis.sendCommand(new Command(name, args, { replyEncoding, keyPrefix: redis.options.keyPrefix })) as Promise<unknown>;
  const command = new Command(name, [], { replyEncoding });
  command.args = args;
  command.stringifyArguments();
  void redis.sendCommand(command);
  return command.promise as Promise<unknown>;
}

/** Errors the publish script answers for invalid input, and what they mean to the HTTP API. */
const SCRIPT_ERRORS: Record<string, (message: string, cause: unknown) => HeraldError> = {
  INVALID_CHANNEL: (m, cause) => new HeraldError('invalid_channel', m, { field: 'channel', cause }),
  INVALID_TYPE: (m, cause) => new HeraldError('invalid_field', m, { field: 'type', cause }),
  RESERVED_TYPE: (m, cause) => new HeraldError('reserved_type', m, { field: 'type', cause }),
  INVALID_PAYLOAD: (m, cause) => new HeraldError('invalid_field', m, { field: 'payload', cause }),
  PAYLOAD_TOO_DEEP: (m, cause) => new HeraldError('payload_too_deep', m, { field: 'payload', cause }),
};

/**
 * Errors of commands that were written to Redis and never answered: the command timed out, or the connection
 * dropped with it in flight (ioredis flushes its command queue then; with `enableOfflineQueue: false` nothing
 * unsent is ever queued). Such a command may have run.
 */
function outcomeUnknown(err: Error): boolean {
  return err.message === 'Command timed out' || err.message === 'Connection is closed.' || err.name === 'MaxRetriesPerRequestError';
}

/**
 * Turns anything a Redis call threw into a HeraldError: input the publish script rejected keeps its
 * code (400); a command sent and not answered is `engine_timeout` (504: outcome unknown, retry with the same
 * id); everything else (not connected, OOM, a broken script) is the engine being unavailable (503: nothing was
 * done). The message names the operation, never the Redis address; `cause` has the details.
 */
export function toHeraldError(err: unknown, operation: string, sent = true): HeraldError {
  if (err instanceof HeraldError) return err;
  if (err instanceof Error) {
    const space = err.message.indexOf(' ');
    const make = space > 0 ? SCRIPT_ERRORS[err.message.slice(0, space)] : undefined;
    if (make) return make(err.message.slice(space + 1), err);
    if (sent && outcomeUnknown(err))
      return new EngineTimeoutError(`Redis did not answer in time (${operation}): the outcome is unknown, retry with the same id`, err);
  }
  return new EngineUnavailableError(`Redis is unavailable (${operation} failed)`, err);
}

/**
 * Resolves true once `client` is ready, false after `timeout` ms (Redis may be down: callers retry or fail
 * fast). The one "wait for Redis" of the engine and the ingest.
 */
export function whenReady(client: RedisClient, clock: Clock, timeout: number): Promise<boolean> {
  if (client.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean): void => {
      clock.clearTimeout(timer);
      client.off('ready', onReady);
      resolve(ok);
    };
    const onReady = (): void => done(true);
    const timer = clock.setTimeout(() => done(false), timeout);
    client.on('ready', onReady);
  });
}

/**
 * Sends `items` in slices of `size`, each once the one before it was answered, and throws the first failure. For
 * the periodic bulk work (presence refresh, channel touches) of a node with many connections: sent all at once,
 * tens of thousands of commands are built, written and answered in one go, and every publish of those moments
 * waits behind them (hundreds of ms of p99); a slice at a time, publishes go out between slices.
 */
export async function inSlices<T>(items: readonly T[], size: number, send: (slice: T[]) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await send(items.slice(i, i + size));
}

/** A `RedisContext.pipeline` or `RedisContext.script` call waiting for the end of its turn. */
interface QueuedCall {
  operation: string;
  /** A pipeline call: the commands it adds. (Both fields always present: one object shape for every call.) */
  build: ((p: ChainableCommander) => void) | undefined;
  /** A script call: the script and its input. */
  script: { script: LuaScript; keys: readonly string[]; args: ReadonlyArray<string | number> } | undefined;
  /** Bulk replies as Buffers (a script call's option); strings otherwise. */
  buffers: boolean;
  resolve: (values: unknown[]) => void;
  reject: (err: unknown) => void;
}

/** Most commands in one pipeline of a turn's batch: bounds the memory of one write, not the number of calls. */
export const TURN_BATCH_COMMANDS = 4000;

/** What the engine's parts share: the command connection, and one guarded way to use it. */
export class RedisContext {
  private closed = false;
  private queued: QueuedCall[] | undefined;
  /** The scripts turn script calls have carried, in their index order (1-based in the turn script). */
  private readonly turnScripts: LuaScript[] = [];
  private turnScript: LuaScript | undefined;
  /** Holds the next turns' calls while a turn's are out (see TurnGate). */
  private readonly gate: TurnGate;

  /** `scripts`: those the turn script carries from the start (others join it when first run). */
  constructor(
    readonly redis: RedisClient,
    readonly clock: Clock,
    scripts: readonly LuaScript[] = [],
  ) {
    this.gate = new TurnGate(() => this.flush(), clock);
    for (const s of scripts) this.turnIndex(s);
  }

  /**
   * Marks the engine closed: every later call rejects with EngineUnavailableError, and so do the calls queued for
   * the end of this turn or held behind a batch out (at once; a batch out is answered or fails on its own).
   */
  close(): void {
    this.closed = true;
    this.gate.close();
    if (this.queued) this.flush();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Resolves true once the command connection is ready, false after `timeout` ms or when closed. */
  whenReady(timeout: number): Promise<boolean> {
    if (this.closed && this.redis.status !== 'ready') return Promise.resolve(false);
    return whenReady(this.redis, this.clock, timeout);
  }

  /**
   * Runs `fn` against the command connection; every failure becomes a HeraldError (see toHeraldError). A
   * command can only have been written while the connection was ready (nothing is queued offline), so a
   * failure of one issued on a connection that was not is "unavailable", never "outcome unknown".
   */
  async call<T>(operation: string, fn: (redis: RedisClient) => Promise<T>): Promise<T> {
    if (this.closed) throw new EngineUnavailableError('the Redis engine is closed');
    // A Redis Cluster client would queue the call until the cluster is back: fail now instead.
    if (isCluster(this.redis) && this.redis.status !== 'ready')
      throw new EngineUnavailableError(`Redis is unavailable (${operation}: the cluster is not ready)`);
    const sent = this.redis.status === 'ready';
    try {
      return await fn(this.redis);
    } catch (err) {
      throw toHeraldError(err, operation, sent);
    }
  }

  /**
   * Sends commands and returns their results, failing as a whole when any of them failed: presence and
   * lookups have no use for half an answer. The calls of one event-loop turn (the presence writes of every
   * connection that connected in it, their counts, the reads of `script`) go out together at the end of the
   * turn, in the order they were made: on a single Redis as one call of the turn script (one command to build,
   * send and answer, see turnScriptSource), a turn of one call too (even of one command, the turn script costs the
   * client less than an ioredis pipeline: about 28 against 45 µs; a call of 700 commands about a quarter of what
   * 700 pipelined Commands cost). A call the turn script cannot carry goes as a pipeline in its place. On a
   * Redis Cluster the commands may be on many slots: each is sent on its own (at once, in order; ioredis routes it
   * to its slot's master).
   */
  pipeline(operation: string, build: (p: ChainableCommander) => void): Promise<unknown[]> {
    if (this.closed) return Promise.reject(new EngineUnavailableError('the Redis engine is closed'));
    const { redis } = this;
    if (isCluster(redis)) return this.call(operation, () => Promise.all(recorded(build).map(([name, args]) => redis.call(name, ...args))));
    return new Promise((resolve, reject) => this.enqueue({ operation, build, script: undefined, buffers: false, resolve, reject }));
  }

  private enqueue(call: QueuedCall): void {
    if (!this.queued) {
      this.queued = [];
      this.gate.request();
    }
    this.queued.push(call);
  }

  /**
   * Runs a Lua script with the turn's other calls (see `pipeline`): the reads and presence scripts of every
   * connection that connected in one turn share one command instead of one each. A turn of this one call sends
   * it by EVALSHA; a Redis that does not know the script yet (NOSCRIPT: restarted, flushed) gets it sent on its
   * own. On a Redis Cluster, where the keys of one command must stay on one slot, the script goes out on its own
   * at once, as `call` sends it.
   */
  async script(operation: string, script: LuaScript, keys: readonly string[], args: ReadonlyArray<string | number>, buffers = false): Promise<unknown> {
    if (isCluster(this.redis)) return this.call(operation, (redis) => script.run(redis, keys, args, buffers));
    if (this.closed) throw new EngineUnavailableError('the Redis engine is closed');
    try {
      const [reply] = await new Promise<unknown[]>((resolve, reject) =>
        this.enqueue({ operation, build: undefined, script: { script, keys, args }, buffers, resolve, reject }),
      );
      return reply;
    } catch (err) {
      const cause = err instanceof HeraldError ? err.cause : err;
      if (cause instanceof Error && cause.message.startsWith('NOSCRIPT')) return this.call(operation, (redis) => script.evaluate(redis, keys, args, buffers));
      throw err;
    }
  }

  /** Sends the turn's calls (see `pipeline`). */
  private readonly flush = (): void => {
    const calls = this.queued ?? [];
    this.queued = undefined;
    if (this.closed) {
      for (const c of calls) c.reject(new EngineUnavailableError('the Redis engine is closed'));
      return;
    }
    const sent = this.redis.status === 'ready';
    const only = calls.length === 1 ? calls[0] : undefined;
    if (only?.script) {
      this.sendScript(only, only.script, sent);
      return;
    }
    let chunk: Array<{ call: QueuedCall; ops: TurnOp[] }> = [];
    let size = 0;
    const send = (): void => {
      if (chunk.length > 0) this.sendTurn(chunk, size, sent);
      chunk = [];
      size = 0;
    };
    for (const call of calls) {
      let ops: TurnOp[] | undefined;
      if (call.script) {
        const args = toTurnArgs(call.script.args);
        if (args) ops = [[this.turnIndex(call.script.script), call.script.keys, args]];
      } else {
        let commands: RecordedCommand[];
        try {
          commands = recorded(call.build ?? (() => undefined));
        } catch (err) {
          // Nothing of it goes out: only this call fails.
          call.reject(toHeraldError(err, call.operation, false));
          continue;
        }
        if (commands.length === 0) {
          call.resolve([]);
          continue;
        }
        ops = commandOps(commands);
        // Should it go as a pipeline (below), the builder does not run again: its commands are added as recorded.
        if (!ops) call.build = (p) => replay(p, commands);
      }
      // A command a script may not run, a Buffer argument or a Buffer reply (`getBuffer`): this call goes out as a
      // pipeline, in its place.
      if (!ops) {
        send();
        this.sendPipeline([call], sent);
        continue;
      }
      if (size > 0 && size + ops.length > TURN_SCRIPT_OPS) send();
      chunk.push({ call, ops });
      size += ops.length;
    }
    send();
  };

  /** A turn's only call, a script: its own EVALSHA (then EVAL when Redis answers NOSCRIPT). */
  private sendScript(call: QueuedCall, { script, keys, args }: NonNullable<QueuedCall['script']>, sent: boolean): void {
    this.gate.track(script.run(this.redis, keys, [...args], call.buffers)).then(
      (reply) => call.resolve([reply]),
      (err: unknown) => call.reject(toHeraldError(err, call.operation, sent)),
    );
  }

  /** The index of `script` in the turn script (1-based); a script not in it yet makes a new turn script. */
  private turnIndex(script: LuaScript): number {
    const i = this.turnScripts.findIndex((s) => s.sha === script.sha);
    if (i >= 0) return i + 1;
    this.turnScripts.push(script);
    this.turnScript = undefined;
    return this.turnScripts.length;
  }

  /** One turn script call for `chunk` (`size` operations); each call gets its slice of the answers, or its error. */
  private sendTurn(chunk: ReadonlyArray<{ call: QueuedCall; ops: TurnOp[] }>, size: number, sent: boolean): void {
    this.turnScript ??= new LuaScript('turn', turnScriptSource(this.turnScripts.map((s) => s.source)));
    const ops: TurnOp[] = [];
    for (const c of chunk) for (const op of c.ops) ops.push(op);
    this.gate.track(this.turnScript.run(this.redis, [], [encodeOps(ops)], true)).then(
      (reply) => {
        const replies = Array.isArray(reply) && reply.length === size ? (reply as unknown[]) : undefined;
        let at = 0;
        for (const { call, ops } of chunk) {
          const slice = replies?.slice(at, at + ops.length);
          at += ops.length;
          const failed = slice === undefined ? new Error('unexpected reply from the turn script') : slice.find((r) => r instanceof Error);
          if (failed) call.reject(toHeraldError(failed, call.operation, sent));
          else call.resolve(call.buffers ? (slice as unknown[]) : (slice as unknown[]).map(utf8));
        }
      },
      (err: unknown) => {
        for (const { call } of chunk) call.reject(toHeraldError(err, call.operation, sent));
      },
    );
  }

  /** `calls` as one pipeline (or several of at most TURN_BATCH_COMMANDS commands), in order. */
  private sendPipeline(calls: readonly QueuedCall[], sent: boolean): void {
    let p = this.redis.pipeline();
    let batch: Array<{ call: QueuedCall; from: number; to: number }> = [];
    const exec = (): void => {
      const mine = batch;
      if (mine.length === 0) return;
      this.gate.track(p.exec()).then(
        (results) => {
          for (const { call, from, to } of mine) {
            const slice = (results ?? []).slice(from, to);
            const failed = slice.find(([err]) => err);
            if (failed) call.reject(toHeraldError(failed[0], call.operation, sent));
            else call.resolve(slice.map(([, value]) => value as unknown));
          }
        },
        (err: unknown) => {
          for (const { call } of mine) call.reject(toHeraldError(err, call.operation, sent));
        },
      );
    };
    for (const call of calls) {
      if (p.length >= TURN_BATCH_COMMANDS) {
        exec();
        p = this.redis.pipeline();
        batch = [];
      }
      const from = p.length;
      try {
        const s = call.script;
        if (s) {
          const { sha } = s.script;
          // Typed on the client only; a pipeline has every command's Buffer variant too.
          if (call.buffers)
            (p as ChainableCommander & { evalshaBuffer(...a: Array<string | number>): unknown }).evalshaBuffer(sha, s.keys.length, ...s.keys, ...s.args);
          else p.evalsha(sha, s.keys.length, ...s.keys, ...s.args);
        } else call.build?.(p);
      } catch (err) {
        // Whatever it added still goes out (ioredis cannot take commands back); only this call fails.
        call.reject(toHeraldError(err, call.operation, false));
        continue;
      }
      if (p.length === from) call.resolve([]);
      else batch.push({ call, from, to: p.length });
    }
    exec();
  }
}

/** Adds recorded commands to a pipeline (every ChainableCommander method is the Redis command of its name). */
function replay(p: ChainableCommander, commands: readonly RecordedCommand[]): void {
  const named = p as unknown as Record<string, (...args: Array<string | number | Buffer>) => unknown>;
  for (const [name, args] of commands) {
    const command = named[name];
    if (typeof command !== 'function') throw new TypeError(`${name} is not a Redis command`);
    command.apply(p, args);
  }
}

/**
 * The commands `build` adds to a pipeline, recorded instead of sent (for a Redis Cluster, where a pipeline
 * must stay on one slot). Every ChainableCommander method is a Redis command of the same name.
 */
function recorded(build: (p: ChainableCommander) => void): RecordedCommand[] {
  const out: RecordedCommand[] = [];
  const recorder: object = new Proxy(
    {},
    {
      get: (_target, name) =>
        typeof name === 'string'
          ? (...args: Array<string | number | Buffer>) => {
              out.push([name, args]);
              return recorder;
            }
          : undefined,
    },
  );
  build(recorder as ChainableCommander);
  return out;
}
