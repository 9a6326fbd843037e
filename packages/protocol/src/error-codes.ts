/**
 * Every error code Herald puts in a WebSocket `error` frame or an HTTP error body.
 * docs/errors.md documents each one; a test keeps the two in step.
 *
 * Error codes, close codes and HTTP statuses are three separate spaces: an error frame never closes the
 * connection by itself (a close frame with its own code follows when it does).
 */
export const ErrorCode = {
  // --- WebSocket frames -------------------------------------------------------------------------
  /** A binary frame arrived; protocol v1 is JSON text frames only. */
  BinaryFrame: 'binary_frame',
  /** A text frame that is not valid JSON. */
  InvalidJson: 'invalid_json',
  /** A JSON frame that is not an object with a string `type`, or a field with the wrong type or a missing field. */
  InvalidFrame: 'invalid_frame',
  /** A frame `type` the server does not know. */
  UnknownType: 'unknown_type',
  /** A frame other than `connect` (or `ping`) before the connection was established. */
  NotConnected: 'not_connected',
  /** A second `connect` frame on an established connection. */
  AlreadyConnected: 'already_connected',
  /** A channel name that does not match `[A-Za-z0-9_\-:.@=]{1,200}`. */
  InvalidChannel: 'invalid_channel',
  /** Not allowed: someone else's `user:` channel, a `private:` channel the token does not grant, a `client:` channel, a publish the token's `publish` claim does not grant; or a WebSocket upgrade from an origin that is not allowed (HTTP 403). */
  Forbidden: 'forbidden',
  /** The connection already has the maximum number of subscriptions. */
  TooManySubscriptions: 'too_many_subscriptions',
  /** The connection (or its address) brought new channels to the node faster than the limit. */
  TooManyChannels: 'too_many_channels',
  /** The engine could not serve the request (history or presence unavailable); retry later. */
  EngineUnavailable: 'engine_unavailable',
  /** A command was sent to the engine and not answered in time: the outcome is unknown; retry with the same id. */
  EngineTimeout: 'engine_timeout',
  /** A client publish beyond the publish rate of the connection or of its user. */
  RateLimited: 'rate_limited',
  /** A client publish whose payload is larger than the gateway's limit for client publishes. */
  PayloadTooLarge: 'payload_too_large',
  /** The publish hook refused a client publish; the message is the hook's reason. */
  PublishRejected: 'publish_rejected',
  /** The publish hook did not answer in time or answered something unusable, and the gateway denies on failure. */
  PublishHookFailed: 'publish_hook_failed',

  // --- HTTP API ---------------------------------------------------------------------------------
  /** Missing or wrong `Authorization: Bearer <api key>`. */
  Unauthorized: 'unauthorized',
  /** The request body is not valid JSON. */
  InvalidBody: 'invalid_body',
  /** A required field is missing. `field` names it. */
  MissingField: 'missing_field',
  /** A field has the wrong type or an invalid value. `field` names it. */
  InvalidField: 'invalid_field',
  /** The message `type` is one of the protocol's reserved frame types. */
  ReservedType: 'reserved_type',
  /** The payload nests objects and arrays deeper than the limit (MAX_PAYLOAD_DEPTH). */
  PayloadTooDeep: 'payload_too_deep',
  /** The request body is larger than the configured maximum. */
  BodyTooLarge: 'body_too_large',
  /** The request body is not `application/json`. */
  UnsupportedMediaType: 'unsupported_media_type',
  /** No such route, or a WebSocket upgrade on a path that is not a WebSocket path (the body lists the valid `paths`). */
  NotFound: 'not_found',
  /** A plain HTTP request on a WebSocket path. */
  UpgradeRequired: 'upgrade_required',
  /** A WebSocket upgrade that is not a valid handshake (not GET, no valid `Sec-WebSocket-Key`, a version other than 13 or 8). */
  InvalidHandshake: 'invalid_handshake',
  /** The bytes received are not a valid HTTP/1.1 request; answered, then the connection is closed. */
  MalformedRequest: 'malformed_request',
  /** The request asks for an expectation the gateway does not meet (an `Expect` other than `100-continue`). */
  ExpectationFailed: 'expectation_failed',
  /** A request did not arrive completely in time (Node's request timeout); answered, then the connection is closed. */
  RequestTimeout: 'request_timeout',
  /** The request's headers exceed Node's limit; answered, then the connection is closed. */
  HeadersTooLarge: 'headers_too_large',
  /** The route exists but not for this HTTP method. */
  MethodNotAllowed: 'method_not_allowed',
  /** A publish targeted a client id that has no connection. */
  NoSuchClient: 'no_such_client',
  /** No inbox message (or receipt) with this id: never published, acknowledged, removed or expired. */
  NoSuchMessage: 'no_such_message',
  /** An inbox publish refused: the memory engine's inboxes hold `inboxTotalBytes` (HTTP 507). */
  InboxStorageFull: 'inbox_storage_full',
  /** The gateway is shutting down and accepts no more work. */
  ShuttingDown: 'shutting_down',
  /** A WebSocket upgrade refused: the gateway holds `maxConnections` connections (HTTP 503 with `Retry-After`). */
  TooManyConnections: 'too_many_connections',
  /** A WebSocket upgrade refused: the client's address holds `maxConnectionsPerIp` connections (HTTP 429 with `Retry-After`). */
  TooManyConnectionsPerIp: 'too_many_connections_per_ip',
  /** A WebSocket upgrade refused: the client's address opens connections faster than `connectRate` (HTTP 429 with `Retry-After`). */
  ConnectRateLimited: 'connect_rate_limited',
  /** Unexpected server error (details are in the server log, never in the response). */
  Internal: 'internal',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Where an error code can appear. */
export type ErrorSurface = 'ws' | 'http' | 'both';

/** The catalogue: surface, HTTP status (for HTTP-facing codes) and a one-line description. */
export const ERROR_CODE_INFO: Readonly<Record<ErrorCode, { surface: ErrorSurface; status?: number; description: string }>> = {
  binary_frame: { surface: 'ws', description: 'A binary frame arrived; only JSON text frames are accepted.' },
  invalid_json: { surface: 'ws', description: 'A text frame is not valid JSON.' },
  invalid_frame: { surface: 'ws', description: 'A frame is not an object with a string type, or a field is missing or has the wrong type.' },
  unknown_type: { surface: 'ws', description: 'A frame type the server does not know.' },
  not_connected: { surface: 'ws', description: 'A frame other than connect or ping before connect.' },
  already_connected: { surface: 'ws', description: 'A second connect frame.' },
  invalid_channel: { surface: 'both', status: 400, description: 'A channel name that does not match [A-Za-z0-9_\\-:.@=]{1,200}.' },
  forbidden: {
    surface: 'both',
    status: 403,
    description: 'Not allowed: a subscription or client publish this connection may not make, or a WebSocket upgrade from an origin that is not allowed.',
  },
  too_many_subscriptions: { surface: 'ws', description: 'The connection has reached the maximum number of subscriptions.' },
  too_many_channels: { surface: 'ws', description: 'New channels are arriving from this connection or address faster than the limit; retry later.' },
  engine_unavailable: { surface: 'both', status: 503, description: 'The engine (history, presence, broker) cannot be reached; nothing was accepted.' },
  engine_timeout: {
    surface: 'both',
    status: 504,
    description: 'A command was sent to the engine and not answered in time: the outcome is unknown; retry with the same id.',
  },
  rate_limited: { surface: 'ws', description: 'A client publish beyond the publish rate of the connection or of its user; retry later.' },
  payload_too_large: { surface: 'ws', description: "A client publish's payload exceeds the gateway's limit for client publishes." },
  publish_rejected: { surface: 'ws', description: "The publish hook refused the client publish; the message is the hook's reason." },
  publish_hook_failed: {
    surface: 'ws',
    description: 'The publish hook failed (timeout, error status, unusable answer) and the gateway denies client publishes when it does.',
  },
  unauthorized: { surface: 'http', status: 401, description: 'Missing or wrong API key.' },
  invalid_body: { surface: 'http', status: 400, description: 'The request body is not valid JSON.' },
  missing_field: { surface: 'http', status: 400, description: 'A required field is missing.' },
  invalid_field: { surface: 'http', status: 400, description: 'A field has the wrong type or an invalid value.' },
  reserved_type: { surface: 'both', status: 400, description: 'The message type is a reserved protocol frame type.' },
  payload_too_deep: { surface: 'both', status: 400, description: 'The payload nests objects and arrays deeper than the limit.' },
  body_too_large: { surface: 'http', status: 413, description: 'The request body exceeds the maximum body size.' },
  unsupported_media_type: { surface: 'http', status: 415, description: 'The request body is not application/json.' },
  not_found: { surface: 'http', status: 404, description: 'No such route, or a WebSocket upgrade on a path that is not a WebSocket path.' },
  upgrade_required: { surface: 'http', status: 426, description: 'A plain HTTP request on a WebSocket path.' },
  invalid_handshake: {
    surface: 'http',
    status: 400,
    description: 'A WebSocket upgrade that is not a valid handshake: not GET, no valid Sec-WebSocket-Key, or a version other than 13 or 8.',
  },
  malformed_request: {
    surface: 'http',
    status: 400,
    description: 'The bytes received are not a valid HTTP/1.1 request (a bad request line or header, no Host header); the connection is closed.',
  },
  expectation_failed: {
    surface: 'http',
    status: 417,
    description: 'The request has an Expect header other than 100-continue; answered without reading its body, then the connection is closed.',
  },
  request_timeout: { surface: 'http', status: 408, description: 'A request did not arrive completely in time; the connection is closed.' },
  headers_too_large: { surface: 'http', status: 431, description: "The request's headers exceed Node's limit; the connection is closed." },
  method_not_allowed: { surface: 'http', status: 405, description: 'The route does not accept this method.' },
  no_such_client: { surface: 'http', status: 404, description: 'The targeted client id has no connection.' },
  no_such_message: {
    surface: 'http',
    status: 404,
    description: 'No inbox message or receipt with this id (acknowledged, removed, expired or never published).',
  },
  inbox_storage_full: {
    surface: 'http',
    status: 507,
    description: "An inbox publish refused: the memory engine's inboxes hold inboxTotalBytes; nothing more was stored.",
  },
  shutting_down: { surface: 'http', status: 503, description: 'The gateway is shutting down.' },
  too_many_connections: { surface: 'http', status: 503, description: 'A WebSocket upgrade refused: the gateway is at its connection limit.' },
  too_many_connections_per_ip: { surface: 'http', status: 429, description: "A WebSocket upgrade refused: the client's address is at its connection limit." },
  connect_rate_limited: { surface: 'http', status: 429, description: "A WebSocket upgrade refused: the client's address connects too fast." },
  internal: { surface: 'http', status: 500, description: 'Unexpected server error.' },
};
