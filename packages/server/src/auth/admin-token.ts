import { createHmac } from 'node:crypto';
import { errors, jwtVerify, SignJWT } from 'jose';
import { channelKind, GATEWAY_CHANNEL_PREFIX } from '@herald/protocol';
import type { Verification } from './types.js';

/**
 * The reserved channel the gateway publishes its stats snapshots to, once a second per node while somebody
 * is subscribed. Only an admin token (below) may subscribe to it.
 */
export const ADMIN_CHANNEL = `${GATEWAY_CHANNEL_PREFIX}admin`;
/** Whether `channel` is one of the gateway's own channels (`herald:*`): its traffic is not counted as application traffic. */
export function isGatewayChannel(channel: string): boolean {
  return channelKind(channel) === 'gateway';
}
/** The message type of a snapshot on the admin channel (its payload is a `NodeSnapshot`). */
export const ADMIN_MESSAGE_TYPE = 'stats';
/** The `kid` header that marks an admin token; verified with the admin keys only. */
export const ADMIN_TOKEN_KID = 'herald-admin';
/** How long an admin token (and the dashboard connection made with it) lasts, in ms. */
export const ADMIN_TOKEN_TTL_MS = 5 * 60_000;
const ADMIN_SCOPE = 'herald-admin';
const ALGORITHMS = ['HS256'];

/**
 * The key admin tokens are signed with: HMAC-SHA256 of a fixed label under the API key. Every node that
 * shares the API key can verify them, they need no JWT secret, the key cannot be recovered from a token,
 * and rotating the API key out invalidates them.
 */
function adminKey(apiKey: string): Uint8Array {
  return createHmac('sha256', apiKey).update('herald admin token v1').digest();
}

/**
 * Verifies admin tokens (`kid: herald-admin`) with the keys derived from the API keys (never the JWT
 * secrets). A valid one grants exactly one thing, subscribing to `ADMIN_CHANNEL` as an anonymous connection
 * (no user, no presence entry), until it expires; whatever else it claims is ignored.
 */
export class AdminTokens {
  private readonly keys: Uint8Array[];

  constructor(apiKeys: readonly string[]) {
    this.keys = apiKeys.map(adminKey);
  }

  async verify(token: string, now: number): Promise<Verification> {
    for (const key of this.keys) {
      try {
        const { payload } = await jwtVerify(token, key, { algorithms: ALGORITHMS, currentDate: new Date(now) });
        if (payload['scope'] !== ADMIN_SCOPE || payload.exp === undefined) break;
        return { ok: true, identity: { user: null, channels: [], gateway: [ADMIN_CHANNEL], expiresAt: payload.exp * 1000 } };
      } catch (err) {
        if (err instanceof errors.JWTExpired) return { ok: false, reason: 'expired', message: 'token expired' };
      }
    }
    return { ok: false, reason: 'invalid', message: 'admin token rejected' };
  }
}

/** Signs an admin token with the key derived from `apiKey`, valid for `ttlMs` from `now`. */
export async function mintAdminToken(apiKey: string, now: number, ttlMs = ADMIN_TOKEN_TTL_MS): Promise<{ token: string; expiresAt: number }> {
  const iat = Math.floor(now / 1000);
  const exp = Math.floor((now + ttlMs) / 1000);
  const token = await new SignJWT({ scope: ADMIN_SCOPE })
    .setProtectedHeader({ alg: 'HS256', kid: ADMIN_TOKEN_KID, typ: 'JWT' })
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .sign(adminKey(apiKey));
  return { token, expiresAt: exp * 1000 };
}
