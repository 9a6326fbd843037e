/**
 * WebSocket close codes used by Herald (protocol v1).
 *
 * Ranges (see docs/protocol.md):
 * - 1000: normal closure, the client must not reconnect.
 * - 1001, 1012 and other 1xxx codes: transient, reconnect with jitter.
 * - 4000-4499: reconnect (with backoff; 4401 refreshes the token first).
 * - 4500-4999: terminal, do not reconnect until something changes.
 */
export const CloseCode = {
  /** The connection was closed on purpose (client `close()` or server API with code 1000). */
  Normal: 1000,
  /** Reserved: the server is going away. Not sent by this version (graceful shutdown sends 1012). Reconnect with jitter. */
  GoingAway: 1001,
  /** The peer broke the WebSocket framing rules (sent by the WebSocket library, RFC 6455 7.4.1). */
  ProtocolError: 1002,
  /** A text frame was not valid UTF-8 (sent by the WebSocket library, RFC 6455 8.1). */
  InvalidPayload: 1007,
  /** A message in more fragments than the WebSocket library buffers (sent by the library, RFC 6455 7.4.1 policy violation). */
  PolicyViolation: 1008,
  /** A frame exceeded the maximum frame size. Reconnect. */
  MessageTooBig: 1009,
  /** Unexpected server error. Reconnect. */
  InternalError: 1011,
  /** The server is restarting (graceful shutdown). Reconnect with jitter. */
  ServiceRestart: 1012,
  /**
   * A connection limit was reached after the handshake, or the engine could not set up the connection's user channel
   * (Try Again Later in the IANA WebSocket close code registry). Reconnect with backoff.
   */
  TryAgainLater: 1013,
  /** No `connect` frame arrived within the connect timeout. */
  ConnectTimeout: 4000,
  /** The connection was silent for longer than the idle timeout (no ping, no pong, no frame). */
  NoHeartbeat: 4002,
  /** The connection's send buffer grew over the limit: the client does not read fast enough. */
  SlowConsumer: 4008,
  /** The client sent frames faster than the configured rate limit. */
  RateLimited: 4029,
  /** The connection token expired (at connect or while connected): refresh it, then reconnect. */
  TokenExpired: 4401,
  /** The client broke the protocol (a subscribe/unsubscribe before `connect`, repeated invalid frames, too many frames before `connected`). */
  ProtocolViolation: 4500,
  /** The token is missing (anonymous connections not allowed), malformed, or its signature is invalid. */
  InvalidToken: 4501,
  /** Reserved: the connection is not allowed. Not sent by this version (a disallowed origin gets HTTP 403 at the upgrade). */
  Forbidden: 4503,
  /** A backend disconnected this connection through the server API. */
  DisconnectedByServer: 4509,
} as const;

export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** Human description of every close code Herald sends; docs/protocol.md is checked against this table. */
export const CLOSE_CODE_INFO: Readonly<Record<CloseCode, { name: string; reconnect: boolean; description: string }>> = {
  1000: { name: 'Normal', reconnect: false, description: 'Closed on purpose; do not reconnect.' },
  1001: { name: 'GoingAway', reconnect: true, description: 'Server going away; reconnect with jitter.' },
  1002: { name: 'ProtocolError', reconnect: true, description: 'WebSocket framing error (sent by the WebSocket library).' },
  1007: { name: 'InvalidPayload', reconnect: true, description: 'A text frame was not valid UTF-8 (sent by the WebSocket library).' },
  1008: { name: 'PolicyViolation', reconnect: true, description: 'A message split into too many fragments (sent by the WebSocket library).' },
  1009: { name: 'MessageTooBig', reconnect: true, description: 'A client frame exceeded the maximum frame size.' },
  1011: { name: 'InternalError', reconnect: true, description: 'Unexpected server error.' },
  1012: { name: 'ServiceRestart', reconnect: true, description: 'Server restarting (graceful shutdown); reconnect with jitter.' },
  1013: {
    name: 'TryAgainLater',
    reconnect: true,
    description: "A connection limit was reached, or the engine could not set up a user's connection; reconnect with backoff.",
  },
  4000: { name: 'ConnectTimeout', reconnect: true, description: 'No connect frame within the connect timeout.' },
  4002: { name: 'NoHeartbeat', reconnect: true, description: 'Silent for longer than the idle timeout.' },
  4008: { name: 'SlowConsumer', reconnect: true, description: 'Send buffer over the limit.' },
  4029: { name: 'RateLimited', reconnect: true, description: 'Client frames over the rate limit.' },
  4401: { name: 'TokenExpired', reconnect: true, description: 'Token expired; refresh it, then reconnect.' },
  4500: { name: 'ProtocolViolation', reconnect: false, description: 'Protocol violation.' },
  4501: { name: 'InvalidToken', reconnect: false, description: 'Token missing, malformed or with an invalid signature.' },
  4503: { name: 'Forbidden', reconnect: false, description: 'Connection not allowed.' },
  4509: { name: 'DisconnectedByServer', reconnect: false, description: 'Disconnected by a backend through the server API.' },
};

/**
 * Whether a client should reconnect after a close with this code.
 * 1000 and 4500-4999 are terminal; everything else (including 1006 abnormal closure) reconnects.
 */
export function shouldReconnect(code: number): boolean {
  if (code === CloseCode.Normal) return false;
  if (code >= 4500 && code <= 4999) return false;
  return true;
}

const MAX_CLOSE_REASON_BYTES = 123;

/**
 * Caps a close reason at the 123 bytes RFC 6455 section 5.5 allows in a close frame
 * (125 bytes of control frame payload minus the 2-byte code), without splitting a UTF-8 sequence.
 */
export function limitCloseReason(reason: string): string {
  let bytes = 0;
  let out = '';
  for (const ch of reason) {
    const cp = ch.codePointAt(0) ?? 0;
    const n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    if (bytes + n > MAX_CLOSE_REASON_BYTES) break;
    bytes += n;
    out += ch;
  }
  return out;
}
