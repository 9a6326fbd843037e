import type { Message } from './types.js';

/** Inbox ids remembered as handled, so a redelivery (a reconnect before the ack arrived) is not handed over twice. */
const REMEMBERED = 2000;

/**
 * Inbox messages on the client side (internal; docs/inbox.md): each reaches the app once, however often the
 * server sends it (it does again at every connect until acknowledged), and is acknowledged after the app's
 * handlers returned (`auto`) or when the app calls `message.ack()` (`manual`). An acknowledgement lost with a
 * connection is sent again when the server redelivers the message. Pure state: frames go through `send`.
 */
export class InboxAcks {
  /** Handled ids, oldest first; true once the app (or auto mode) acknowledged. */
  private readonly _seen = new Map<string, boolean>();
  private readonly _waiting = new Map<string, Array<() => void>>();

  constructor(
    private readonly _send: (ids: string[]) => void,
    private readonly _manual: boolean,
  ) {}

  /** An inbox message arrived: hands it to `deliver` once, with `ack()`, and acknowledges it in auto mode. */
  receive(m: Message & { inbox: string }, deliver: (m: Message) => void): void {
    const id = m.inbox;
    const acked = this._seen.get(id);
    if (acked !== undefined) {
      if (acked) this._send([id]);
      return;
    }
    this._seen.set(id, false);
    if (this._seen.size > REMEMBERED) this._seen.delete(this._seen.keys().next().value as string);
    let done: Promise<void> | undefined;
    // A copy: the frame may be shared (a leader tab's relay keeps it for the tabs that join later and posts it
    // through a BroadcastChannel, where a function does not clone).
    const msg = { ...m, ack: () => (done ??= this._ack(id)) };
    deliver(msg);
    if (!this._manual) void msg.ack();
  }

  /** The server confirmed acknowledgements. */
  acked(ids: readonly string[]): void {
    for (const id of ids) {
      for (const resolve of this._waiting.get(id) ?? []) resolve();
      this._waiting.delete(id);
    }
  }

  private _ack(id: string): Promise<void> {
    this._seen.set(id, true);
    return new Promise<void>((resolve) => {
      this._waiting.set(id, [...(this._waiting.get(id) ?? []), resolve]);
      this._send([id]);
    });
  }
}
