import { fullJitterBackoff } from './backoff.js';
import { systemClock } from './clock.js';
import { browserEnvironment } from './environment.js';
import { ClientErrorCode, HeraldError } from './errors.js';
import type { Clock, Environment, Logger, WebSocketConstructor } from './types.js';

/** Options of {@link HeraldClient}. Only `url` is required. */
export interface HeraldClientOptions {
  /** WebSocket URL of the gateway, for example `wss://push.example.com/ws`. */
  url: string;
  /** Connection token (JWT) sent in the `connect` frame. Omit both `token` and `getToken` to connect anonymously. */
  token?: string | undefined;
  /**
   * Fetches a fresh token: when no token is known yet, before reconnecting after close code 4401 (token
   * expired), and on `connect()` after a terminal close. A rejection, or no answer within `connectTimeout`, is
   * reported as an `error` event (`HERALD_ERR_CLIENT_TOKEN`) and retried with backoff.
   */
  getToken?: (() => Promise<string>) | undefined;
  /** The WebSocket implementation; in Node 20 pass `WebSocket` from the `ws` package. @default globalThis.WebSocket */
  WebSocket?: WebSocketConstructor | undefined;
  /**
   * Longest interval between two pings, in ms; the server's `connected.ping` lowers it. Two pings in a
   * row without any frame coming back close the connection and reconnect. 0 disables pinging.
   * @default 25000
   */
  pingInterval?: number | undefined;
  /** How long to wait for an answer to the ping sent when the page becomes visible, in ms. @default 5000 */
  visibilityTimeout?: number | undefined;
  /** How long to wait for the socket to open and the `connected` frame, in ms. @default 10000 */
  connectTimeout?: number | undefined;
  /** Base delay of the first retry, in ms (retry n waits random(0, min(maxDelay, minDelay * 2^n))). @default 1000 */
  minDelay?: number | undefined;
  /** Cap of the retry delay window, in ms. @default 30000 */
  maxDelay?: number | undefined;
  /** A connection that stayed up this long (ms) resets the retry counter to 0. @default 10000 */
  stableAfter?: number | undefined;
  /** Uniform random number in [0, 1) used for jitter. @default Math.random */
  random?: (() => number) | undefined;
  /** Delay in ms before retry `attempt` (0 for the first). @default full jitter from minDelay, maxDelay, random */
  backoff?: ((attempt: number) => number) | undefined;
  /** Timers. @default the global setTimeout/clearTimeout and Date.now */
  clock?: Clock | undefined;
  /** Where dropped frames and recoveries are reported. @default console.warn for warnings, debug silent */
  logger?: Logger | undefined;
  /**
   * Page lifecycle hooks (`online`, `visibilitychange`); null disables them.
   * @default browserEnvironment(), which is null outside browsers
   */
  environment?: Environment | null | undefined;
  /**
   * Share one connection among the tabs of this origin that use the same `url` and the same user: one tab
   * holds the WebSocket, elected with the Web Locks API, and the others talk to it over a BroadcastChannel.
   * Where the environment lacks either (Node, old browsers) every client has its own connection, and a
   * browser says so through `logger.debug`. `false` gives this client its own connection.
   * @default true
   */
  shared?: boolean | undefined;
  /**
   * Who the user is, for sharing: tabs share only with the same `sharedKey`. By default the token's `sub`
   * claim (a client with only `getToken` calls it once to learn it); anonymous clients share per URL.
   */
  sharedKey?: string | undefined;
  /**
   * How long the tab holding a shared connection may stay silent (frozen, hung) before another tab takes the
   * connection over, in ms. It beats every quarter of it; a tab that closes or crashes is replaced at once.
   * @default 3000
   */
  leaderTimeout?: number | undefined;
  /**
   * When inbox messages are acknowledged: `auto`, after your message handlers returned; `manual`, when you call
   * `message.ack()`. An unacknowledged message comes back at every connect (delivered to the app once).
   * @default 'auto'
   */
  inboxAck?: 'auto' | 'manual' | undefined;
  /** How long `publish()` waits for the gateway's answer, in ms (reconnects included); then it rejects. @default 10000 */
  publishTimeout?: number | undefined;
}

/** Options with every default applied (internal: not exported from the package). */
export interface ResolvedOptions {
  url: string;
  token: string | undefined;
  getToken: (() => Promise<string>) | undefined;
  WebSocket: WebSocketConstructor;
  pingInterval: number;
  visibilityTimeout: number;
  connectTimeout: number;
  stableAfter: number;
  backoff: (attempt: number) => number;
  clock: Clock;
  logger: Logger;
  environment: Environment | null;
  shared: boolean;
  sharedKey: string | undefined;
  leaderTimeout: number;
  inboxAck: 'auto' | 'manual';
  publishTimeout: number;
}

