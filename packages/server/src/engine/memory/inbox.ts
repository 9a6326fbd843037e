import type { ClientId, UserId } from '@herald/protocol';
import { randomId } from '../../util/random-id.js';
import { encodeInboxMessage, type Inbox, type InboxMessage, type InboxPutInput, type InboxPutOutcome, type Receipt } from '../inbox.js';

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
 * Inboxes in this process (see Inbox in engine/inbox.ts): per user a Map in insertion order (which is publish
 * order), swept of expired messages whenever it is touched and by `sweep`; receipts in a Map beside them.
 */
export class MemoryInbox implements Inbox {
  private readonly users = new Map<UserId, Map<string, InboxMessage>>();
  private readonly idempotency = new Map<string, { id: string; until: number }>();
  private readonly receipts = new Map<string, Receipt>();
  private readonly watched = new Set<UserId>();

  constructor(
    private readonly now: () => number,
    /** Hands a new message to the node (set when the engine starts). */
    private readonly deliver: (msg: InboxMessage) => void,
  ) {}

  put(input: InboxPutInput, opts: { max: number; idempotencyTtl: number }): Promise<InboxPutOutcome> {
    const now = this.now();
    const key = input.idempotencyKey === undefined ? undefined : `${input.user}\u0000${input.idempotencyKey}`;
    const seen = key === undefined ? undefined : this.idempotency.get(key);
    if (seen && seen.until > now) return Promise.resolve({ id: seen.id, duplicate: true, live: this.watched.has(input.user), dropped: 0 });
    const box = this.box(input.user, now);
    const id = randomId(12);
    const msg: InboxMessage = {
      id,
      user: input.user,
      frame: ownCopy(encodeInboxMessage(input.type, input.user, input.payloadJson, id, now)),
      time: now,
      expires: now + input.ttl,
      receipt: input.receipt,
    };
    box.set(id, msg);
    this.users.set(input.user, box);
    if (input.receipt) this.receipts.set(id, { id, user: input.user, created: now, expires: msg.expires, delivered: 0, deliveredAt: null, acked: null });
    let dropped = 0;
    for (const oldest of box.keys()) {
      if (box.size <= opts.max) break;
      box.delete(oldest);
      dropped += 1;
    }
    if (key !== undefined) this.idempotency.set(key, { id, until: now + opts.idempotencyTtl });
    const live = this.watched.has(input.user);
    if (live) this.deliver(msg);
    return Promise.resolve({ id, duplicate: false, live, dropped });
  }

  list(user: UserId, limit: number): Promise<InboxMessage[]> {
    return Promise.resolve([...this.box(user, this.now()).values()].slice(0, limit));
  }

  remove(user: UserId, ids: readonly string[] | 'all'): Promise<InboxMessage[]> {
    const box = this.box(user, this.now());
    const gone = ids === 'all' ? [...box.values()] : ids.flatMap((id) => box.get(id) ?? []);
    for (const m of gone) box.delete(m.id);
    if (box.size === 0) this.users.delete(user);
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

  /** Drops what expired: messages, receipts, idempotency keys (the engine's sweep timer). */
  sweep(): void {
    const now = this.now();
    for (const user of [...this.users.keys()]) this.box(user, now);
    for (const [id, r] of this.receipts) if (r.expires <= now) this.receipts.delete(id);
    for (const [k, v] of this.idempotency) if (v.until <= now) this.idempotency.delete(k);
  }

  /** The user's inbox without its expired messages (created empty, forgotten again when it stays empty). */
  private box(user: UserId, now: number): Map<string, InboxMessage> {
    let box = this.users.get(user);
    if (!box) this.users.set(user, (box = new Map()));
    for (const [id, m] of box) if (m.expires <= now) box.delete(id);
    if (box.size === 0) this.users.delete(user);
    return box;
  }
}
