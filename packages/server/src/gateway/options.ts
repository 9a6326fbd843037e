import { createPrivateKey, createPublicKey } from 'node:crypto';
import { ENGINE_DEFAULTS } from '../engine/defaults.js';
import type { Engine } from '../engine/types.js';
import { resolvePusherApp, type PusherAppOptions } from '../protocols/pusher/apps.js';
import { SAME_ORIGIN } from '../transport/admission.js';
import { connectionBudget } from '../util/fd-limit.js';
import { addressSet, FORWARDED_HEADERS, type ForwardedHeader } from '../util/ip.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { hasCredentials, isHttpUrl } from '../util/url.js';
import { defaultFormats, resolveEndpoints, type WebhookEndpointConfig } from '../webhooks/config.js';
import { secretKey } from '../webhooks/standard.js';
import type { WebhookEndpoint } from '../webhooks/types.js';

/** Options of `createGateway`. Every field is optional; defaults are merged in `resolveOptions`. */
export interface GatewayOptions {
  /** TCP port; 0 picks a free one. @default 8080 */
  port?: number;
  /** Interface to listen on. @default '127.0.0.1' */
  host?: string;
  /** API keys accepted by `/api/*` (several allow rotation). With none, the API answers 401 to everything. @default [] */
  apiKeys?: readonly string[];
  /** HS256 secrets that sign connection tokens (several allow rotation). @default [] */
  jwtSecrets?: readonly string[];
  /** PEM public keys (SPKI) that verify RS256 (RSA) or ES256 (EC P-256) connection tokens, e.g. an identity provider's. @default [] */
  jwtPublicKeys?: readonly string[];
  /** A JWKS URL (an identity provider's `jwks_uri`) whose keys verify RS256/ES256 connection tokens; fetched on demand and cached. */
  jwksUrl?: string;
  /**
   * Accepted `aud` values of connection tokens: a token must name one. Set it when the identity provider also
   * issues tokens for other applications (a shared tenant), or those connect here too. @default [] (not checked)
   */
  jwtAudiences?: readonly string[];
  /** Accepted `iss` values of connection tokens: a token must carry one. @default [] (not checked) */
  jwtIssuers?: readonly string[];
  /** Whether connections without a token may connect (public channels only). @default false */
  allowAnonymous?: boolean;
  /** Paths that accept WebSocket upgrades. @default ['/ws'] */
  wsPaths?: readonly string[];
  /**
   * Allowed `Origin` headers for WebSocket upgrades: exact origins (`https://app.example`), `*` for any, and
   * `same-origin` for pages served from the host the client connects to (the `Origin` host equals `Host`;
   * a client without `Origin`, which only non-browser clients are, is let through). Empty allows any (the CLI
   * uses `same-origin` instead when `NODE_ENV=production`). @default []
   */
  allowedOrigins?: readonly string[];
  /**
   * Time a new TCP connection has to complete an HTTP request (headers and body) or a WebSocket upgrade, in
   * ms; then it is destroyed (`ws` transport; uWebSockets.js applies its own fixed 10 s). Kept-alive HTTP
   * connections between requests follow Node's keepAliveTimeout (5 s). @default 10000
   */
  requestTimeout?: number;
  /** Most open WebSocket connections (per process); upgrades beyond it get HTTP 503. @default derived from the file-descriptor limit (see docs/security.md) */
  maxConnections?: number;
  /**
   * Most open WebSocket connections per client address (upgrades beyond it get HTTP 429), and most sockets
   * per TCP peer that are not WebSockets yet (`ws` transport; beyond it they are dropped at once). @default 1000
   */
  maxConnectionsPerIp?: number;
  /** Most sockets that are not WebSockets yet (HTTP requests, handshakes); beyond it the oldest idle one is dropped (`ws` transport). @default derived from the file-descriptor limit */
  maxPendingConnections?: number;
  /** New WebSocket connections per second per client address, sustained (HTTP 429 beyond it). @default 20 */
  connectRate?: number;
  /** New WebSocket connections per client address in a burst. @default 100 */
  connectBurst?: number;
  /**
   * Addresses and CIDR ranges of reverse proxies whose forwarding header (`forwardedHeader`) is believed: behind
   * them, limits count the forwarded client address, and a proxy that names no client is not limited per address
   * (only globally). Nobody else's forwarding headers are read. The default trusts a reverse proxy on this machine.
   * @default ['127.0.0.0/8', '::1']
   */
  trustedProxies?: readonly string[];
  /**
   * The forwarding header the trusted proxies write, the only one read: `x-forwarded-for` (nginx's
   * `$proxy_add_x_forwarded_for`, HAProxy's `forwardfor`, most load balancers; with `X-Forwarded-Host`) or RFC 7239
   * `forwarded` (`for=`, `host=`). A proxy passes the other through as the client wrote it. @default 'x-forwarded-for'
   */
  forwardedHeader?: ForwardedHeader;
  /** Time a new connection has to send `connect`, in ms (close 4000). @default 10000 */
  connectTimeout?: number;
  /** Ping interval advertised to clients, and silence after which the server sends a protocol ping, in ms. @default 25000 */
  pingInterval?: number;
  /** Silence after which a connection is closed with 4002, in ms. Must exceed `pingInterval`. @default 60000 */
  idleTimeout?: number;
  /**
   * Period of the one sweep over all connections (timeouts, pings, token expiry), in ms; each pass is spread over
   * ten ticks, a tenth of the connections each, so what falls due together is not handled in one turn. @default 1000
   */
  sweepInterval?: number;
  /** Largest client frame in bytes (close 1009 above it). @default 65536 */
  maxFrameSize?: number;
  /** Above this many members a presence channel's `subscribed` and join/leave frames carry only the count. @default 100 */
  presenceMaxMembers?: number;
  /** Most subscriptions one connection may hold. @default 100 */
  maxSubscriptions?: number;
  /** New channels (no local subscriber yet) one connection may bring to the node per minute, and at once (error too_many_channels above it). @default 100 */
  channelRate?: number;
  /** New channels all connections of one client address may bring to the node per minute, and at once (many users may share one address behind a NAT). @default 10000 */
  channelRatePerIp?: number;
  /** Client frames allowed per second, sustained (close 4029 above it). @default 50 */
  clientRate?: number;
  /** Client frames allowed in a burst; on Pusher connections at least `maxSubscriptions` + 10 (pusher-js subscribes frame by frame). @default 100 */
  clientBurst?: number;
  /** Malformed frames tolerated per connection before it is closed with 4500. @default 10 */
  maxInvalidFrames?: number;
  /** Per-connection send buffer limit in bytes; a connection over it is closed with 4008. @default 1048576 */
  sendBufferLimit?: number;
  /** Largest HTTP API request body in bytes (413 above it), and largest Redis ingest message (dead-lettered above it). @default 1048576 */
  maxBodySize?: number;
  /** Most channels in one publish, and most items in one publish array. @default 100 */
  maxPublishChannels?: number;
  /** Time a graceful shutdown waits for clients to close before it drops them, in ms. @default 10000 */
  shutdownTimeout?: number;
  /** Messages kept per channel (memory engine, when `engine` is not given). @default 1000 */
  historySize?: number;
  /** How long messages stay in history, in ms (memory engine). @default 600000 */
  historyTtl?: number;
  /**
   * How long a published channel's seq and epoch outlive its last use (a publish, a subscribe's or a recovery's
   * read, `GET /api/channels/<channel>`), in ms (at least `historyTtl`); a node's subscribed channels are kept. A
   * client back within it is told `recovered: true`, or that history no longer reaches back; past it the channel
   * starts a new epoch. With the memory engine each published channel costs about 300 bytes for that long, whether
   * it keeps history or not. @default the larger of historyTtl and 3600000
   */
  historyMetaTtl?: number;
  /** Bytes of message frames kept in one channel's history; a larger message is published but not kept. @default 1048576 */
  historyMaxBytes?: number;
  /** Bytes of history the memory engine keeps for the whole process. @default 268435456 */
  historyTotalBytes?: number;
  /** Idempotency window of publish ids, in ms (memory engine). @default 300000 */
  idempotencyTtl?: number;
  /** Most publish ids the memory engine remembers (about 40 bytes each); past it the oldest is forgotten early, counted. @default 3000000 */
  idempotencyMaxKeys?: number;
  /** Serve the demo page at `/` (the browser SDK connected to this gateway, and a publish form). @default false */
  demo?: boolean;
  /** API key the demo page's publish form is prefilled with (the CLI sets it in development mode only). */
  demoApiKey?: string;
  /**
   * A JWT secret (one of `jwtSecrets`) with which the demo page mints tokens for its visitors on this machine: a
   * demo user that may join `presence:demo` and publish to `chat:demo`. The CLI sets it in development mode only.
   */
  demoTokenSecret?: string;
  /** Serve the admin dashboard at `/admin` and `POST /api/admin/token` (both need the API key; see docs/metrics.md). @default false */
  admin?: boolean;
  /** Bearer tokens that may read `/metrics` besides the API keys (at least 16 characters each; several allow rotation), for a scraper that must not publish. @default [] */
  metricsTokens?: readonly string[];
  /**
   * WebSocket library: `ws`, or `uws` for uWebSockets.js (not on the npm registry: install it yourself; it then
   * owns the port and serves plain HTTP natively with the gateway's handler). See docs/benchmarks.md. @default 'ws'
   */
  transport?: 'ws' | 'uws';
  /** How long an inbox message is kept unless acknowledged (a publish's `ttl` overrides it), in ms. @default 604800000 (7 days) */
  inboxTtl?: number;
  /** Most messages kept in one user's inbox; past it the oldest is dropped (counted as `inbox_full`). @default 1000 */
  inboxMaxMessages?: number;
  /** Most delivery receipts the memory engine keeps (about 180 bytes each); past it the oldest goes before its message's expiry, counted. @default 1000000 */
  inboxMaxReceipts?: number;
  /**
   * Memory engine: bytes every user's inbox messages may take together (frame plus 512 bytes each, and 256 per user with messages); past it an inbox
   * publish is refused with `inbox_storage_full` (HTTP 507). @default 268435456 (256 MiB)
   */
  inboxTotalBytes?: number;
  /** Webhook endpoints (URL, secret, event types, channel prefixes); see docs/webhooks.md. @default [] */
  webhooks?: readonly WebhookEndpointConfig[];
  /** One more endpoint, the simple case: its URL (with `webhookSecret`, and `webhookEvents`). */
  webhookUrl?: string;
  /** The secret of `webhookUrl` (`whsec_<base64>`). */
  webhookSecret?: string;
  /** The event types `webhookUrl` receives; empty: all. @default [] */
  webhookEvents?: readonly string[];
  /** How long a delivery to a native webhook endpoint is retried after its event, in ms; then it is dead-lettered (a Pusher app has its own `webhookRetryFor`). @default 3600000 (one hour) */
  webhookRetryFor?: number;
  /** A user's last connection closed: `user.offline` is sent only after this many ms without a new one. @default 5000 */
  webhookOfflineDelay?: number;
  /** Most ms one webhook request may take. @default 10000 */
  webhookTimeout?: number;
  /** Client publishes (native `publish` frames) per second per connection, sustained and in a burst. @default 10 */
  clientPublishRate?: number;
  /** Client publishes per second per user on one node (all its connections together), sustained and in a burst. @default 20 */
  clientPublishUserRate?: number;
  /** Largest payload of a client publish, serialized, in bytes (error payload_too_large above it). @default 16384 */
  clientPublishMaxBytes?: number;
  /** The publish hook: a URL asked about every client publish (accept, reject, rewrite); see docs/protocol.md. */
  publishHookUrl?: string;
  /** The secret the publish hook's requests are signed with (`whsec_<base64>`, Standard Webhooks). @default webhookSecret */
  publishHookSecret?: string;
  /** Most ms the publish hook may take to answer; then it has failed. @default 2000 */
  publishHookTimeout?: number;
  /** A failed publish hook (no answer in time, an error, an unusable answer) denies the publish, or allows it unchanged. @default 'deny' */
  publishHookFailure?: 'deny' | 'allow';
  /** Most publish hook requests in flight at once; past it a client publish's hook fails at once. @default 256 */
  publishHookMaxInFlight?: number;
  /**
   * Pusher apps (docs/pusher.md): each one its own channel namespace, served on `/app/{key}` (WebSocket) and
   * `/apps/{id}/...` (HTTP API). None: the Pusher endpoints do not exist. @default []
   */
  pusherApps?: readonly PusherAppOptions[];
  /** The engine; a memory engine built from the history options when omitted. */
  engine?: Engine;
  /** @default the system clock */
  clock?: Clock;
  /** @default a pino logger at level info */
  logger?: Logger;
}

