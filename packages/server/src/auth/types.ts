import type { ChannelName, ErrorCode, UserId } from '@herald/protocol';

/** Who a connection is, and what its credential grants. */
export interface Identity {
  /** The user (a token's `sub`); null for an anonymous connection. */
  user: UserId | null;
  /** Channel patterns it may subscribe to beyond the public ones (a token's `channels` claim). */
  channels: readonly string[];
  /** Channel patterns it may publish to from the client (a token's `publish` claim); none when absent. */
  publish?: readonly string[];
  /** The gateway's own channels (`herald:*`) it may subscribe to, by exact name: only admin tokens have any. */
  gateway: readonly string[];
  /** When the credential expires (ms since the epoch), if it does: the connection is closed then. */
  expiresAt: number | undefined;
  /** What other members of a presence channel see of this user (a token's `info` claim, serialized JSON). */
  infoJson?: string;
}

/** The identity of a connection without a credential. */
export const ANONYMOUS: Identity = Object.freeze({
  user: null,
  channels: Object.freeze([]) as readonly string[],
  gateway: Object.freeze([]) as readonly string[],
  expiresAt: undefined,
});

/**
 * Why a credential was refused: `expired` (the client refreshes it), `invalid` (it does not), `early` (its `nbf` is
 * ahead of this gateway's clock: a clock skew, valid in a moment), or `unavailable`: it could not be checked now (the
 * identity provider's keys could not be fetched). After the last two the client tries again later.
 */
export type AuthFailure = { ok: false; reason: 'expired' | 'invalid' | 'early' | 'unavailable'; message: string };

/** The answer to a connection credential. */
export type Verification = { ok: true; identity: Identity } | AuthFailure;

/** Which API credential a request needs: `api` (the API keys) or `metrics` (API keys or metrics tokens). */
export type ApiScope = 'api' | 'metrics';

/**
 * The authentication and authorization seam: protocols and the HTTP API ask it, and never look at keys,
 * secrets or claims themselves. The JWT implementation (jwt-auth.ts) is the one the gateway builds.
 */
export interface Auth {
  /** Verifies a connection credential (a token); never throws for a bad one. */
  verifyConnection(credential: string, now: number): Promise<Verification>;
  /** Whether `identity` may subscribe to `channel` (a valid native name): null, or the error code to answer. */
  maySubscribe(identity: Identity, channel: ChannelName): ErrorCode | null;
  /** Whether `identity` may publish to `channel` (a valid native name) from the client: null, or the error code to answer. */
  mayPublish(identity: Identity, channel: ChannelName): ErrorCode | null;
  /** Checks an `Authorization` header against the API credentials of `scope`, in constant time. */
  verifyApiKey(authorization: string | undefined, scope?: ApiScope): boolean;
}
