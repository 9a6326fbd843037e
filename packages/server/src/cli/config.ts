import { readFileSync } from 'node:fs';
import { ENGINE_DEFAULTS } from '../engine/defaults.js';
import type { EngineSettings } from '../gateway/node.js';
import { DEFAULTS, type GatewayOptions } from '../gateway/options.js';
import { LOG_LEVELS, type LogLevel } from '../util/logger.js';

/** The value type of a setting, which decides how its text is parsed. */
export type SettingType = 'int' | 'bool' | 'string' | 'list' | 'enum' | 'files' | 'json';

/** One configuration setting: its option name, environment variable, flag, type and documentation. */
/** Settings of the process rather than of one gateway: logging, the engine, the ingest, workers. */
export interface NodeSettings extends EngineSettings {
  logLevel: LogLevel;
  /** Processes to run; undefined means the default (cores with Redis, 1 without). */
  workers: number | undefined;
  /** The JSON configuration file the settings were read from, if any. */
  config: string | undefined;
  /** One Pusher app from the environment (all three or none); added to `pusherApps`. */
  pusherAppId?: string | undefined;
  pusherAppKey?: string | undefined;
  pusherAppSecret?: string | undefined;
}

export const NODE_DEFAULTS: NodeSettings = {
  logLevel: 'info',
  redisUrl: undefined,
  redisPrefix: ENGINE_DEFAULTS.redisPrefix,
  redisSharded: false,
  presenceTtl: ENGINE_DEFAULTS.presenceTtl,
  nodeId: undefined,
  ingest: true,
  workers: undefined,
  config: undefined,
  pusherAppId: undefined,
  pusherAppKey: undefined,
  pusherAppSecret: undefined,
};

export interface Setting {
  key: keyof GatewayOptions | keyof NodeSettings;
  env: string;
  flag: string;
  type: SettingType;
  /** Never printed or logged. */
  secret?: boolean;
  values?: readonly string[];
  description: string;
  /** Shown instead of the default value when the default depends on something else. */
  defaultNote?: string;
}

/**
 * The one configuration schema: the CLI parses flags and environment variables with it and
 * docs/configuration.md is generated from it (a test keeps them in step).
 */