/** Options after defaults, with the collaborators still optional (built in createGateway). */
export type ResolvedOptions = Required<
  Omit<
    GatewayOptions,
    | 'engine'
    | 'clock'
    | 'logger'
    | 'demoApiKey'
    | 'demoTokenSecret'
    | 'jwksUrl'
    | 'webhookUrl'
    | 'webhookSecret'
    | 'publishHookUrl'
    | 'publishHookSecret'
    | 'historyMetaTtl'
  >
> & {
  historyMetaTtl: number | undefined;
  demoApiKey: string | undefined;
  demoTokenSecret: string | undefined;
  jwksUrl: string | undefined;
  webhookUrl: string | undefined;
  webhookSecret: string | undefined;
  publishHookUrl: string | undefined;
  publishHookSecret: string | undefined;
};

/** The connection budget of this process's file-descriptor limit (read once, at start). */
const BUDGET = connectionBudget();

export const DEFAULTS: ResolvedOptions = {
  port: 8080,
  host: '127.0.0.1',
  apiKeys: [],
  jwtSecrets: [],
  jwtPublicKeys: [],
  jwksUrl: undefined,
  jwtAudiences: [],
  jwtIssuers: [],
  allowAnonymous: false,
  wsPaths: ['/ws'],
  allowedOrigins: [],
  requestTimeout: 10_000,
  maxConnections: BUDGET.maxConnections,
  maxConnectionsPerIp: 1000,
  maxPendingConnections: BUDGET.maxPendingConnections,
  connectRate: 20,
  connectBurst: 100,
  trustedProxies: ['127.0.0.0/8', '::1'],
  forwardedHeader: 'x-forwarded-for',
  connectTimeout: 10_000,
  pingInterval: 25_000,
  idleTimeout: 60_000,
  sweepInterval: 1000,
  maxFrameSize: 65_536,
  maxSubscriptions: 100,
  presenceMaxMembers: 100,
  channelRate: 100,
  channelRatePerIp: 10_000,
  clientRate: 50,
  clientBurst: 100,
  maxInvalidFrames: 10,
  sendBufferLimit: 1_048_576,
  maxBodySize: 1_048_576,
  maxPublishChannels: 100,
  shutdownTimeout: 10_000,
  historySize: ENGINE_DEFAULTS.historySize,
  historyTtl: ENGINE_DEFAULTS.historyTtl,
  historyMetaTtl: undefined,
  historyMaxBytes: ENGINE_DEFAULTS.historyMaxBytes,
  historyTotalBytes: ENGINE_DEFAULTS.historyTotalBytes,
  idempotencyTtl: ENGINE_DEFAULTS.idempotencyTtl,
  idempotencyMaxKeys: ENGINE_DEFAULTS.idempotencyMaxKeys,
  demo: false,
  demoApiKey: undefined,
  demoTokenSecret: undefined,
  transport: 'ws',
  admin: false,
  metricsTokens: [],
  inboxTtl: 604_800_000,
  inboxMaxMessages: 1000,
  inboxMaxReceipts: ENGINE_DEFAULTS.inboxMaxReceipts,
  inboxTotalBytes: ENGINE_DEFAULTS.inboxTotalBytes,
  webhooks: [],
  webhookUrl: undefined,
  webhookSecret: undefined,
  webhookEvents: [],
  webhookRetryFor: 3_600_000,
  webhookOfflineDelay: 5000,
  webhookTimeout: 10_000,
  clientPublishRate: 10,
  clientPublishUserRate: 20,
  clientPublishMaxBytes: 16_384,
  publishHookUrl: undefined,
  publishHookSecret: undefined,
  publishHookTimeout: 2000,
  publishHookFailure: 'deny',
  publishHookMaxInFlight: 256,
  pusherApps: [],
};

