import { Cluster, Redis } from 'ioredis';
import { sleep, systemClock, type Clock, type TimerHandle } from '../../util/clock.js';
import type { Logger } from '../../util/logger.js';
import { ENGINE_DEFAULTS } from '../defaults.js';
import { clientDefaults, clusterOptions, parseClusterNodes, whenReady, type RedisClient } from './client.js';
import { pruneConsumers } from './consumers.js';
import { RedisKeys } from './keys.js';

/** Why an ingested message could not be published (written to the dead-letter stream with it). */
export interface DeadLetterReason {
  code: string;
  message: string;
  field?: string | undefined;
}

/** What the ingest hands each message to (ingest/handler.ts): `done`, `dead` (with why), or `retry` later. */
export type IngestMessageHandler = (
  msg: string,
  source: 'stream' | 'pubsub',
  sourceId: string,
) => Promise<{ kind: 'done' } | { kind: 'dead'; errors: DeadLetterReason[] } | { kind: 'retry'; error: unknown }>;

/** Options of the Redis ingest. */
export interface RedisIngestOptions {
  /** Redis URL. Unused when `redis` is given. @default 'redis://127.0.0.1:6379' */
  url?: string;
  /** The nodes of a Redis Cluster to start from, instead of `url` (see the engine's `cluster`). */
  cluster?: string | ReadonlyArray<{ host: string; port: number }>;
  /** Builds the ingest's clients (three: blocking stream reads, commands, pub/sub) instead of `url`. */
  redis?: (role: 'ingest-read' | 'ingest-command' | 'ingest-subscriber') => RedisClient;
  /** Key prefix: the stream is `<prefix>:ingest`, the pub/sub channel `<prefix>:publish` (see RedisKeys). @default 'herald' */
  prefix?: string;
  /** This node's id: its consumer name in the group and its leader-lock value. */
  nodeId: string;
  /** Publishes one message (parse, publish, decide what is dead). */
  handle: IngestMessageHandler;
  /** Told about every message written to the dead-letter stream (for the counters). */
  onDeadLetter?: (reason: DeadLetterReason) => void;
  logger: Logger;
  /** @default the system clock */
  clock?: Clock;
  /** Read `<prefix>:ingest` with a consumer group. @default true */
  stream?: boolean;
  /** Take `PUBLISH <prefix>:publish <json>` (one node at a time: the ingest leader). @default true */
  pubsub?: boolean;
  /** Pending entries of a consumer idle this long are claimed by another node, in ms. @default 30000 */
  claimIdle?: number;
  /** The ingest leader's lock lasts this long unless renewed (every third of it), in ms. @default 5000 */
  leaderTtl?: number;
  /** Longest a blocking stream read waits before it looks again, in ms. @default 2000 */
  block?: number;
}

/** A running ingest. */
export interface RedisIngest {
  /** Whether this node currently takes the pub/sub ingest. */
  readonly leader: boolean;
  close(): Promise<void>;
}

/** Why a PUBLISH ingest message taken while this node's lead was in doubt was not published (see settleLapsed). */
const LEADER_CHANGED: DeadLetterReason = {
  code: 'leader_changed',
  message: 'taken while this node was no longer sure to be the ingest leader; not published, since the node that took over may have published it',
};

/** The consumer group every gateway joins. */
export const INGEST_GROUP = 'herald';
const BATCH = 100;
const DEAD_LETTER_MAXLEN = 10_000;

// Renews the lock only while it is still ours (a compare-and-expire).
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

/** A stream entry; the fields are null for an entry still pending but already deleted. */
type StreamEntry = [id: string, fields: string[] | null];

/**
 * The entries of a one-stream XREADGROUP reply: `[[key, entries]]` over RESP2, `[key, entries]` (a map
 * flattened by the client) over RESP3, or null when nothing arrived.
 */
function streamEntries(reply: unknown): StreamEntry[] {
  if (!Array.isArray(reply) || reply.length === 0) return [];
  const pair: unknown = Array.isArray(reply[0]) ? reply[0] : reply;
  const entries = Array.isArray(pair) ? (pair[1] as unknown) : undefined;
  return Array.isArray(entries) ? (entries as StreamEntry[]) : [];
}

