import type { ClientId, UserId } from '@herald/protocol';
import { HeraldError } from '../../util/errors.js';
import { randomId } from '../../util/random-id.js';
import { encodeInboxMessage, type Inbox, type InboxMessage, type InboxPutInput, type InboxPutOutcome, type Receipt } from '../inbox.js';
import type { IdempotencyIndex } from './idempotency.js';

/**
 * `frame` in a buffer of its own. A short Buffer made from a string is a slice of Node's shared 8 KiB pool, and a
 * kept slice keeps the whole slab: an inbox message lives for days, so each could hold 8 KiB for its 200 bytes.
 */
function ownCopy(frame: Buffer): Buffer {
  const copy = Buffer.allocUnsafeSlow(frame.length);
  frame.copy(copy);
  return copy;
}

/**
 * What a kept message takes besides its frame (bytes), counted towards `maxBytes`: its object, its id string, its
 * Map entry and the Buffer (about 370 bytes of JS heap measured with 300 000 puts of a 158-byte frame, plus the
 * buffer's native bookkeeping and allocation).
 */
export const INBOX_MESSAGE_OVERHEAD = 512;
/** What a user's box takes while it holds messages (its object and Map: about 230 bytes of JS heap, measured). */
export const INBOX_BOX_OVERHEAD = 256;

/** Most often (ms) a put at the bound sweeps every inbox of expired messages before it is refused. */
const SWEEP_AT_BOUND_EVERY = 1000;

/** What a message counts towards the bound on every inbox's bytes (its box's share aside). */
const footprint = (m: InboxMessage): number => m.frame.length + INBOX_MESSAGE_OVERHEAD;

/** One user's inbox: messages in insertion order (publish order), and a bound on when the first of them expires. */
interface Box {
  readonly messages: Map<string, InboxMessage>;
  /** No message expires before this (ms): a touch before it has nothing to sweep. */
  soonest: number;
}

/**
 * Inboxes in this process (see Inbox in engine/inbox.ts): per user a Map in insertion order (which is publish
 * order), swept of expired messages when it is touched once one may have expired, and by `sweep`; receipts in a
 * Map beside them, in creation order, at most `maxReceipts` (past it the oldest goes first, counted). The ids of
 * keyed puts are kept in the engine's bounded idempotency index (`ids`), as publish ids are: about 40 bytes each, at
 * most `idempotencyMaxKeys`, for the engine's `idempotencyTtl`.
 *
 * Every user's messages together are bounded in bytes (`maxBytes`: frames plus INBOX_MESSAGE_OVERHEAD each, and
 * INBOX_BOX_OVERHEAD for each user's box that holds any): a put past it is refused (`inbox_storage_full`, HTTP 507)
 * rather than dropping a message someone else was told was stored. A put into a box at its own bound counts the
 * oldest message it replaces, so a full process still takes a message that only replaces one.
 */
export class MemoryInbox implements Inbox {
  private readonly users = new Map<UserId, Box>();
  private readonly receipts = new Map<string, Receipt>();
  private readonly watched = new Set<UserId>();
  /** Messages in every user's box, and what they count towards `maxBytes`. */
  private messages = 0;
  private bytes = 0;
  /** Puts refused because `maxBytes` was reached. */
  private rejected = 0;
  /** When a put at the bound last swept expired messages (ms). */
  private sweptAtBound = -Infinity;
  /** Receipts dropped before their message's expiry because `maxReceipts` was reached. */
  private receiptEvictions = 0;

  constructor(
    private readonly now: () => number,
    /** Hands a new message to the node (set when the engine starts). */
    private readonly deliver: (msg: InboxMessage) => void,
    /** user + key -> the message id, kept as the index's string (`epoch`; its `seq` is unused). */
    private readonly ids: IdempotencyIndex,
    /** Most receipts kept at once (at least 1). */
    private readonly maxReceipts: number,
    /** Most bytes every user's messages may count (see INBOX_MESSAGE_OVERHEAD). */
    private readonly maxBytes: number,
  ) {}

  put(input: InboxPutInput, opts: { max: number; idempotencyTtl: number }): Promise<InboxPutOutcome> {
    const now = this.now();
    const key = input.idempotencyKey === undefined ? undefined : `${input.user}\u0000${input.idempotencyKey}`;
    const seen = key === undefined ? undefined : this.ids.get(key);
    if (seen) return Promise.resolve({ id: seen.epoch, duplicate: true, live: this.watched.has(input.user), dropped: 0 });
    const box = this.box(input.user, now);
    const id = randomId(12);
    const frame = encodeInboxMessage(input.type, input.user, input.payloadJson, id, now);
    const added = (): number => frame.length + INBOX_MESSAGE_OVERHEAD + (box.messages.size === 0 ? INBOX_BOX_OVERHEAD : 0);
    const fits = (): boolean => this.bytes + added() - this.oldestBytes(box, box.messages.size + 1 - opts.max) <= this.maxBytes;
    // At the bound, expired messages still counted (the sweep timer runs every minute) make room first: one sweep a
    // second at most, so a flood of refused puts is not a scan of every inbox each.
    if (!fits() && now - this.sweptAtBound >= SWEEP_AT_BOUND_EVERY) {
      this.sweptAtBound = now;
      this.sweep();
    }
    if (!fits()) {
      this.rejected += 1;
      const err = new HeraldError(
        'inbox_storage_full',
        `the inboxes hold ${this.bytes} bytes of the ${this.maxBytes} they may (inboxTotalBytes): the message for ${input.user.slice(0, 64)} was not stored`,
        { extra: { limit: this.maxBytes } },
      );
      return Promise.reject(err);
    }
    const msg: InboxMessage = { id, user: input.user, frame: ownCopy(frame), time: now, expires: now + input.ttl, receipt: input.receipt };
    this.bytes += added();
    box.messages.set(id, msg);
    this.messages += 1;
    box.soonest = Math.min(box.soonest, msg.expires);
    this.users.set(input.user, box);
    if (input.receipt) {
      this.receipts.set(id, { id, user: input.user, created: now, expires: msg.expires, delivered: 0, deliveredAt: null, acked: null });
      if (this.receipts.size > this.maxReceipts) this.dropOldestReceipt(now);
    }
    let dropped = 0;
    for (const oldest of box.messages.values()) {
      if (box.messages.size <= opts.max) break;
      this.forget(box, oldest);
      dropped += 1;
    }
    if (key !== undefined) this.ids.set(key, { seq: 0, epoch: id });
    const live = this.watched.has(input.user);
    if (live) this.deliver(msg);
    return Promise.resolve({ id, duplicate: false, live, dropped });
  }