/** An invalid option; `option` names it. */
export class OptionsError extends Error {
  constructor(
    readonly option: string,
    message: string,
  ) {
    super(`${option}: ${message}`);
    this.name = 'OptionsError';
  }
}

/** The largest delay Node's timers accept (about 24.8 days). */
const MAX_TIMER_MS = 2_147_483_647;
/** Shortest HS256 secret accepted (256 bits as characters); `herald token` holds the secrets it signs with to it too. */
export const MIN_JWT_SECRET_LENGTH = 32;

const POSITIVE: ReadonlyArray<keyof ResolvedOptions> = [
  'requestTimeout',
  'maxConnections',
  'maxConnectionsPerIp',
  'maxPendingConnections',
  'connectRate',
  'connectBurst',
  'connectTimeout',
  'pingInterval',
  'idleTimeout',
  'sweepInterval',
  'maxFrameSize',
  'maxSubscriptions',
  'presenceMaxMembers',
  'channelRate',
  'channelRatePerIp',
  'clientRate',
  'clientBurst',
  'maxInvalidFrames',
  'sendBufferLimit',
  'maxBodySize',
  'maxPublishChannels',
  'shutdownTimeout',
  'historyTtl',
  'historyMaxBytes',
  'historyTotalBytes',
  'idempotencyTtl',
  'idempotencyMaxKeys',
  'inboxTtl',
  'inboxMaxMessages',
  'inboxMaxReceipts',
  'inboxTotalBytes',
  'webhookRetryFor',
  'webhookOfflineDelay',
  'webhookTimeout',
  'clientPublishRate',
  'clientPublishUserRate',
  'clientPublishMaxBytes',
  'publishHookTimeout',
  'publishHookMaxInFlight',
];