export const SETTINGS: readonly Setting[] = [
  { key: 'port', env: 'HERALD_PORT', flag: '--port', type: 'int', description: 'TCP port to listen on (0 picks a free port).' },
  { key: 'host', env: 'HERALD_HOST', flag: '--host', type: 'string', description: 'Interface to listen on; 0.0.0.0 for every interface.' },
  {
    key: 'apiKeys',
    env: 'HERALD_API_KEY',
    flag: '--api-key',
    type: 'list',
    secret: true,
    description: 'API key(s) for /api/* (comma-separated for rotation; at least 16 characters each).',
    defaultNote: 'none (development mode generates one)',
  },
  {
    key: 'jwtSecrets',
    env: 'HERALD_JWT_SECRET',
    flag: '--jwt-secret',
    type: 'list',
    secret: true,
    description: 'HS256 secret(s) that sign connection tokens (comma-separated for rotation; at least 32 characters each).',
    defaultNote: 'none',
  },
  {
    key: 'jwtPublicKeys',
    env: 'HERALD_JWT_PUBLIC_KEY_FILES',
    flag: '--jwt-public-key-files',
    type: 'files',
    description: 'PEM public key file(s) (comma-separated) that verify RS256 (RSA) or ES256 (EC P-256) connection tokens, e.g. from an identity provider.',
    defaultNote: 'none',
  },
  {
    key: 'jwksUrl',
    env: 'HERALD_JWKS_URL',
    flag: '--jwks-url',
    type: 'string',
    description: "An identity provider's JWKS URL whose keys verify RS256/ES256 connection tokens (fetched on demand, cached).",
    defaultNote: 'none',
  },
  {
    key: 'allowAnonymous',
    env: 'HERALD_ALLOW_ANONYMOUS',
    flag: '--allow-anonymous',
    type: 'bool',
    description: 'Let clients connect without a token (public channels only).',
    defaultNote: 'false (true in development mode)',
  },
  { key: 'wsPaths', env: 'HERALD_WS_PATHS', flag: '--ws-path', type: 'list', description: 'Path(s) that accept WebSocket connections (comma-separated).' },
  {
    key: 'allowedOrigins',
    env: 'HERALD_ALLOWED_ORIGINS',
    flag: '--allowed-origins',
    type: 'list',
    description: 'Allowed Origin headers for WebSocket upgrades (comma-separated); empty allows any.',
  },
  {
    key: 'connectTimeout',
    env: 'HERALD_CONNECT_TIMEOUT_MS',
    flag: '--connect-timeout-ms',
    type: 'int',
    description: 'Time a new connection has to send its connect frame (close 4000).',
  },
  {
    key: 'pingInterval',
    env: 'HERALD_PING_INTERVAL_MS',
    flag: '--ping-interval-ms',
    type: 'int',
    description: 'Ping interval advertised to clients; quiet connections get a protocol ping after it.',
  },
  {
    key: 'idleTimeout',
    env: 'HERALD_IDLE_TIMEOUT_MS',
    flag: '--idle-timeout-ms',
    type: 'int',
    description: 'Silence after which a connection is closed with 4002; must exceed the ping interval.',
  },
  {
    key: 'sweepInterval',
    env: 'HERALD_SWEEP_INTERVAL_MS',
    flag: '--sweep-interval-ms',
    type: 'int',
    description: 'Period of the single heartbeat/timeout sweep over all connections.',
  },
  { key: 'maxFrameSize', env: 'HERALD_MAX_FRAME_BYTES', flag: '--max-frame-bytes', type: 'int', description: 'Largest client frame (close 1009 above it).' },
  {
    key: 'maxSubscriptions',
    env: 'HERALD_MAX_SUBSCRIPTIONS',
    flag: '--max-subscriptions',
    type: 'int',
    description: 'Most subscriptions per connection (error too_many_subscriptions above it).',
  },
  {
    key: 'channelRate',
    env: 'HERALD_CHANNEL_RATE',
    flag: '--channel-rate',
    type: 'int',
    description: 'New channels (none subscribed on this node yet) one connection may bring per minute, and at once (error too_many_channels above it).',
  },
  {
    key: 'channelRatePerIp',
    env: 'HERALD_CHANNEL_RATE_PER_IP',
    flag: '--channel-rate-per-ip',
    type: 'int',
    description: 'New channels all connections of one client address may bring per minute, and at once.',
  },
  {
    key: 'clientRate',
    env: 'HERALD_CLIENT_RATE',
    flag: '--client-rate',
    type: 'int',
    description: 'Client frames per second allowed per connection, sustained (close 4029 above it).',
  },
  { key: 'clientBurst', env: 'HERALD_CLIENT_BURST', flag: '--client-burst', type: 'int', description: 'Client frames allowed in a burst per connection.' },
  {
    key: 'maxInvalidFrames',
    env: 'HERALD_MAX_INVALID_FRAMES',
    flag: '--max-invalid-frames',
    type: 'int',
    description: 'Malformed frames tolerated per connection before close 4500.',
  },
  {
    key: 'sendBufferLimit',
    env: 'HERALD_SEND_BUFFER_BYTES',
    flag: '--send-buffer-bytes',
    type: 'int',
    description: 'Per-connection send buffer limit; a connection over it is closed with 4008.',
  },
  { key: 'maxBodySize', env: 'HERALD_MAX_BODY_BYTES', flag: '--max-body-bytes', type: 'int', description: 'Largest HTTP API request body (413 above it).' },
  {
    key: 'maxPublishChannels',
    env: 'HERALD_MAX_PUBLISH_CHANNELS',
    flag: '--max-publish-channels',
    type: 'int',
    description: 'Most channels in one publish, and most items in one publish array.',
  },
  {
    key: 'shutdownTimeout',
    env: 'HERALD_SHUTDOWN_TIMEOUT_MS',
    flag: '--shutdown-timeout-ms',
    type: 'int',
    description: 'How long a graceful shutdown waits for clients to close before dropping them.',
  },
  {
    key: 'historySize',
    env: 'HERALD_HISTORY_SIZE',
    flag: '--history-size',
    type: 'int',
    description: 'Messages kept per channel for recovery (0 disables history).',
  },
  { key: 'historyTtl', env: 'HERALD_HISTORY_TTL_MS', flag: '--history-ttl-ms', type: 'int', description: 'How long a message stays in history.' },
  {
    key: 'historyMaxBytes',
    env: 'HERALD_HISTORY_MAX_BYTES',
    flag: '--history-max-bytes',
    type: 'int',
    description:
      "Bytes of messages kept in one channel's history (oldest dropped first); a larger message is delivered but not kept, so recovery across it says recovered:false.",
  },
  {
    key: 'historyTotalBytes',
    env: 'HERALD_HISTORY_TOTAL_BYTES',
    flag: '--history-total-bytes',
    type: 'int',
    description: 'Memory engine: bytes of history kept by the whole process; past it the least recently published channels lose their oldest messages.',
  },
  {
    key: 'idempotencyMaxKeys',
    env: 'HERALD_IDEMPOTENCY_MAX_KEYS',
    flag: '--idempotency-max-keys',
    type: 'int',
    description:
      'Memory engine: most publish ids remembered (about 40 bytes each; the default covers 10 000 publishes/s with ids for 5 minutes). Past it the oldest id is forgotten early, counted in herald_idempotency_early_evictions_total.',
  },
  {
    key: 'idempotencyTtl',
    env: 'HERALD_IDEMPOTENCY_TTL_MS',
    flag: '--idempotency-ttl-ms',
    type: 'int',
    description: 'How long a publish id is remembered (a repeat within it publishes nothing).',
  },
  {
    key: 'demo',
    env: 'HERALD_DEMO',
    flag: '--demo',
    type: 'bool',
    description: 'Serve the demo page at / (browser SDK + publish form).',
    defaultNote: 'false (true in development mode)',
  },
  {
    key: 'admin',
    env: 'HERALD_ADMIN',
    flag: '--admin',
    type: 'bool',
    description:
      'Serve the admin dashboard at /admin (live stats over the WebSocket, publish and disconnect forms); it asks for the API key. See docs/metrics.md.',
  },
  {
    key: 'metricsTokens',
    env: 'HERALD_METRICS_TOKEN',
    flag: '--metrics-token',
    type: 'list',
    secret: true,
    description:
      'Bearer token(s) that may read /metrics besides the API keys (comma-separated for rotation; at least 16 characters each), for a scraper that must not publish.',
    defaultNote: 'none (/metrics takes an API key)',
  },
  {
    key: 'redisUrl',
    env: 'HERALD_REDIS_URL',
    flag: '--redis-url',
    type: 'string',
    secret: true,
    description: 'Redis URL (redis://[user:password@]host:port[/db], rediss:// for TLS); set, it selects the Redis engine for many processes and machines.',
    defaultNote: 'none (the in-memory engine)',
  },
  {
    key: 'redisPrefix',
    env: 'HERALD_REDIS_PREFIX',
    flag: '--redis-prefix',
    type: 'string',
    description: 'Prefix of every Redis key and pub/sub channel (several clusters can share one Redis).',
  },
  {
    key: 'redisSharded',
    env: 'HERALD_REDIS_SHARDED',
    flag: '--redis-sharded',
    type: 'bool',
    description: 'Use sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis 7+, for Redis Cluster).',
  },
  {
    key: 'presenceTtl',
    env: 'HERALD_PRESENCE_TTL_MS',
    flag: '--presence-ttl-ms',
    type: 'int',
    description: 'Redis engine: a node that dies without cleaning up leaves presence within this time.',
  },
  {
    key: 'nodeId',
    env: 'HERALD_NODE_ID',
    flag: '--node-id',
    type: 'string',
    description: "This node's id in the cluster (unique per process).",
    defaultNote: 'random',
  },
  {
    key: 'ingest',
    env: 'HERALD_INGEST',
    flag: '--ingest',
    type: 'bool',
    description: 'Redis engine: publish what backends write to <prefix>:ingest (XADD) and <prefix>:publish (PUBLISH).',
  },
  {
    key: 'workers',
    env: 'HERALD_WORKERS',
    flag: '--workers',
    type: 'int',
    description: 'Gateway processes sharing the port (each a full node; needs the Redis engine above 1).',
    defaultNote: 'the number of cores with Redis, 1 without',
  },
  {
    key: 'config',
    env: 'HERALD_CONFIG',
    flag: '--config',
    type: 'string',
    description:
      'A JSON file of settings, keyed by the names in the first column (e.g. {"port": 8080, "redisUrl": "redis://..."}); environment variables and flags override it.',
    defaultNote: 'none',
  },
  {
    key: 'transport',
    env: 'HERALD_TRANSPORT',
    flag: '--transport',
    type: 'enum',
    values: ['ws', 'uws'],
    description: 'WebSocket library: ws, or uws (uWebSockets.js, installed separately; it then serves the port and relays HTTP to the API).',
  },
  {
    key: 'pusherAppId',
    env: 'HERALD_PUSHER_APP_ID',
    flag: '--pusher-app-id',
    type: 'string',
    description: 'A Pusher app (docs/pusher.md): its id ([A-Za-z0-9_-]{1,64}); needs the key and the secret too. Added to pusherApps.',
    defaultNote: 'none',
  },
  {
    key: 'pusherAppKey',
    env: 'HERALD_PUSHER_APP_KEY',
    flag: '--pusher-app-key',
    type: 'string',
    description: "The Pusher app's key (clients connect to /app/<key>).",
    defaultNote: 'none',
  },
  {
    key: 'pusherAppSecret',
    env: 'HERALD_PUSHER_APP_SECRET',
    flag: '--pusher-app-secret',
    type: 'string',
    secret: true,
    description: "The Pusher app's secret (signs subscriptions, sign-ins and HTTP API requests; at least 16 characters).",
    defaultNote: 'none',
  },
  {
    key: 'pusherApps',
    env: 'HERALD_PUSHER_APPS',
    flag: '--pusher-apps',
    type: 'json',
    secret: true,
    description:
      'Pusher apps as a JSON array of {id, key, secret} objects with optional limits (maxConnections, clientEvents, clientEventRate, maxEventSize, maxPresenceMembers, activityTimeout, webhooks); see docs/pusher.md. None: the Pusher endpoints do not exist.',
  },
  { key: 'logLevel', env: 'HERALD_LOG_LEVEL', flag: '--log-level', type: 'enum', values: LOG_LEVELS, description: 'Log level (JSON logs on stdout).' },
];

