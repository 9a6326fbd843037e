/**
 * The configuration schema: every setting with its option name, environment variable, flag, type, default and
 * documentation. The CLI parses with it (config.ts), `--help` and docs/configuration.md are generated from it. The
 * gateway's own settings are here; the deployment's (engine, process, Pusher apps, logging) in settings-deployment.ts.
 */
import type { Setting } from './setting-schema.js';
import { DEPLOYMENT_SETTINGS } from './settings-deployment.js';

export { LOG_FORMATS, NODE_DEFAULTS, type LogFormat, type NodeSettings, type Setting, type SettingType } from './setting-schema.js';

/**
 * The one configuration schema: the CLI parses flags and environment variables with it and
 * docs/configuration.md is generated from it (a test keeps them in step).
 */ export const SETTINGS: readonly Setting[] = [
  { key: 'port', env: 'HERALD_PORT', flag: '--port', type: 'int', description: 'TCP port to listen on (0 picks a free port).' },
  {
    key: 'host',
    env: 'HERALD_HOST',
    flag: '--host',
    type: 'string',
    description: 'Interface to listen on; 0.0.0.0 for every interface (an empty value is refused).',
  },
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
    key: 'jwtAudiences',
    env: 'HERALD_JWT_AUDIENCE',
    flag: '--jwt-audience',
    type: 'list',
    description:
      'Accepted aud values of connection tokens (comma-separated): a token must name one. Set it with an identity provider shared by other applications, or its tokens for them connect here too.',
    defaultNote: 'none (aud not checked)',
  },
  {
    key: 'jwtIssuers',
    env: 'HERALD_JWT_ISSUER',
    flag: '--jwt-issuer',
    type: 'list',
    description: 'Accepted iss values of connection tokens (comma-separated): a token must carry one.',
    defaultNote: 'none (iss not checked)',
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
    description:
      'Allowed Origin headers for WebSocket upgrades (comma-separated): exact origins (scheme://host[:port], no path or trailing slash; anything else is refused at start), * for any, same-origin for pages of the host clients connect to. Empty allows any in development and means same-origin with NODE_ENV=production.',
    defaultNote: 'empty (any origin; same-origin with NODE_ENV=production)',
  },
  {
    key: 'requestTimeout',
    env: 'HERALD_REQUEST_TIMEOUT_MS',
    flag: '--request-timeout-ms',
    type: 'int',
    description:
      'Time a new TCP connection has to complete an HTTP request (headers and body) or a WebSocket upgrade before it is destroyed (transport ws; uWebSockets.js has its own fixed 10 s).',
  },
  {
    key: 'maxConnections',
    env: 'HERALD_MAX_CONNECTIONS',
    flag: '--max-connections',
    type: 'int',
    description: 'Most open WebSocket connections per process; upgrades beyond it get HTTP 503 (too_many_connections) with Retry-After.',
    defaultNote: "80% of the process's file-descriptor limit less 256 (see docs/security.md)",
  },
  {
    key: 'maxConnectionsPerIp',
    env: 'HERALD_MAX_CONNECTIONS_PER_IP',
    flag: '--max-connections-per-ip',
    type: 'int',
    description:
      'Most open WebSocket connections per client address (HTTP 429 too_many_connections_per_ip beyond it), and, on transport ws, most not-yet-upgraded sockets per TCP peer (dropped beyond it; uWebSockets.js only times them out after 10 s).',
  },
  {
    key: 'maxPendingConnections',
    env: 'HERALD_MAX_PENDING_CONNECTIONS',
    flag: '--max-pending-connections',
    type: 'int',
    description:
      'Most sockets that are not WebSockets (yet): HTTP requests and handshakes in progress; beyond it the oldest idle one is dropped (transport ws).',
    defaultNote: "20% of the process's file-descriptor limit less 256",
  },
  {
    key: 'connectRate',
    env: 'HERALD_CONNECT_RATE',
    flag: '--connect-rate',
    type: 'int',
    description: 'New WebSocket connections per second per client address, sustained (HTTP 429 connect_rate_limited beyond it).',
  },
  {
    key: 'connectBurst',
    env: 'HERALD_CONNECT_BURST',
    flag: '--connect-burst',
    type: 'int',
    description: 'New WebSocket connections per client address in a burst.',
  },
  {
    key: 'trustedProxies',
    env: 'HERALD_TRUSTED_PROXIES',
    flag: '--trusted-proxies',
    type: 'list',
    description:
      'Addresses or CIDR ranges (comma-separated) of reverse proxies whose forwarding header (HERALD_FORWARDED_HEADER) names the client (a proxy that names none is limited only globally); nobody else is believed. Add your load balancer; empty trusts nobody.',
  },
  {
    key: 'forwardedHeader',
    env: 'HERALD_FORWARDED_HEADER',
    flag: '--forwarded-header',
    type: 'enum',
    values: ['x-forwarded-for', 'forwarded'],
    description:
      'The forwarding header the trusted proxies write, the only one read: x-forwarded-for (nginx, HAProxy, most load balancers; with X-Forwarded-Host) or forwarded (RFC 7239). A proxy passes the other through as the client wrote it.',
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
    description: 'Period of the single heartbeat/timeout sweep over all connections (each pass spread over ten ticks, a tenth of the connections each).',
  },
  { key: 'maxFrameSize', env: 'HERALD_MAX_FRAME_BYTES', flag: '--max-frame-bytes', type: 'int', description: 'Largest client frame (close 1009 above it).' },
  {
    key: 'presenceMaxMembers',
    env: 'HERALD_PRESENCE_MAX_MEMBERS',
    flag: '--presence-max-members',
    type: 'int',
    description: "Above this many members, a presence channel's subscribed answer and join/leave frames carry only the count.",
  },
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
  {
    key: 'clientBurst',
    env: 'HERALD_CLIENT_BURST',
    flag: '--client-burst',
    type: 'int',
    description:
      'Client frames allowed in a burst per connection; on Pusher connections at least maxSubscriptions + 10 whatever is set (pusher-js subscribes each channel with a frame of its own as it connects).',
  },
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
  {
    key: 'maxBodySize',
    env: 'HERALD_MAX_BODY_BYTES',
    flag: '--max-body-bytes',
    type: 'int',
    description: 'Largest HTTP API request body (413 above it), and largest Redis ingest message (dead-lettered above it).',
  },
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
    key: 'historyMetaTtl',
    env: 'HERALD_HISTORY_META_TTL_MS',
    flag: '--history-meta-ttl-ms',
    type: 'int',
    defaultNote: 'the larger of historyTtl and 3600000 (1 hour)',
    description:
      "How long a published channel's seq and epoch outlive its last use (a publish or a read of its position; kept while subscribed), at least HERALD_HISTORY_TTL_MS: a client back within it learns whether it missed anything; later, the channel starts a new epoch. Memory engine: about 300 bytes per published channel for that long, history or not.",
  },
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
    description:
      'Memory engine: bytes of history kept by the whole process; past it the least recently published channels lose their oldest messages. Counts the messages; the buffers holding them take 1.2-2x that, plus up to 16 MiB of emptied buffers kept for reuse (herald_history_buffer_bytes).',
  },
  {
    key: 'idempotencyMaxKeys',
    env: 'HERALD_IDEMPOTENCY_MAX_KEYS',
    flag: '--idempotency-max-keys',
    type: 'int',
    description:
      'Memory engine: most publish ids remembered (about 40 bytes each; the default covers 10 000 publishes/s with ids for 5 minutes), as many again for inbox publishes and for direct ones. Past it the oldest id is forgotten early, counted in herald_idempotency_early_evictions_total.',
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
    key: 'inboxTtl',
    env: 'HERALD_INBOX_TTL_MS',
    flag: '--inbox-ttl-ms',
    type: 'int',
    description: 'How long an inbox message (a publish with "inbox": true) is kept unless acknowledged; a publish\'s "ttl" overrides it. See docs/inbox.md.',
  },
  {
    key: 'inboxMaxMessages',
    env: 'HERALD_INBOX_MAX_MESSAGES',
    flag: '--inbox-max-messages',
    type: 'int',
    description: 'Most messages kept in one user\'s inbox; past it the oldest is dropped (counted in herald_messages_dropped_total{reason="inbox_full"}).',
  },
  {
    key: 'inboxMaxReceipts',
    env: 'HERALD_INBOX_MAX_RECEIPTS',
    flag: '--inbox-max-receipts',
    type: 'int',
    description:
      'Memory engine: most delivery receipts kept (publishes with "receipt": true; about 180 bytes each, each until its message\'s expiry). Past it the oldest receipt goes early (its GET /api/receipts answers 404), counted in herald_inbox_receipts_evicted_total. With the Redis engine receipts are Redis keys.',
  },
  {
    key: 'inboxTotalBytes',
    env: 'HERALD_INBOX_TOTAL_BYTES',
    flag: '--inbox-total-bytes',
    type: 'int',
    description:
      "Memory engine: bytes every user's inbox messages may take together (each message counts its frame plus 512 bytes, each user with messages 256 more). Past it an inbox publish is refused with inbox_storage_full (HTTP 507; nothing is dropped to make room), counted in herald_inbox_rejected_total; herald_inbox_bytes shows the total. With the Redis engine inboxes are Redis keys (bound them with Redis's maxmemory).",
  },
  {
    key: 'webhooks',
    env: 'HERALD_WEBHOOKS',
    flag: '--webhooks',
    type: 'json',
    secret: true,
    description:
      'Webhook endpoints, a JSON array of {"name", "url", "secret": "whsec_...", "events": [...], "channels": [prefixes]} (events and channels optional: all). Usually in the --config file. See docs/webhooks.md. (The Pusher apps\' webhooks are in pusherApps.)',
    defaultNote: 'none',
  },
  {
    key: 'webhookUrl',
    env: 'HERALD_WEBHOOK_URL',
    flag: '--webhook-url',
    type: 'string',
    description: 'One webhook endpoint, the simple case: its http(s) URL, without a user or password (HERALD_WEBHOOK_SECRET is required with it).',
    defaultNote: 'none',
  },
  {
    key: 'webhookSecret',
    env: 'HERALD_WEBHOOK_SECRET',
    flag: '--webhook-secret',
    type: 'string',
    secret: true,
    description: 'The signing secret of HERALD_WEBHOOK_URL: whsec_ and the base64 of at least 24 random bytes (Standard Webhooks).',
    defaultNote: 'none',
  },
  {
    key: 'webhookEvents',
    env: 'HERALD_WEBHOOK_EVENTS',
    flag: '--webhook-events',
    type: 'list',
    description:
      'The event types HERALD_WEBHOOK_URL receives (comma-separated: user.online, user.offline, channel.occupied, channel.vacated, message.acked, client.publish); empty: all.',
  },
  {
    key: 'webhookRetryFor',
    env: 'HERALD_WEBHOOK_RETRY_FOR_MS',
    flag: '--webhook-retry-for-ms',
    type: 'int',
    description:
      "How long a delivery to a native webhook endpoint is retried (exponential back-off with jitter, at most 10 minutes apart) before it is dead-lettered. A Pusher app's webhooks have their own (its webhookRetryFor, 5 minutes).",
  },
  {
    key: 'webhookOfflineDelay',
    env: 'HERALD_WEBHOOK_OFFLINE_DELAY_MS',
    flag: '--webhook-offline-delay-ms',
    type: 'int',
    description:
      "How long after a user's last connection closed user.offline is sent; a connection within it cancels it (a page reload is not an offline/online pair).",
  },
  {
    key: 'webhookTimeout',
    env: 'HERALD_WEBHOOK_TIMEOUT_MS',
    flag: '--webhook-timeout-ms',
    type: 'int',
    description: 'Most time one webhook request may take before it counts as failed (every endpoint, native and Pusher).',
  },
  {
    key: 'clientPublishRate',
    env: 'HERALD_CLIENT_PUBLISH_RATE',
    flag: '--client-publish-rate',
    type: 'int',
    description:
      'Client publishes (publish frames of tokens with a publish claim) per second per connection, sustained and in a burst (error rate_limited above it).',
  },
  {
    key: 'clientPublishUserRate',
    env: 'HERALD_CLIENT_PUBLISH_USER_RATE',
    flag: '--client-publish-user-rate',
    type: 'int',
    description: 'Client publishes per second per user on one node, all its connections together (error rate_limited above it).',
  },
  {
    key: 'clientPublishMaxBytes',
    env: 'HERALD_CLIENT_PUBLISH_MAX_BYTES',
    flag: '--client-publish-max-bytes',
    type: 'int',
    description: 'Largest payload of a client publish, serialized (error payload_too_large above it).',
  },
  {
    key: 'publishHookUrl',
    env: 'HERALD_PUBLISH_HOOK_URL',
    flag: '--publish-hook-url',
    type: 'string',
    description:
      'An http(s) URL (without a user or password) asked about every client publish before it is published: accept, reject with a reason, or rewrite (docs/protocol.md, "The publish hook").',
    defaultNote: 'none',
  },
  {
    key: 'publishHookSecret',
    env: 'HERALD_PUBLISH_HOOK_SECRET',
    flag: '--publish-hook-secret',
    type: 'string',
    secret: true,
    description: "The publish hook requests' signing secret (whsec_ and base64, Standard Webhooks); HERALD_WEBHOOK_SECRET when not set.",
    defaultNote: 'HERALD_WEBHOOK_SECRET',
  },
  {
    key: 'publishHookTimeout',
    env: 'HERALD_PUBLISH_HOOK_TIMEOUT_MS',
    flag: '--publish-hook-timeout-ms',
    type: 'int',
    description: 'Most time the publish hook may take to answer; then it has failed (see HERALD_PUBLISH_HOOK_FAILURE).',
  },
  {
    key: 'publishHookFailure',
    env: 'HERALD_PUBLISH_HOOK_FAILURE',
    flag: '--publish-hook-failure',
    type: 'enum',
    values: ['deny', 'allow'],
    description:
      'What a failed publish hook (timeout, error status, unusable answer) means: deny the publish (error publish_hook_failed), or allow it unchanged.',
  },
  {
    key: 'publishHookMaxInFlight',
    env: 'HERALD_PUBLISH_HOOK_MAX_IN_FLIGHT',
    flag: '--publish-hook-max-in-flight',
    type: 'int',
    description: 'Most publish hook requests in flight at once per process; past it a client publish counts as a failed hook.',
  },
  ...DEPLOYMENT_SETTINGS,
];