  list(user: UserId, limit: number): Promise<InboxMessage[]> {
    const out: InboxMessage[] = [];
    for (const m of this.box(user, this.now()).messages.values()) {
      if (out.length >= limit) break;
      out.push(m);
    }
    return Promise.resolve(out);
  }

  remove(user: UserId, ids: readonly string[] | 'all'): Promise<InboxMessage[]> {
    const box = this.box(user, this.now());
    const gone = ids === 'all' ? [...box.messages.values()] : ids.flatMap((id) => box.messages.get(id) ?? []);
    for (const m of gone) this.forget(box, m);
    if (box.messages.size === 0) this.users.delete(user);
    return Promise.resolve(gone);
  }

  watch(user: UserId): Promise<void> {
    this.watched.add(user);
    return Promise.resolve();
  }

  unwatch(user: UserId): Promise<void> {
    this.watched.delete(user);
    return Promise.resolve();
  }

  delivered(ids: readonly string[], connections: number, at: number): Promise<void> {
    for (const id of ids) {
      const r = this.receipts.get(id);
      if (!r) continue;
      r.delivered += connections;
      r.deliveredAt ??= at;
    }
    return Promise.resolve();
  }

  acked(ids: readonly string[], client: ClientId, at: number): Promise<string[]> {
    const first: string[] = [];
    for (const id of ids) {
      const r = this.receipts.get(id);
      if (!r || r.acked) continue;
      r.acked = { at, client };
      first.push(id);
    }
    return Promise.resolve(first);
  }

  receipt(id: string): Promise<Receipt | null> {
    const r = this.receipts.get(id);
    if (r && r.expires <= this.now()) this.receipts.delete(id);
    return Promise.resolve(r && r.expires > this.now() ? { ...r, acked: r.acked && { ...r.acked } } : null);
  }

  /**
   * What is kept now: messages (every user's), the bytes they count, receipts; the receipts dropped early and the
   * puts refused for `maxBytes` (the engine's `usage`).
   */
  get usage(): { messages: number; bytes: number; receipts: number; receiptEvictions: number; rejected: number } {
    return { messages: this.messages, bytes: this.bytes, receipts: this.receipts.size, receiptEvictions: this.receiptEvictions, rejected: this.rejected };
  }

  /** Takes a message out of its user's box, and out of the counts. */
  private forget(box: Box, m: InboxMessage): void {
    if (!box.messages.delete(m.id)) return;
    this.messages -= 1;
    this.bytes -= footprint(m) + (box.messages.size === 0 ? INBOX_BOX_OVERHEAD : 0);
  }

  /** What the `n` oldest messages of the box count (0 when `n` is not positive). */
  private oldestBytes(box: Box, n: number): number {
    let bytes = 0;
    for (const m of box.messages.values()) {
      if (n-- <= 0) break;
      bytes += footprint(m);
    }
    return bytes;
  }

  /**
   * Makes room for a receipt: the oldest goes (Map order is creation order). One that had expired anyway is not an
   * early eviction; its query answered nothing already.
   */
  private dropOldestReceipt(now: number): void {
    for (const [id, r] of this.receipts) {
      this.receipts.delete(id);
      if (r.expires > now) this.receiptEvictions += 1;
      return;
    }
  }

  /** Drops what expired: messages and receipts (the engine's sweep timer; the ids expire in their index). */
  sweep(): void {
    const now = this.now();
    for (const user of [...this.users.keys()]) this.box(user, now);
    for (const [id, r] of this.receipts) if (r.expires <= now) this.receipts.delete(id);
  }

  /**
   * The user's inbox without its expired messages (created empty, forgotten again when it stays empty). Its
   * messages are looked at only once the first of them may have expired: a put, list or remove is not a scan of the
   * whole inbox (up to `inboxMaxMessages`) each time.
   */
  private box(user: UserId, now: number): Box {
    let box = this.users.get(user);
    if (!box) this.users.set(user, (box = { messages: new Map(), soonest: Infinity }));
    if (box.soonest <= now) {
      let soonest = Infinity;
      for (const m of box.messages.values()) {
        if (m.expires <= now) this.forget(box, m);
        else if (m.expires < soonest) soonest = m.expires;
      }
      box.soonest = soonest;
    }
    if (box.messages.size === 0) this.users.delete(user);
    return box;
  }
}