/** The default of a setting, as text for docs and help. */
export function defaultText(s: Setting): string {
  if (s.defaultNote !== undefined) return s.defaultNote;
  const v = s.key in NODE_DEFAULTS ? NODE_DEFAULTS[s.key as keyof NodeSettings] : DEFAULTS[s.key as keyof typeof DEFAULTS];
  if (Array.isArray(v)) return v.length === 0 ? 'empty' : v.join(',');
  return String(v);
}

/** A setting that could not be parsed; the message names it. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Parsed configuration: gateway options, process settings, and which keys were set explicitly. */
export interface Config {
  options: GatewayOptions;
  node: NodeSettings;
  explicit: Set<string>;
  /** The log level (also in `node`). */
  logLevel: LogLevel;
}

function parseValue(s: Setting, raw: string, source: string, readFile: (path: string) => string): unknown {
  switch (s.type) {
    case 'int': {
      if (!/^\d+$/.test(raw.trim())) throw new ConfigError(`${source}: expected a non-negative integer, got ${JSON.stringify(raw)}`);
      return Number(raw.trim());
    }
    case 'bool': {
      const v = raw.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(v)) return true;
      if (['0', 'false', 'no', 'off'].includes(v)) return false;
      throw new ConfigError(`${source}: expected true or false, got ${JSON.stringify(raw)}`);
    }
    case 'list':
      return splitList(raw);
    case 'files':
      return splitList(raw).map((path) => {
        try {
          return readFile(path);
        } catch (err) {
          throw new ConfigError(`${source}: cannot read ${path} (${err instanceof Error ? err.message : String(err)})`);
        }
      });
    case 'enum':
      if (!s.values?.includes(raw)) throw new ConfigError(`${source}: expected one of ${s.values?.join(', ')}, got ${JSON.stringify(raw)}`);
      return raw;
    case 'string':
      return raw;
    case 'json':
      return jsonArray(raw, source);
  }
}

