import type { ClientId, UserId } from '@herald/protocol';
import type { Engine } from '../engine/types.js';
import type { InboxMessage } from '../engine/inbox.js';
import type { Logger } from '../util/logger.js';
import type { Connection } from './connection.js';
import type { Stats } from './stats.js';

/** An acknowledgement with a receipt, the first for its message: what `message.acked` tells the backend. */
export interface AckedMessage {
  message: string;
  user: UserId;
  client: ClientId;
  /** When it was acknowledged (ms). */
  time: number;
}

/** Who hears of acknowledgements with receipts (the webhooks); set after construction. */
export interface InboxListener {
  acked(acks: readonly AckedMessage[]): void;
}

/** What protocols do with a connection's inbox (InboxDelivery implements it). */
export interface InboxPort {
  /** First half of the replay at connect: live inbox messages are held from now on; resolves the stored ones. */
  replay(conn: Connection): Promise<InboxMessage[]>;
  /** Second half: the frames to send (the stored messages, then those held meanwhile, each once); live from now on. */
  finish(conn: Connection, stored: readonly InboxMessage[]): Buffer[];
  /** Acknowledges messages of the connection's user: removed for every device; receipts and `message.acked`. */
  ack(conn: Connection, ids: readonly string[]): Promise<void>;
}

/** Most messages replayed at connect (the inbox cap bounds it too). */
const REPLAY_LIMIT = 10_000;

/**
 * The protocol-neutral half of the per-user inbox (docs/inbox.md): replays a user's unacknowledged messages to
 * each connection as it opens (holding live ones meanwhile, so each arrives once and in order), hands live ones
 * to the user's open connections, counts deliveries of messages with receipts, and turns acknowledgements into
 * removals, receipts and `message.acked` events. A connection's protocol writes the frames (`codec.inbox`); a
 * protocol without one gets no inbox messages.
 */
export class InboxDelivery implements InboxPort {
  listener: InboxListener | undefined;

  constructor(
    private readonly engine: Engine,
    private readonly stats: Stats,
    private readonly logger: Logger,
    private readonly now: () => number,
  ) {}

  /** A live message for the user's local connections (the hub hands over its user's connections). */
  deliver(msg: InboxMessage, conns: Iterable<Connection>): void {
    let n = 0;
    for (const conn of conns) {
      const codec = conn.handler.codec;
      if (!codec.inbox || conn.inboxHeld === undefined || conn.state === 'closed') continue;
      if (conn.inboxHeld !== null) conn.inboxHeld.push(msg);
      else if (conn.inboxSent === undefined || fresh(conn, msg.id)) {
        conn.enqueue(codec.inbox(msg));
        n += 1;
      }
    }
    this.stats.delivered += n;
    if (msg.receipt && n > 0) this.count([msg.id], n);
  }

  replay(conn: Connection): Promise<InboxMessage[]> {
    const user = conn.identity.user;
    if (user === null || !conn.handler.codec.inbox) return Promise.resolve([]);
    conn.inboxHeld = [];
    return this.engine.inbox.list(user, REPLAY_LIMIT);
  }

  finish(conn: Connection, stored: readonly InboxMessage[]): Buffer[] {
    const held = conn.inboxHeld ?? [];
    const encode = conn.handler.codec.inbox;
    conn.inboxHeld = null;
    if (!encode) return [];
    const seen = new Set<string>();
    const out: Buffer[] = [];
    const receipts: string[] = [];
    for (const m of [...stored, ...held]) {
      if (seen.has(m.id)) continue;
      seen.add(m.id);
      out.push(encode(m));
      if (m.receipt) receipts.push(m.id);
    }
    this.stats.delivered += out.length;
    this.count(receipts, 1);
    if (seen.size > 0) conn.inboxSent = seen;
    return out;
  }

  async ack(conn: Connection, ids: readonly string[]): Promise<void> {
    const user = conn.identity.user;
    if (user === null) return;
    const removed = await this.engine.inbox.remove(user, ids);
    const receipts = removed.filter((m) => m.receipt).map((m) => m.id);
    if (receipts.length === 0) return;
    const time = this.now();
    // Only the first acknowledgement of a message is told (two devices may ack it at once).
    const first = await this.engine.inbox.acked(receipts, conn.id, time);
    if (first.length > 0) this.listener?.acked(first.map((message) => ({ message, user, client: conn.id, time })));
  }

  private count(ids: string[], connections: number): void {
    if (ids.length === 0) return;
    this.engine.inbox.delivered(ids, connections, this.now()).catch((err: unknown) => this.logger.warn({ err }, 'counting receipt deliveries failed'));
  }
}

/**
 * Whether a live inbox message goes to a connection whose replay sent `inboxSent`: not a late copy of one of
 * those; the first one that is not lifts the check, since a user's live inbox messages arrive in publish order.
 */
function fresh(conn: Connection, id: string): boolean {
  if (conn.inboxSent?.has(id)) return false;
  conn.inboxSent = undefined;
  return true;
}
