/**
 * Stable codes of every error the client reports through its `error` events or throws.
 * Errors sent by the server keep their own protocol code in {@link HeraldError.serverCode}.
 */
export const ClientErrorCode = {
  /** A binary (Blob/ArrayBuffer/Buffer) frame arrived; protocol v1 is JSON text frames only. */
  BinaryFrame: 'HERALD_ERR_CLIENT_BINARY_FRAME',
  /** A text frame (or one line of a batched frame) that is not valid JSON. */
  InvalidJson: 'HERALD_ERR_CLIENT_INVALID_JSON',
  /** Valid JSON that is not a valid server frame (bad envelope, missing or mistyped field). */
  InvalidFrame: 'HERALD_ERR_CLIENT_INVALID_FRAME',
  /** The server sent an `error` frame; `serverCode` holds its protocol error code. */
  ServerError: 'HERALD_ERR_CLIENT_SERVER_ERROR',
  /** An application event handler threw; `cause` holds what it threw. */
  Handler: 'HERALD_ERR_CLIENT_HANDLER',
  /** `getToken()` rejected or did not resolve to a non-empty string. */
  Token: 'HERALD_ERR_CLIENT_TOKEN',
  /** The WebSocket constructor threw (invalid URL, blocked by the browser). */
  Socket: 'HERALD_ERR_CLIENT_SOCKET',
  /** A client option is missing or invalid (thrown by the constructor). */
  InvalidOption: 'HERALD_ERR_CLIENT_INVALID_OPTION',
  /** `subscribe()` or `publish()` was called with a channel name that is invalid (or, to subscribe, not subscribable). */
  InvalidChannel: 'HERALD_ERR_CLIENT_INVALID_CHANNEL',
  /** `publish()` got no answer within its timeout; if it was sent, it may have been published. */
  PublishTimeout: 'HERALD_ERR_CLIENT_PUBLISH_TIMEOUT',
  /** A `subscribe` got no answer within `connectTimeout`; it is sent again with backoff. */
  SubscribeTimeout: 'HERALD_ERR_CLIENT_SUBSCRIBE_TIMEOUT',
  /** `publish()` on a closed client, or the client was closed before the publish was answered. */
  Closed: 'HERALD_ERR_CLIENT_CLOSED',
} as const;

export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

/** Extra details of a {@link HeraldError}. */
export interface HeraldErrorDetails {
  /** The underlying error. */
  cause?: unknown;
  /** The protocol error code of a server `error` frame (compare with `ErrorCode.*`). */
  serverCode?: string | undefined;
  /** The channel the error is about. */
  channel?: string | undefined;
  /** The raw data that caused the error (a malformed frame, the server error frame). */
  data?: unknown;
}

/** Every error the client reports or throws. Match on `code`, never on the message text. */
export class HeraldError extends Error {
  /** Stable client error code. */
  readonly code: ClientErrorCode;
  /** The protocol error code, for `HERALD_ERR_CLIENT_SERVER_ERROR`. */
  readonly serverCode: string | undefined;
  /** The channel the error is about, when there is one. */
  readonly channel: string | undefined;
  /** The raw data that caused the error, when there is some. */
  readonly data: unknown;

  constructor(code: ClientErrorCode, message: string, details: HeraldErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'HeraldError';
    this.code = code;
    this.serverCode = details.serverCode;
    this.channel = details.channel;
    this.data = details.data;
  }
}