/** A JSON array of objects (the `json` settings: Pusher apps). */
function jsonArray(raw: string | unknown[], source: string): Array<Record<string, unknown>> {
  let v: unknown = raw;
  if (typeof raw === 'string') {
    try {
      v = JSON.parse(raw);
    } catch {
      throw new ConfigError(`${source}: expected a JSON array of objects, got invalid JSON`);
    }
  }
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'object' && x !== null && !Array.isArray(x))) {
    throw new ConfigError(`${source}: expected a JSON array of objects`);
  }
  return v as Array<Record<string, unknown>>;
}

/**
 * The gateway options with the app of HERALD_PUSHER_APP_ID/KEY/SECRET (or their flags) added to `pusherApps`,
 * replacing an app with the same id from the file. The three go together; one alone is a ConfigError.
 */
export function withPusherApp(options: GatewayOptions, node: NodeSettings): GatewayOptions {
  const { pusherAppId: id, pusherAppKey: key, pusherAppSecret: secret } = node;
  if (id === undefined && key === undefined && secret === undefined) return options;
  if (id === undefined || key === undefined || secret === undefined) {
    throw new ConfigError('HERALD_PUSHER_APP_ID, HERALD_PUSHER_APP_KEY and HERALD_PUSHER_APP_SECRET (or their flags) go together: set all three');
  }
  return { ...options, pusherApps: [...(options.pusherApps ?? []).filter((a) => a.id !== id), { id, key, secret }] };
}