/** The default logger: warnings to the console, debug messages nowhere. */
export const consoleLogger: Logger = {
  debug() {},
  warn(message, data) {
    if (typeof console !== 'undefined') console.warn(`[herald] ${message}`, ...(data === undefined ? [] : [data]));
  },
};

function invalid(message: string): HeraldError {
  return new HeraldError(ClientErrorCode.InvalidOption, message);
}

function ms(value: number | undefined, name: string, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) throw invalid(`${name} must be a number >= ${min}`);
  return value;
}

/** Applies defaults and rejects invalid combinations with a clear message (internal). */
export function resolveOptions(o: HeraldClientOptions): ResolvedOptions {
  if (typeof o !== 'object' || o === null) throw invalid('options must be an object');
  if (typeof o.url !== 'string' || o.url === '') throw invalid('url must be a non-empty string');
  if (o.token !== undefined && (typeof o.token !== 'string' || o.token === '')) throw invalid('token must be a non-empty string');
  if (o.getToken !== undefined && typeof o.getToken !== 'function') throw invalid('getToken must be a function');
  const WebSocket = o.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (typeof WebSocket !== 'function') {
    throw invalid('no WebSocket: pass options.WebSocket (in Node 20, the ws package)');
  }
  const maxDelay = ms(o.maxDelay, 'maxDelay', 30_000, 1);
  // The default base delay never exceeds a smaller maxDelay the caller chose.
  const minDelay = ms(o.minDelay, 'minDelay', Math.min(1000, maxDelay), 1);
  if (minDelay > maxDelay) throw invalid('minDelay must not exceed maxDelay');
  const random = o.random ?? Math.random;
  if (typeof random !== 'function') throw invalid('random must be a function');
  if (o.backoff !== undefined && typeof o.backoff !== 'function') throw invalid('backoff must be a function');
  if (o.shared !== undefined && typeof o.shared !== 'boolean') throw invalid('shared must be a boolean');
  if (o.sharedKey !== undefined && (typeof o.sharedKey !== 'string' || o.sharedKey === '')) throw invalid('sharedKey must be a non-empty string');
  if (o.inboxAck !== undefined && o.inboxAck !== 'auto' && o.inboxAck !== 'manual') throw invalid("inboxAck must be 'auto' or 'manual'");
  return {
    url: o.url,
    token: o.token,
    getToken: o.getToken,
    WebSocket,
    pingInterval: ms(o.pingInterval, 'pingInterval', 25_000, 0),
    visibilityTimeout: ms(o.visibilityTimeout, 'visibilityTimeout', 5000, 1),
    connectTimeout: ms(o.connectTimeout, 'connectTimeout', 10_000, 1),
    stableAfter: ms(o.stableAfter, 'stableAfter', 10_000, 0),
    backoff: o.backoff ?? fullJitterBackoff({ minDelay, maxDelay, random }),
    clock: o.clock ?? systemClock,
    logger: o.logger ?? consoleLogger,
    environment: o.environment === undefined ? browserEnvironment() : o.environment,
    shared: o.shared ?? true,
    sharedKey: o.sharedKey,
    leaderTimeout: ms(o.leaderTimeout, 'leaderTimeout', 3000, 100),
    inboxAck: o.inboxAck ?? 'auto',
    publishTimeout: ms(o.publishTimeout, 'publishTimeout', 10_000, 1),
  };
}

/**
 * Calls `getToken()` (which must be set): resolves to a non-empty string, or rejects when it throws, rejects,
 * resolves to anything else, or does not settle within `connectTimeout` (a token endpoint that never answers
 * must not keep the client `connecting` for good; a late answer is ignored and the retry calls it again).
 */
export function fetchToken(o: ResolvedOptions): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const timer = o.clock.setTimeout(() => reject(new Error(`getToken() did not settle in ${o.connectTimeout} ms`)), o.connectTimeout);
    new Promise<unknown>((r) => r((o.getToken as () => Promise<string>)()))
      .then(
        (token) => (typeof token === 'string' && token !== '' ? resolve(token) : reject(new TypeError('getToken() must resolve to a non-empty string'))),
        reject,
      )
      .finally(() => o.clock.clearTimeout(timer));
  });
}
