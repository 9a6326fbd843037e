import type { ChannelName, StreamPosition } from '@herald/protocol';
import { systemClock, type Clock, type TimerHandle } from '../clock.js';
import { EngineUnavailableError } from '../errors.js';
import { encodeMessage } from './frame.js';
import { IdempotencyCache } from './idempotency.js';
import { MemoryHistory } from './memory-history.js';
import { MemoryPresence } from './memory-presence.js';
import type { Broker, DirectInput, DisconnectTarget, Engine, EngineHandlers, History, HistoryPage, PublishInput, PublishOutcome, Recovery } from './types.js';

/** Options of the in-memory engine. */
export interface MemoryEngineOptions {
  /** Messages kept per channel for recovery. @default 1000 */
  historySize?: number;
  /** How long a message stays in history, in ms. @default 600000 (10 minutes) */
  historyTtl?: number;
  /** How long an idle, unsubscribed channel keeps its seq and epoch after its history expired, in ms. @default 3600000 */
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
  const historyTtl = options.historyTtl ?? 600_000;
  const store = new MemoryHistory(
    { size: options.historySize ?? 1000, ttl: historyTtl, metaTtl: options.historyMetaTtl ?? Math.max(historyTtl, 3_600_000) },
    now,
  );
  const presence = new MemoryPresence();
  const published = new IdempotencyCache<PublishOutcome>(options.idempotencyTtl ?? 300_000, options.idempotencyMaxKeys ?? 100_000, now);
  const direct = new IdempotencyCache<boolean>(options.idempotencyTtl ?? 300_000, options.idempotencyMaxKeys ?? 100_000, now);
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
      if (subscribed.has(input.channel)) h.message(msg);
      return Promise.resolve(outcome);
    },
    publishDirect(input: DirectInput): Promise<boolean> {
      const h = alive();
      const key = input.idempotencyKey === undefined ? undefined : `${input.idempotencyKey}\u0000client:${input.client}`;
      if (key !== undefined) {
        const seen = direct.get(key);
        if (seen !== undefined) return Promise.resolve(seen);
      }
      const ok = h.direct(input.client, encodeMessage(input.type, `client:${input.client}`, input.payloadJson, 0));
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