function splitList(raw: string): string[] {
  return raw
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0);
}

/**
 * Reads settings from the configuration file, environment variables, then flags (flags win). Unknown flags and unknown
 * `HERALD_*` variables are errors that name the offender, so a typo never silently falls back to a default.
 */
export function parseConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  readFile: (path: string) => string = (p) => readFileSync(p, 'utf8'),
): Config {
  const values = new Map<string, unknown>();
  const byEnv = new Map(SETTINGS.map((s) => [s.env, s]));
  const byFlag = new Map(SETTINGS.map((s) => [s.flag, s]));
  const byKey = new Map(SETTINGS.map((s) => [s.key as string, s]));
  // HERALD_URL is the gateway's address for clients (CLI publish, the PHP examples); HERALD_DEV_API_KEY is how a
  // primary hands its development key to its workers. Neither configures the server.
  const knownEnv = new Set([...byEnv.keys(), 'HERALD_URL', 'HERALD_DEV_API_KEY']);
  const fromEnv = new Map<string, unknown>();
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('HERALD_') || raw === undefined) continue;
    const s = byEnv.get(name);
    if (!s) {
      if (knownEnv.has(name)) continue;
      throw new ConfigError(`unknown environment variable ${name} (see docs/configuration.md)`);
    }
    fromEnv.set(s.key, parseValue(s, raw, name, readFile));
  }
  const fromFlags = new Map<string, unknown>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const s = byFlag.get(flag);
    if (!s) throw new ConfigError(`unknown option ${flag} (see herald --help)`);
    let raw: string | undefined;
    if (eq > 0) raw = arg.slice(eq + 1);
    else if (s.type === 'bool' && (argv[i + 1] === undefined || (argv[i + 1] as string).startsWith('--'))) raw = 'true';
    else raw = argv[++i];
    if (raw === undefined) throw new ConfigError(`${flag}: a value is required`);
    fromFlags.set(s.key, parseValue(s, raw, flag, readFile));
  }
  // Precedence: flags, then environment variables, then the configuration file, then defaults.
  const file = (fromFlags.get('config') ?? fromEnv.get('config')) as string | undefined;
  if (file !== undefined) {
    for (const [k, v] of readConfigFile(file, readFile, byKey)) values.set(k, v);
  }
  for (const [k, v] of fromEnv) values.set(k, v);
  for (const [k, v] of fromFlags) values.set(k, v);
  const options: Record<string, unknown> = {};
  const node: Record<string, unknown> = { ...NODE_DEFAULTS };
  for (const [k, v] of values) {
    if (k in NODE_DEFAULTS) node[k] = v;
    else options[k] = v;
  }
  const n = node as unknown as NodeSettings;
  return { options: options as GatewayOptions, node: n, logLevel: n.logLevel, explicit: new Set(values.keys()) };
}