/**
 * Publishing straight from Redis, for backends that only have a Redis client:
 *
 * - `XADD <prefix>:ingest * msg '<json>'` (durable): read by every gateway through one consumer group, so
 *   each entry is published by exactly one node; acknowledged (and deleted) only after it was published;
 *   entries left pending by a node that died are claimed by another after `claimIdle`; entries written while
 *   no gateway runs wait in the stream. Items without an `id` get the entry id as idempotency key, so an
 *   entry published just before its node died is not published twice when another node claims it.
 * - `PUBLISH <prefix>:publish '<json>'` (fire and forget, as in a plain Swoole setup): taken by one node at a
 *   time, the ingest leader (a lock renewed while the node lives), so it is published once. The PUBLISH reply
 *   says how many gateways took it: 0 means none did, and the message was not accepted.
 *
 * The JSON is the body of `POST /api/publish`. What cannot be published (invalid JSON or fields, a client
 * that does not exist) goes to the dead-letter stream `<prefix>:ingest:dead` with the reason, and is counted.
 */
export async function startRedisIngest(options: RedisIngestOptions): Promise<RedisIngest> {
  const keys = new RedisKeys(options.prefix ?? ENGINE_DEFAULTS.redisPrefix);
  const { ingest: streamKey, ingestDead: deadKey, ingestChannel: channel, ingestLeader: lockKey } = keys;
  const { nodeId, logger } = options;
  const clock = options.clock ?? systemClock;
  const claimIdle = options.claimIdle ?? 30_000;
  const leaderTtl = options.leaderTtl ?? 5000;
  const block = options.block ?? 2000;

  const cluster = typeof options.cluster === 'string' ? parseClusterNodes(options.cluster) : options.cluster && [...options.cluster];
  const make = (role: 'ingest-read' | 'ingest-command' | 'ingest-subscriber'): RedisClient => {
    const defaults = {
      ...clientDefaults('command', 10_000, nodeId),
      connectionName: `herald-${role}-${nodeId}`,
      // A blocking read holds its connection: no command timeout there.
      ...(role === 'ingest-read' ? { commandTimeout: block + 5000 } : {}),
      // The subscriber's one channel is subscribed by hand, on 'ready', only while this node leads (below): an
      // automatic resubscription would make a node that stepped down (its UNSUBSCRIBE lost with the connection)
      // take messages again without leading.
      ...(role === 'ingest-subscriber' ? { autoResubscribe: false } : {}),
    };
    // On a Redis Cluster the stream is one key (one slot), and PUBLISH <prefix>:publish reaches every node.
    const client =
      options.redis?.(role) ??
      (cluster
        ? new Cluster(cluster, { ...clusterOptions(defaults), shardedSubscribers: false })
        : new Redis(options.url ?? 'redis://127.0.0.1:6379', defaults));
    client.on('error', (err: unknown) => logger.debug({ err, role }, 'redis ingest: connection error'));
    return client;
  };

  let running = true;
  let leader = false;
  const timers: TimerHandle[] = [];
  const reader = options.stream === false ? undefined : make('ingest-read');
  const command = make('ingest-command');
  const subscriber = options.pubsub === false ? undefined : make('ingest-subscriber');
  // Redis may be down at start: the loops below retry.
  await Promise.all([reader, command, subscriber].map((c) => (c ? whenReady(c, clock, 5000) : undefined)));

  const deadLetter = async (msg: string, source: string, sourceId: string, err: DeadLetterReason): Promise<void> => {
    options.onDeadLetter?.(err);
    const fields = ['msg', msg, 'reason', err.code, 'message', err.message, 'source', source, 'source_id', sourceId, 'node', nodeId];
    if (err.field !== undefined) fields.push('field', err.field);
    await command.xadd(deadKey, 'MAXLEN', '~', DEAD_LETTER_MAXLEN, '*', ...fields);
    logger.warn({ source, sourceId, reason: err.code, field: err.field }, 'redis ingest: message dead-lettered');
  };

  /** Publishes one ingested message; resolves false when it must be retried later (engine unavailable). */
  const handle = async (msg: string, source: 'stream' | 'pubsub', sourceId: string): Promise<boolean> => {
    const outcome = await options.handle(msg, source, sourceId);
    if (outcome.kind === 'retry') {
      logger.warn({ err: outcome.error, source, sourceId }, 'redis ingest: publish failed; will retry');
      return false;
    }
    if (outcome.kind === 'dead') for (const e of outcome.errors) await deadLetter(msg, source, sourceId, e);
    return true;
  };

  // ---- durable stream, consumer group ------------------------------------------------------------
  let readLoop: Promise<void> | undefined;
  if (reader) {
    const ensureGroup = async (): Promise<void> => {
      try {
        // From 0: entries written before any gateway ever ran are delivered too.
        await command.xgroup('CREATE', streamKey, INGEST_GROUP, '0', 'MKSTREAM');
      } catch (err) {
        if (!(err instanceof Error && err.message.startsWith('BUSYGROUP'))) throw err;
      }
    };
    let ownPending = true;
    const pause = (ms: number): Promise<void> => sleep(clock, ms);
    readLoop = (async () => {
      let groupReady = false;
      let backoff = 100;
      while (running) {
        try {
          if (!groupReady) {
            await ensureGroup();
            groupReady = true;
          }
          // Own pending entries first (after a restart, a failed publish or a claim), then new ones.
          const readingPending = ownPending;
          const args = [
            'GROUP',
            INGEST_GROUP,
            nodeId,
            'COUNT',
            BATCH,
            ...(readingPending ? [] : ['BLOCK', block]),
            'STREAMS',
            streamKey,
            readingPending ? '0' : '>',
          ];
          const entries = streamEntries(await reader.call('XREADGROUP', args));
          // A claim during a blocking read sets ownPending again: only a read of the pending list clears it.
          if (readingPending && entries.length === 0) ownPending = false;
          for (const [entryId, fields] of entries) {
            if (!running) break;
            if (fields === null) {
              // Deleted after it was delivered to this consumer (XDEL by an operator): nothing to publish.
              await command.xack(streamKey, INGEST_GROUP, entryId);
              continue;
            }
            const at = fields.indexOf('msg');
            const msg = at >= 0 && at % 2 === 0 ? (fields[at + 1] ?? '') : '';
            const done =
              at >= 0
                ? await handle(msg, 'stream', entryId)
                : (await deadLetter(fields.join(' '), 'stream', entryId, { code: 'invalid_body', message: 'the entry has no msg field' }), true);
            if (!done) {
              ownPending = true;
              await pause(backoff);
              backoff = Math.min(backoff * 2, 5000);
              break;
            }
            backoff = 100;
            await command.multi().xack(streamKey, INGEST_GROUP, entryId).xdel(streamKey, entryId).exec();
          }
        } catch (err) {
          if (!running) break;
          // Redis unreachable (or the group vanished with a wiped Redis): look again after a pause.
          groupReady = false;
          ownPending = true;
          logger.debug({ err }, 'redis ingest: stream read failed');
          await pause(backoff);
          backoff = Math.min(backoff * 2, 5000);
        }
      }
    })();
    const claim = (): void => {
      command
        .xautoclaim(streamKey, INGEST_GROUP, nodeId, claimIdle, '0-0', 'COUNT', BATCH)
        .then((r) => {
          const claimed = (r as [string, StreamEntry[]] | undefined)?.[1] ?? [];
          if (claimed.length > 0) {
            // Debug: an entry of this node's own that waits for a retry is claimed again too.
            logger.debug({ count: claimed.length }, 'redis ingest: claimed idle pending entries');
            ownPending = true;
          }
          // Then the consumers of stopped nodes (each process reads under its own id) go, their entries claimed.
          return pruneConsumers(command, streamKey, INGEST_GROUP, nodeId, claimIdle);
        })
        .catch((err: unknown) => logger.debug({ err }, 'redis ingest: claim failed'));
    };
    timers.push(clock.setInterval(claim, Math.max(100, Math.floor(claimIdle / 3))));
  }

  // ---- pub/sub, one leader -------------------------------------------------------------------------
  if (subscriber) {
    /**
     * Until when this node's lock holds for sure, by its own clock: when the command that took or renewed it was
     * sent, plus `leaderTtl`. A node frozen longer than that (SIGSTOP, a long pause) may have lost the lock to
     * another node, which then took the same messages: what arrives after it is held until the lock is read again.
     */
    let leaseUntil = 0;
    /** Messages that arrived after `leaseUntil`, waiting for the lock to be read again. */
    let lapsed: string[] = [];
    const deadLetterPubsub = (msg: string, reason: DeadLetterReason): void => {
      deadLetter(msg, 'pubsub', String(clock.now()), reason).catch((err: unknown) => logger.warn({ err }, 'redis ingest: dead-lettering failed'));
    };
    /** Publishes a PUBLISH ingest message; one the engine cannot publish now is dead-lettered (it cannot wait). */
    const take = (msg: string): void => {
      handle(msg, 'pubsub', String(clock.now())).then(
        (done) => {
          if (!done)
            deadLetterPubsub(msg, { code: 'engine_unavailable', message: 'the engine could not publish it, and a PUBLISH message cannot wait for a retry' });
        },
        (err: unknown) => logger.warn({ err }, 'redis ingest: pub/sub message failed'),
      );
    };
    /**
     * Messages taken while this node's lead was in doubt: published when the lock turned out to be still its own
     * (nobody else listened), else dead-lettered with the reason, since the node that took over may have published
     * them too (a message published twice, with two seqs, is worse than one an operator replays).
     */
    const settleLapsed = (stillLeader: boolean): void => {
      const msgs = lapsed;
      lapsed = [];
      for (const msg of msgs) {
        if (stillLeader) take(msg);
        else deadLetterPubsub(msg, LEADER_CHANGED);
      }
    };
    subscriber.on('message', (ch: string, msg: string) => {
      if (ch !== channel) return;
      if (!leader) {
        // Still subscribed although it stepped down (its UNSUBSCRIBE is on its way): the new leader may take it too.
        deadLetterPubsub(msg, LEADER_CHANGED);
        return;
      }
      if (clock.now() > leaseUntil) {
        lapsed.push(msg);
        if (lapsed.length === 1) void campaign();
        return;
      }
      take(msg);
    });
    // A new connection holds no subscription: the leader subscribes again.
    subscriber.on('ready', () => {
      if (leader) subscriber.subscribe(channel).catch((err: unknown) => logger.debug({ err }, 'redis ingest: resubscribing failed'));
    });
    const setLeader = async (now: boolean): Promise<void> => {
      if (now === leader) return;
      leader = now;
      if (now) await subscriber.subscribe(channel);
      else await subscriber.unsubscribe(channel);
      logger.info({ node: nodeId }, now ? 'redis ingest: this node takes PUBLISH ingest' : 'redis ingest: this node no longer takes PUBLISH ingest');
    };
    const campaign = async (): Promise<void> => {
      if (!running) return;
      const sentAt = clock.now();
      try {
        const held = leader ? await command.eval(RENEW, 1, lockKey, nodeId, leaderTtl) : await command.set(lockKey, nodeId, 'PX', leaderTtl, 'NX');
        const leads = held === 1 || held === 'OK';
        if (leads) leaseUntil = sentAt + leaderTtl;
        settleLapsed(leads && leader);
        await setLeader(leads);
      } catch (err) {
        // Without Redis no lock can be renewed: step down so two nodes never both take a message.
        settleLapsed(false);
        await setLeader(false).catch(() => undefined);
        logger.debug({ err }, 'redis ingest: leader lock failed');
      }
    };
    await campaign();
    timers.push(clock.setInterval(() => void campaign(), Math.max(50, Math.floor(leaderTtl / 3))));
  }

  return {
    get leader() {
      return leader;
    },
    async close() {
      running = false;
      for (const t of timers) clock.clearInterval(t);
      if (leader) await command.eval(RELEASE, 1, lockKey, nodeId).catch(() => undefined);
      leader = false;
      // Ends a blocking read at once; the loop sees `running` false and stops.
      reader?.disconnect();
      await readLoop;
      await Promise.all([command, subscriber].map((c) => c?.quit().catch(() => c.disconnect())));
    },
  };
}
