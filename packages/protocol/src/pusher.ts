/**
 * The Pusher Channels protocol (version 7) as Herald speaks it on `/app/{key}`: its close codes and the codes of
 * its `pusher:error` frames (docs/pusher.md; docs/errors.md lists them, a test keeps both in step). pusher-js
 * reads close codes by range: 4000-4099 do not reconnect, 4100-4199 reconnect after a back-off, 4200-4299
 * reconnect at once, 4300 and above do not reconnect.
 */
export const PusherCode = {
  /** Unknown app key (an error frame, then this close). */
  AppDoesNotExist: 4001,
  /** The app's connection quota on this node is reached. */
  OverQuota: 4004,
  /** The `version` query parameter is not a version string. */
  InvalidVersion: 4006,
  /** The `protocol` query parameter is not 4 to 7. */
  UnsupportedProtocol: 4007,
  /** A bad signature (subscribe, sign-in), a client event on a channel not subscribed; also a close after a terminate. */
  Unauthorized: 4009,
  /** The connection's send buffer is over the limit (a slow consumer): reconnect after a back-off. */
  OverCapacity: 4100,
  /** Frames over the per-connection rate limit: reconnect after a back-off. */
  RateLimited: 4101,
  /** The server is restarting (graceful shutdown) or failed internally: reconnect at once, elsewhere. */
  Reconnect: 4200,
  /** No activity and no answer to `pusher:ping` in time. */
  PongNotReceived: 4201,
  /** Repeated invalid frames: do not reconnect. */
  ProtocolViolation: 4300,
  /** A client event refused: disabled for the app, over the rate limit, too large, on a channel that takes none. */
  ClientEventRejected: 4301,
} as const;

export type PusherCode = (typeof PusherCode)[keyof typeof PusherCode];

/** Where a Pusher code appears: a close frame, a `pusher:error` frame, or both. */
export type PusherCodeSurface = 'close' | 'error' | 'both';

/** Every Pusher code Herald sends, with where it appears and whether pusher-js reconnects after it. */
export const PUSHER_CODE_INFO: Readonly<
  Record<PusherCode, { name: string; surface: PusherCodeSurface; reconnect: 'no' | 'backoff' | 'at once' | '-'; description: string }>
> = {
  4001: { name: 'AppDoesNotExist', surface: 'both', reconnect: 'no', description: 'No app with this key.' },
  4004: { name: 'OverQuota', surface: 'both', reconnect: 'no', description: "The app's connection quota on this node is reached." },
  4006: { name: 'InvalidVersion', surface: 'both', reconnect: 'no', description: 'The version query parameter is malformed.' },
  4007: { name: 'UnsupportedProtocol', surface: 'both', reconnect: 'no', description: 'The protocol query parameter is not 4-7.' },
  4009: {
    name: 'Unauthorized',
    surface: 'both',
    reconnect: 'no',
    description: 'Bad signature or not subscribed (an error frame, the connection stays); as a close, terminated by the HTTP API.',
  },
  4100: { name: 'OverCapacity', surface: 'close', reconnect: 'backoff', description: 'Send buffer over the limit (slow consumer).' },
  4101: { name: 'RateLimited', surface: 'close', reconnect: 'backoff', description: 'Frames over the per-connection rate limit.' },
  4200: { name: 'Reconnect', surface: 'close', reconnect: 'at once', description: 'Server restarting (graceful shutdown) or internal error.' },
  4201: { name: 'PongNotReceived', surface: 'close', reconnect: 'at once', description: 'Silent past the activity timeout and no pong.' },
  4300: { name: 'ProtocolViolation', surface: 'close', reconnect: 'no', description: 'Repeated invalid frames.' },
  4301: {
    name: 'ClientEventRejected',
    surface: 'error',
    reconnect: '-',
    description: 'Client event refused: disabled, over the rate limit, too large, or on a channel that takes none.',
  },
};
