import type { EngineMessage } from '../engine/types.js';
import type { InboxMessage } from '../engine/inbox.js';

/**
 * Why the delivery core closes a connection. The core knows the reason; the connection's protocol knows the
 * close code its clients expect for it (native: 4000, 4002, ...; other protocols have their own ranges).
 */
export type CloseReason =
  | 'connect_timeout'
  | 'no_heartbeat'
  | 'token_expired'
  | 'slow_consumer'
  | 'rate_limited'
  | 'protocol_violation'
  | 'disconnected'
  | 'shutdown'
  | 'internal_error';

/**
 * How one wire protocol writes core messages. Shared by every connection of the protocol (it holds no
 * per-connection state), so that a message is turned into this protocol's frame once, whatever the number of
 * its recipients: an implementation memoizes the frame of the last message it encoded.
 */
export interface MessageCodec {
  /** The frame of a core message (native: its canonical bytes as they are). */
  frame(msg: EngineMessage): Buffer;
  /**
   * The frame that tells a subscriber its channel starts over in a new epoch at `msg` (history was lost and
   * seq restarted), sent before `msg` itself; null when the protocol has no such notion.
   */
  epochReset(msg: EngineMessage): Buffer | null;
  /** The frame of an inbox message (native: its canonical bytes); absent when the protocol has no inbox. */
  inbox?(msg: InboxMessage): Buffer;
}

/** When the heartbeat sweep pings a quiet connection and when it gives up on a silent one (ms). */
export interface Liveness {
  pingInterval: number;
  idleTimeout: number;
}

/**
 * One connection's protocol state machine: it turns the client's frames into core calls (subscribe,
 * unsubscribe, authenticate) and answers in its own frames. Made by a protocol for every connection it
 * accepts (see protocols/types.ts); the core connection calls it for what only the protocol can decide.
 */
export interface ProtocolHandler {
  /** The protocol's message writer (one shared object per protocol, or per protocol app). */
  readonly codec: MessageCodec;
  /** Ping and idle timing of this connection. */
  readonly liveness: Liveness;
  /** A frame from the client (after the core's rate limit). */
  message(data: Buffer, binary: boolean): void;
  /** The close code for a close the core decided; `requested` is the code a backend asked for (disconnect API). */
  closeCode(reason: CloseReason, requested?: number): number;
  /** The connection has been quiet for a ping interval: make the client answer (a protocol ping, a ping frame). */
  ping(): void;
  /** The connection closed (either side); called once, after the core forgot it. */
  closed(): void;
  /**
   * Settles once the frames received so far are answered (subscribe answers wait for the engine); undefined when
   * nothing is under way. A close for the rate limit waits for it: frames within the limit keep their answers.
   */
  settled?(): Promise<void> | undefined;
}