/** Reads a JSON configuration file: an object keyed by setting names, with JSON values of the setting's type. */
function readConfigFile(path: string, readFile: (path: string) => string, byKey: ReadonlyMap<string, Setting>): Map<string, unknown> {
  let text: string;
  try {
    text = readFile(path);
  } catch (err) {
    throw new ConfigError(`${path}: cannot read the configuration file (${err instanceof Error ? err.message : String(err)})`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${path}: not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new ConfigError(`${path}: must be a JSON object of settings`);
  const out = new Map<string, unknown>();
  for (const [key, value] of Object.entries(data)) {
    const s = byKey.get(key);
    if (!s || key === 'config') throw new ConfigError(`${path}: unknown setting "${key}" (see docs/configuration.md)`);
    const where = `${path}: ${key}`;
    // JSON values are taken as they are typed; strings go through the same parser as the environment.
    if (typeof value === 'string') out.set(key, parseValue(s, value, where, readFile));
    else if (s.type === 'int' && typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) out.set(key, value);
    else if (s.type === 'bool' && typeof value === 'boolean') out.set(key, value);
    else if (s.type === 'list' && Array.isArray(value) && value.every((v): v is string => typeof v === 'string')) out.set(key, value);
    else if (s.type === 'json' && Array.isArray(value)) out.set(key, jsonArray(value, where));
    else if (s.type === 'files' && Array.isArray(value) && value.every((v): v is string => typeof v === 'string'))
      out.set(key, parseValue(s, value.join(','), where, readFile));
    else
      throw new ConfigError(
        `${where}: expected ${s.type === 'json' ? 'an array of objects' : s.type === 'list' || s.type === 'files' ? 'an array of strings' : s.type === 'int' ? 'a non-negative integer' : s.type === 'bool' ? 'true or false' : 'a string'}`,
      );
  }
  return out;
}

/** `--help` text generated from the schema. */
export function helpText(): string {
  const lines = SETTINGS.map(
    (s) => `  ${`${s.flag}${s.type === 'bool' ? '' : ' <value>'}`.padEnd(30)} ${s.description} [${s.env}; default: ${defaultText(s)}]`,
  );
  return [
    'Usage: herald [serve] [options]',
    '',
    'Starts the Herald gateway. Every option can also be set with its environment variable or in a JSON file',
    '(--config); flags win over the environment, which wins over the file.',
    'With no API key and no JWT secret it starts in development mode (a generated API key is printed once,',
    'anonymous clients allowed). NODE_ENV=production refuses to start without secrets.',
    '',
    'Options:',
    ...lines,
    `  ${'--help'.padEnd(30)} Show this help.`,
    `  ${'--version'.padEnd(30)} Show the version.`,
  ].join('\n');
}