/** Merges defaults and rejects invalid values and combinations with a message naming the option. */
export function resolveOptions(options: GatewayOptions): ResolvedOptions {
  const o: ResolvedOptions = { ...DEFAULTS };
  for (const [k, v] of Object.entries(options)) {
    if (v !== undefined && k in DEFAULTS) (o as Record<string, unknown>)[k] = v;
  }
  for (const k of POSITIVE) {
    const v = o[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new OptionsError(k, `must be a positive number, got ${String(v)}`);
    // Durations feed timers, and Node's timers overflow (firing at once) above 2^31-1 ms.
    if (v > MAX_TIMER_MS) throw new OptionsError(k, `must be at most ${MAX_TIMER_MS}, got ${v}`);
  }
  if (o.historyMetaTtl !== undefined) {
    const v = o.historyMetaTtl;
    if (!Number.isSafeInteger(v) || v <= 0) throw new OptionsError('historyMetaTtl', `must be a positive integer (ms), got ${String(v)}`);
    if (v < o.historyTtl)
      throw new OptionsError('historyMetaTtl', `must be at least historyTtl (${o.historyTtl}): seq and epoch outlive the history they number, got ${v}`);
  }
  try {
    addressSet(o.trustedProxies);
  } catch (err) {
    throw new OptionsError('trustedProxies', (err as Error).message);
  }
  if (!FORWARDED_HEADERS.includes(o.forwardedHeader)) {
    throw new OptionsError('forwardedHeader', `must be one of ${FORWARDED_HEADERS.join(', ')}, got ${String(o.forwardedHeader)}`);
  }
  if (o.transport !== 'ws' && o.transport !== 'uws') throw new OptionsError('transport', `must be 'ws' or 'uws', got ${String(o.transport)}`);
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw new OptionsError('port', `must be 0-65535, got ${o.port}`);
  if (!Number.isInteger(o.historySize) || o.historySize < 0) throw new OptionsError('historySize', 'must be a non-negative integer');
  if (o.idleTimeout <= o.pingInterval) throw new OptionsError('idleTimeout', 'must be greater than pingInterval');
  if (o.wsPaths.length === 0 || o.wsPaths.some((p) => !p.startsWith('/'))) throw new OptionsError('wsPaths', 'must be one or more paths starting with /');
  if (o.wsPaths.some((p) => p === '/healthz' || p === '/readyz' || p === '/metrics' || p.startsWith('/api/') || p === '/admin' || p.startsWith('/admin/'))) {
    throw new OptionsError('wsPaths', 'must not overlap the HTTP API');
  }
  if (o.apiKeys.some((k) => k.length < 16)) throw new OptionsError('apiKeys', 'every API key must be at least 16 characters');
  if (o.metricsTokens.some((k) => k.length < 16)) throw new OptionsError('metricsTokens', 'every metrics token must be at least 16 characters');
  if (o.admin && o.apiKeys.length === 0) throw new OptionsError('admin', 'the admin dashboard needs an API key (apiKeys): it is what the page asks for');
  if (o.jwtSecrets.some((k) => k.length < MIN_JWT_SECRET_LENGTH)) {
    throw new OptionsError('jwtSecrets', `every JWT secret must be at least ${MIN_JWT_SECRET_LENGTH} characters (HS256 needs 256 bits)`);
  }
  for (const pem of o.jwtPublicKeys) checkPublicKey(pem);
  if (o.demoTokenSecret !== undefined && !o.jwtSecrets.includes(o.demoTokenSecret)) {
    throw new OptionsError('demoTokenSecret', 'must be one of jwtSecrets (the gateway must accept the tokens the demo page mints)');
  }
  if (o.host === '') throw new OptionsError('host', 'must not be empty (127.0.0.1 by default; 0.0.0.0 or :: for every interface)');
  // An origin is compared exactly: `https://app.example.com/` (a trailing slash) would never match a browser's.
  const notOrigin = o.allowedOrigins.find((a) => a !== '*' && a !== SAME_ORIGIN && !/^[a-z][a-z0-9+.-]*:\/\/[^/\s?#@]+$/i.test(a));
  if (notOrigin !== undefined) {
    throw new OptionsError(
      'allowedOrigins',
      `${JSON.stringify(notOrigin.slice(0, 100))} is not an origin: scheme://host[:port] without a path or a trailing slash, * or ${SAME_ORIGIN}`,
    );
  }
  if (o.jwksUrl !== undefined) checkHttpUrl('jwksUrl', o.jwksUrl);
  if (o.jwtAudiences.some((a) => a.length === 0) || o.jwtIssuers.some((i) => i.length === 0)) {
    throw new OptionsError(o.jwtAudiences.some((a) => a.length === 0) ? 'jwtAudiences' : 'jwtIssuers', 'must not hold an empty value');
  }
  checkPublishHook(o);
  checkWebhooks(o);
  const ids = new Set<string>();
  const keys = new Set<string>();
  for (const app of o.pusherApps) {
    try {
      const r = resolvePusherApp(app);
      if (ids.has(r.id)) throw new Error(`app ${r.id}: the id is used twice`);
      if (keys.has(r.key)) throw new Error(`app ${r.id}: the key is used by another app`);
      ids.add(r.id);
      keys.add(r.key);
    } catch (err) {
      throw new OptionsError('pusherApps', err instanceof Error ? err.message : String(err));
    }
  }
  return o;
}

/** Every configured webhook endpoint, checked and with defaults: `webhooks`, plus `webhookUrl` as one named `env`. */
export function webhookEndpoints(o: ResolvedOptions): WebhookEndpoint[] {
  const configs: WebhookEndpointConfig[] = [...o.webhooks];
  if (o.webhookUrl !== undefined && o.webhookSecret !== undefined) {
    configs.push({ name: o.webhooks.length === 0 ? 'default' : 'env', url: o.webhookUrl, secret: o.webhookSecret, events: o.webhookEvents });
  }
  return resolveEndpoints(configs, defaultFormats(), o.webhookRetryFor);
}

/** An http(s) URL without a user or password: they would show in every failure logged (undici, which posts webhooks, would send them). */
function checkHttpUrl(option: keyof ResolvedOptions, url: string): void {
  if (!isHttpUrl(url)) throw new OptionsError(option, 'must be an http(s) URL');
  if (hasCredentials(url)) throw new OptionsError(option, 'must not carry a user or password');
}

/**
 * The webhook endpoints, checked before the gateway starts: a bad one stops it naming the setting. `webhookUrl`
 * needs `webhookSecret`; `webhookSecret` alone serves the publish hook, `webhookEvents` alone nothing.
 */
function checkWebhooks(o: ResolvedOptions): void {
  if (o.webhookUrl === undefined) {
    if (o.webhookSecret !== undefined && o.publishHookUrl === undefined) {
      throw new OptionsError('webhookSecret', 'signs the requests to webhookUrl (or the publish hook), and neither is set');
    }
    if (o.webhookEvents.length > 0) throw new OptionsError('webhookEvents', 'are the events of webhookUrl, which is not set');
  } else if (o.webhookSecret === undefined) {
    throw new OptionsError('webhookUrl', 'needs webhookSecret to sign its requests');
  }
  const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));
  if (o.webhookUrl !== undefined && o.webhookSecret !== undefined) {
    try {
      resolveEndpoints([{ url: o.webhookUrl, secret: o.webhookSecret, events: o.webhookEvents }], defaultFormats(), o.webhookRetryFor);
    } catch (err) {
      // Named after the setting at fault: the URL, its secret or its events.
      const message = messageOf(err).replace(/^webhook endpoint "default": /, '');
      throw new OptionsError(message.startsWith('secret') ? 'webhookSecret' : message.includes('event') ? 'webhookEvents' : 'webhookUrl', message);
    }
  }
  try {
    webhookEndpoints(o);
  } catch (err) {
    throw new OptionsError('webhooks', messageOf(err));
  }
}

/** The publish hook's URL, secret (its own, or the webhook secret) and failure mode. */
function checkPublishHook(o: ResolvedOptions): void {
  if (o.publishHookFailure !== 'deny' && o.publishHookFailure !== 'allow') {
    throw new OptionsError('publishHookFailure', `must be 'deny' or 'allow', got ${String(o.publishHookFailure)}`);
  }
  if (o.publishHookUrl === undefined) return;
  checkHttpUrl('publishHookUrl', o.publishHookUrl);
  const secret = o.publishHookSecret ?? o.webhookSecret;
  if (secret === undefined) throw new OptionsError('publishHookSecret', 'the publish hook needs a signing secret (publishHookSecret, or webhookSecret)');
  try {
    secretKey(secret);
  } catch (err) {
    throw new OptionsError('publishHookSecret', (err as Error).message);
  }
}

/** A PEM public key the JWT verifier can use: RSA (RS256) or EC P-256 (ES256). */
function checkPublicKey(pem: string): void {
  let type: string | undefined;
  let curve: string | undefined;
  try {
    const k = createPublicKey(pem);
    type = k.asymmetricKeyType;
    curve = k.asymmetricKeyDetails?.namedCurve;
  } catch {
    throw new OptionsError('jwtPublicKeys', 'every public key must be a PEM public key (-----BEGIN PUBLIC KEY-----)');
  }
  // Node derives a public key from a private one: a private key here is a mistake (and a secret in the wrong place).
  if (isPrivateKey(pem)) throw new OptionsError('jwtPublicKeys', 'every public key must be a PEM public key (-----BEGIN PUBLIC KEY-----), not a private key');
  if (type !== 'rsa' && !(type === 'ec' && curve === 'prime256v1')) {
    throw new OptionsError('jwtPublicKeys', 'every public key must be RSA (RS256) or EC P-256 (ES256)');
  }
}

/** Whether `pem` holds a private key (which Node would quietly turn into its public key). */
function isPrivateKey(pem: string): boolean {
  try {
    createPrivateKey(pem);
    return true;
  } catch {
    return false;
  }
}
