import type { ChannelName, StreamPosition } from '@herald/protocol';
import { systemClock, type Clock, type TimerHandle } from '../../util/clock.js';
import { EngineUnavailableError } from '../../util/errors.js';
import { defaultMetaTtl, ENGINE_DEFAULTS } from '../defaults.js';
import { broadcastMessage, clientChannel, directMessage, encodeMessage } from '../message.js';
import type {
  BroadcastInput,
  Broker,
  DirectInput,
  DisconnectTarget,
  Engine,
  EngineHandlers,
  History,
  HistoryPage,
  PublishInput,
  PublishOutcome,
  Recovery,
} from '../types.js';
import { MemoryHistory } from './history.js';
import { IdempotencyCache } from './idempotency.js';
import { MemoryMembers } from './members.js';
import { MemoryPresence } from './presence.js';

/** Options of the in-memory engine. */
export interface MemoryEngineOptions {
  /** Messages kept per channel for recovery. @default 1000 */
  historySize?: number;
  /** How long a message stays in history, in ms. @default 600000 (10 minutes) */
  historyTtl?: number;
  /** How long an idle, unsubscribed channel keeps its seq and epoch after its last publish or read, in ms. @default max(historyTtl, 3600000) */
  historyMetaTtl?: number;
  /** Idempotency window for publish ids, in ms. @default 300000 (5 minutes) */
  idempotencyTtl?: number;
  /** Most idempotency keys remembered at once (oldest forgotten first). @default 100000 */
  idempotencyMaxKeys?: number;
  /** @default the system clock */
  clock?: Clock;
}

/**
 * The default engine: one process, everything in memory, no external service. History does not survive
 * a restart; clients learn that through a new epoch and `recovered: false`.
 */
export function createMemoryEngine(options: MemoryEngineOptions = {}): Engine {
  const clock = options.clock ?? systemClock;
  const now = () => clock.now();
  const historyTtl = options.historyTtl ?? ENGINE_DEFAULTS.historyTtl;
  const store = new MemoryHistory(
    { size: options.historySize ?? ENGINE_DEFAULTS.historySize, ttl: historyTtl, metaTtl: options.historyMetaTtl ?? defaultMetaTtl(historyTtl) },
    now,
  );
  const presence = new MemoryPresence();
  const members = new MemoryMembers();
  const idempotencyTtl = options.idempotencyTtl ?? ENGINE_DEFAULTS.idempotencyTtl;
  const maxKeys = options.idempotencyMaxKeys ?? ENGINE_DEFAULTS.idempotencyMaxKeys;
  const published = new IdempotencyCache<PublishOutcome>(idempotencyTtl, maxKeys, now);
  const direct = new IdempotencyCache<boolean>(idempotencyTtl, maxKeys, now);
  const subscribed = new Set<ChannelName>();
  let handlers: EngineHandlers | undefined;
  let sweeper: TimerHandle | undefined;
  let closed = false;

  const alive = (): EngineHandlers => {
    if (!handlers || closed) throw new EngineUnavailableError('the memory engine is not running');
    return handlers;
  };

  const broker: Broker = {
    publish(input: PublishInput): Promise<PublishOutcome> {
      const h = alive();
      const key = input.idempotencyKey === undefined ? undefined : `${input.idempotencyKey}\u0000${input.channel}`;
      if (key !== undefined) {
        const seen = published.get(key);
        if (seen) return Promise.resolve({ ...seen, duplicate: true });
      }
      const msg = store.append(input.channel, (seq) => encodeMessage(input.type, input.channel, input.payloadJson, seq));
      const outcome: PublishOutcome = { seq: msg.seq, epoch: msg.epoch, duplicate: false };
      if (key !== undefined) published.set(key, outcome);
      // The stored message is shared with history: the exclusion belongs to this live delivery only.
      if (subscribed.has(input.channel)) h.message(input.exclude === undefined ? msg : { ...msg, exclude: input.exclude });
      return Promise.resolve(outcome);
    },
    broadcast(input: BroadcastInput): Promise<void> {
      const h = alive();
      if (subscribed.has(input.channel)) h.message(broadcastMessage(input));
      return Promise.resolve();
    },
    publishDirect(input: DirectInput): Promise<boolean> {
      const h = alive();
      const key = input.idempotencyKey === undefined ? undefined : `${input.idempotencyKey}\u0000${clientChannel(input.client)}`;
      if (key !== undefined) {
        const seen = direct.get(key);
        if (seen !== undefined) return Promise.resolve(seen);
      }
      const ok = h.direct(input.client, directMessage(input.client, encodeMessage(input.type, clientChannel(input.client), input.payloadJson, 0)));
      if (key !== undefined && ok) direct.set(key, ok);
      return Promise.resolve(ok);
    },
    subscribe(channel) {
      subscribed.add(channel);
      return Promise.resolve();
    },
    unsubscribe(channel) {
      subscribed.delete(channel);
      return Promise.resolve();
    },
    disconnect(target: DisconnectTarget): Promise<number> {
      return Promise.resolve(alive().disconnect(target));
    },
  };

  const history: History = {
    position: (channel): Promise<StreamPosition> => Promise.resolve(store.position(channel)),
    recover: (channel, since, epoch): Promise<Recovery> => Promise.resolve(store.recover(channel, since, epoch)),
    read: (channel, opts): Promise<HistoryPage> => Promise.resolve(store.read(channel, opts)),
  };

  return {
    name: 'memory',
    broker,
    history,
    presence,
    members,
    start(h) {
      handlers = h;
      closed = false;
      sweeper = clock.setInterval(() => store.sweep((ch) => subscribed.has(ch)), Math.min(60_000, historyTtl));
      return Promise.resolve();
    },
    check() {
      return closed ? Promise.reject(new EngineUnavailableError('memory engine closed')) : Promise.resolve();
    },
    close() {
      closed = true;
      if (sweeper !== undefined) clock.clearInterval(sweeper);
      return Promise.resolve();
    },
  };
}
