import type { ClientId } from '@herald/protocol';
import type { Connection } from '../delivery/connection.js';
import type { ProtocolHandler } from '../delivery/protocol.js';
import type { HttpRequest, HttpResponse } from '../transport/http.js';
import type { UpgradeInfo } from '../transport/types.js';

export type { CloseReason, Liveness, MessageCodec, ProtocolHandler } from '../delivery/protocol.js';

/**
 * A wire protocol the gateway speaks (native v1; others beside it). The gateway registers each one; the
 * transport's admission asks which one serves a path, and every accepted socket becomes a core Connection
 * whose handler the protocol makes. Adding a protocol means a folder under `protocols/` and one line where
 * the gateway lists them; the delivery core does not change.
 */
export interface Protocol {
  /** Its name (logs, metrics). */
  readonly name: string;
  /** The WebSocket paths it serves, as listed in the body of a 404 (`/ws`, `/app/{key}`). */
  readonly endpoints: readonly string[];
  /** Whether it serves `path`. */
  accepts(path: string): boolean;
  /** Makes the protocol state machine of a new connection (called once, before any frame arrives). */
  open(conn: Connection, info: UpgradeInfo): ProtocolHandler;
  /** The id of a new connection, when the protocol has its own form (Pusher's `<digits>.<digits>`). */
  clientId?(): ClientId;
  /**
   * Its clients subscribe each channel with a frame of its own as they connect (pusher-js): their frame burst
   * must take `maxSubscriptions` such frames, or a client with that many channels is closed for the burst and
   * reconnects for ever.
   */
  readonly subscribesFrameByFrame?: boolean;
  /** HTTP routes of the protocol's own API (the gateway adds them to its HTTP handler). */
  readonly routes?: readonly ProtocolRoute[];
  /** Finishes the protocol's pending work at shutdown, after the connections closed and before the engine does. */
  close?(): Promise<void>;
}

/** An HTTP route of a protocol: returns true when it handled the request (it then answers it, errors included). */
export type ProtocolRoute = (req: HttpRequest, res: HttpResponse) => boolean;
