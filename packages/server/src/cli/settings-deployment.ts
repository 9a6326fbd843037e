/**
 * The settings of a deployment, the second half of the schema (settings.ts): the engine (Redis, Redis Cluster,
 * presence), the process (node id, ingest, workers, configuration file, transport), the Pusher apps, and logging.
 */
import { LOG_LEVELS } from '../util/logger.js';
import { LOG_FORMATS, type Setting } from './setting-schema.js';

export const DEPLOYMENT_SETTINGS: readonly Setting[] = [
  {
    key: 'redisUrl',
    env: 'HERALD_REDIS_URL',
    flag: '--redis-url',
    type: 'string',
    secret: true,
    description:
      'Redis URL (redis://[user:password@]host:port[/db], rediss:// for TLS, redis+cluster://host:port,host:port for a Redis Cluster); set, it selects the Redis engine for many processes and machines.',
    defaultNote: 'none (the in-memory engine)',
  },
  {
    key: 'redisCluster',
    env: 'HERALD_REDIS_CLUSTER',
    flag: '--redis-cluster',
    type: 'string',
    description:
      'Redis Cluster nodes to start from (host:port,host:port; Redis 7+), instead of a Redis URL (the URL form redis+cluster://host:port,host:port works too): keys of one operation share a slot, pub/sub is sharded.',
    defaultNote: 'none',
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
    description: 'Use sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis 7+); always on with HERALD_REDIS_CLUSTER or a redis+cluster:// URL.',
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
    description:
      'Gateway processes sharing the port (each a full node; needs the Redis engine above 1). One `/metrics` and one `/api/stats` answer for all of them (summed; per-worker gauges labelled `worker`). A worker that dies is forked anew (after 1 s, doubling up to 30 s while they keep dying, a new one that fails to start included); one of the first that fails to start stops the gateway.',
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
    description:
      "WebSocket library: ws, or uws (uWebSockets.js, installed separately from its authors' GitHub releases: npm install uNetworking/uWebSockets.js#<tag>; it then serves the port, the HTTP API included).",
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
      'Pusher apps as a JSON array of {id, key, secret} objects with optional limits (maxConnections, clientEvents, clientEventRate, maxEventSize, maxPresenceMembers, activityTimeout, webhooks, webhookRetryFor, batchWebhooks); see docs/pusher.md. None: the Pusher endpoints do not exist.',
  },
  { key: 'logLevel', env: 'HERALD_LOG_LEVEL', flag: '--log-level', type: 'enum', values: LOG_LEVELS, description: 'Log level (logs go to stdout).' },
  {
    key: 'logFormat',
    env: 'HERALD_LOG_FORMAT',
    flag: '--log-format',
    type: 'enum',
    values: LOG_FORMATS,
    description: 'Log lines as JSON, as human-readable text (pretty), or auto: pretty in development mode when stdout is a terminal, JSON otherwise.',
  },
  {
    key: 'devAllowRemote',
    env: 'HERALD_DEV_ALLOW_REMOTE',
    flag: '--dev-allow-remote',
    type: 'bool',
    description:
      'Let development mode (no API key, no JWT secret: anonymous clients, a generated key) listen on an interface other than loopback. Anyone who can reach it can connect.',
  },
];
