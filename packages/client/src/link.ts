import type { ChannelName, ClientFrame, ConnectedFrame, ServerFrame, SubscribeRecovery } from '@herald/protocol';
import type { HeraldError } from './errors.js';
import type { StateChange } from './types.js';

/** A state change without its `from` (the receiver knows where it is). */
export type StateInfo = Omit<StateChange, 'from' | 'to'>;

/** A transition other than to `connected`, which is reported by {@link LinkHost.connected}. */
export type Transition = StateInfo & { to: 'connecting' | 'disconnected' | 'closed' };

/**
 * What drives a client (internal): its own WebSocket ({@link Connection}) or, when tabs share one
 * connection, the messages of the leader tab ({@link SharedLink}). Either reports through these calls,
 * so the client's subscriptions, positions and events work the same way in both cases.
 */
export interface LinkHost {
  /** Every transition except to `connected`. */
  state(change: Transition): void;
  /** The connection is accepted; `live()` turns false once it is replaced (a handler closed it). */
  connected(f: ConnectedFrame, live: () => boolean): void;
  /** Any frame after `connected` (messages, subscribe answers, errors); pongs are absorbed. */
  frame(f: ServerFrame): void;
  /** An error about the connection itself; `logged` when it was already written to the logger. */
  error(e: HeraldError, logged?: boolean): void;
  /** The `subs` of a connect frame: every subscription with the position to resume from. */
  subs(): Record<ChannelName, SubscribeRecovery>;
  /** Whether the client follows `channel` (a tab skips what the leader posts for other tabs' channels). */
  has(channel: ChannelName): boolean;
  /** Tabs share the connection: how many, and whether this tab holds it. */
  sharing?(s: Sharing): void;
}

/** How a client's connection is shared: by how many tabs (1: its own), and whether this tab holds it. */
export interface Sharing {
  tabs: number;
  leader: boolean;
}

/** The connection under a client (internal). */
export interface Link {
  connect(): void;
  close(): Promise<void>;
  /** Sends a subscribe, unsubscribe or ack frame, when connected. */
  send(frame: ClientFrame): void;
}
