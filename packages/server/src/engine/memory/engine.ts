import { channelKind, type StreamPosition } from '@herald/protocol';
import { systemClock, type Clock, type TimerHandle } from '../../util/clock.js';
import { EngineUnavailableError } from '../../util/errors.js';
import { defaultMetaTtl, ENGINE_DEFAULTS } from '../defaults.js';
import { sizeOf } from '../../util/one-or-set.js';
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
import { MemoryHistory, type ChannelRecord } from './history.js';
import { IdempotencyIndex } from './idempotency.js';
import { MemoryMembers } from './members.js';
import { MemoryPresence } from './presence.js';
import { MemoryInbox } from './inbox.js';
import { MemoryLifecycle } from './lifecycle.js';
import { MemoryOutbox } from './outbox.js';
import type { LifecycleOptions } from '../outbox.js';

/** Options of the in-memory engine. */
export interface MemoryEngineOptions {
  /** Messages kept per channel for recovery. @default 1000 */
  historySize?: number;
  /** How long a message stays in history, in ms. @default 600000 (10 minutes) */
  historyTtl?: number;
  /** How long an idle, unsubscribed channel keeps its seq and epoch after its last publish or read, in ms. @default max(historyTtl, 3600000) */
  historyMetaTtl?: number;
  /** Bytes of message frames kept per channel; a larger message is published but not kept. @default 1048576 */
  historyMaxBytes?: number;
  /** Bytes of history kept by the process; past it the least recently published channels lose their oldest messages. @default 268435456 */
  historyTotalBytes?: number;
  /** Idempotency window for publish ids, in ms. @default 300000 (5 minutes) */
  idempotencyTtl?: number;
  /** Most publish ids remembered at once (about 40 bytes each); past it the oldest is forgotten before its window ends, counted. @default 3000000 */
  idempotencyMaxKeys?: number;
  /** Told when ids are forgotten before their window ended (the bound was reached). */
  onEarlyEviction?: (n: number) => void;
  /** Most delivery receipts kept at once (about 180 bytes each); past it the oldest goes before its message's expiry, counted. @default 1000000 */
  inboxMaxReceipts?: number;
  /** Bytes every user's inbox messages may take together (frame plus 512 bytes each, and 256 per user with messages); past it a put is refused with `inbox_storage_full`. @default 268435456 */
  inboxTotalBytes?: number;
  /** Lifecycle events to queue for the webhooks (user online/offline, channel occupied/vacated). @default none */
  lifecycle?: LifecycleOptions;
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
    {
      size: options.historySize ?? ENGINE_DEFAULTS.historySize,
      ttl: historyTtl,
      metaTtl: options.historyMetaTtl ?? defaultMetaTtl(historyTtl),
      maxBytes: options.historyMaxBytes ?? ENGINE_DEFAULTS.historyMaxBytes,
      totalBytes: options.historyTotalBytes ?? ENGINE_DEFAULTS.historyTotalBytes,
    },
    now,
  );
  const outbox = new MemoryOutbox(now);
  const lifecycle = options.lifecycle && new MemoryLifecycle(options.lifecycle, clock, outbox);
  const presence = new MemoryPresence(store, lifecycle);
  const members = new MemoryMembers();
  const idempotencyTtl = options.idempotencyTtl ?? ENGINE_DEFAULTS.idempotencyTtl;
  const maxKeys = options.idempotencyMaxKeys ?? ENGINE_DEFAULTS.idempotencyMaxKeys;
  let earlyEvictions = 0;
  const early = (n: number): void => {
    earlyEvictions += n;
    options.onEarlyEviction?.(n);
  };
  const published = new IdempotencyIndex(idempotencyTtl, maxKeys, now, early);
  const direct = new IdempotencyIndex(idempotencyTtl, maxKeys, now, early);
  const inboxIds = new IdempotencyIndex(idempotencyTtl, maxKeys, now, early);
  const inbox = new MemoryInbox(
    now,
    (msg) => {
      if (handlers && !closed) handlers.inbox(msg);
    },
    inboxIds,
    options.inboxMaxReceipts ?? ENGINE_DEFAULTS.inboxMaxReceipts,
    options.inboxTotalBytes ?? ENGINE_DEFAULTS.inboxTotalBytes,
  );
  let handlers: EngineHandlers | undefined;
  let sweeper: TimerHandle | undefined;
  let closed = false;

  const alive = (): EngineHandlers => {
    if (!handlers || closed) throw new EngineUnavailableError('the memory engine is not running');
    return handlers;
  };

  /**
   * With `counts`, the publish answers its channel's subscribers and its user's connections itself: both are in
   * the channel's record (`rec`; undefined when it has none, so nobody is there).
   */
  const counted = (input: PublishInput, rec: ChannelRecord | undefined, outcome: PublishOutcome): PublishOutcome => {
    if (input.counts !== true) return outcome;
    outcome.subscribers = sizeOf(rec?.members);
    if (channelKind(input.channel) === 'user') outcome.online = sizeOf(rec?.conns);
    return outcome;
  };

  const broker: Broker = {
    publish(input: PublishInput): Promise<PublishOutcome> {
      const h = alive();
      const key = input.idempotencyKey === undefined ? undefined : `${input.idempotencyKey}\u0000${input.channel}`;
      if (key !== undefined) {
        const seen = published.get(key);
        if (seen) return Promise.resolve(counted(input, store.peek(input.channel), { seq: seen.seq, epoch: seen.epoch, duplicate: true }));
      }
      const rec = store.record(input.channel);
      const msg = store.appendTo(rec, input.channel, (seq) => encodeMessage(input.type, input.channel, input.payloadJson, seq));
      const outcome: PublishOutcome = { seq: msg.seq, epoch: msg.epoch, duplicate: false };
      if (key !== undefined) published.set(key, { seq: msg.seq, epoch: msg.epoch });
      // History keeps a copy of its own: the exclusion belongs to this live delivery only.
      if (input.exclude !== undefined) msg.exclude = input.exclude;
      if (rec.subscribed) h.message(msg);
      return Promise.resolve(counted(input, rec, outcome));
    },
    broadcast(input: BroadcastInput): Promise<void> {
      const h = alive();
      if (store.peek(input.channel)?.subscribed === true) h.message(broadcastMessage(input));
      return Promise.resolve();
    },
    publishDirect(input: DirectInput): Promise<boolean> {
      const h = alive();
      const key = input.idempotencyKey === undefined ? undefined : `${input.idempotencyKey}\u0000${clientChannel(input.client)}`;
      if (key !== undefined) {
        if (direct.get(key) !== undefined) return Promise.resolve(true);
      }
      const ok = h.direct(input.client, directMessage(input.client, encodeMessage(input.type, clientChannel(input.client), input.payloadJson, 0)));
      // Only deliveries are remembered: a retry after "no such client" tries again.
      if (key !== undefined && ok) direct.set(key, { seq: 0, epoch: '' });
      return Promise.resolve(ok);
    },
    subscribe(channel) {
      store.record(channel).subscribed = true;
      return Promise.resolve();
    },
    unsubscribe(channel) {
      const rec = store.peek(channel);
      if (rec !== undefined) rec.subscribed = false;
      store.release(channel);
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
    usage: () => ({
      channels: store.usage.channels,
      historyBytes: store.usage.bytes,
      historyBufferBytes: store.usage.buffers,
      idempotencyKeys: published.size + direct.size + inboxIds.size,
      idempotencyEarlyEvictions: earlyEvictions,
      inboxMessages: inbox.usage.messages,
      inboxReceipts: inbox.usage.receipts,
      inboxReceiptEvictions: inbox.usage.receiptEvictions,
      inboxBytes: inbox.usage.bytes,
      inboxRejected: inbox.usage.rejected,
    }),
    broker,
    history,
    presence,
    inbox,
    outbox,
    members,
    start(h) {
      handlers = h;
      closed = false;
      sweeper = clock.setInterval(
        () => {
          store.sweep();
          inbox.sweep();
        },
        Math.min(60_000, historyTtl),
      );
      return Promise.resolve();
    },
    check() {
      return closed ? Promise.reject(new EngineUnavailableError('memory engine closed')) : Promise.resolve(undefined);
    },
    close() {
      closed = true;
      if (sweeper !== undefined) clock.clearInterval(sweeper);
      return Promise.resolve();
    },
  };
}
