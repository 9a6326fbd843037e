import { webcrypto } from 'node:crypto';
import { errors, jwtVerify } from 'jose';
import { isValidChannel, userChannel, type UserId } from '@herald/protocol';

/** Who a connection is, as its token says. */
export interface Principal {
  /** The `sub` claim; null for an anonymous connection. */
  user: UserId | null;
  /** Private channel patterns the token grants (`channels` claim). */
  channels: readonly string[];
  /** When the token expires (ms since the epoch), if it does. */
  expiresAt: number | undefined;
}

/** Why a token was refused. `expired` maps to close code 4401, `invalid` to 4501. */
export type TokenFailure = { ok: false; reason: 'expired' | 'invalid'; message: string };

/** The only algorithm accepted: an explicit list, so `alg: none` and algorithm confusion are impossible. */
export const TOKEN_ALGORITHMS = ['HS256'];

const MAX_PATTERNS = 100;

/** Verifies connection tokens (JWT, HS256) with one or more secrets (several allow rotation). */
export class TokenVerifier {
  // WebCrypto keys imported once: jose verifies with WebCrypto, and given raw bytes or a KeyObject it imports
  // a CryptoKey on every verification, which doubled the cost of one (see docs/benchmarks.md).
  private readonly keys: Promise<webcrypto.CryptoKey[]>;
  private readonly count: number;

  constructor(secrets: readonly string[]) {
    this.count = secrets.length;
    this.keys = Promise.all(
      secrets.map((s) => webcrypto.subtle.importKey('raw', Buffer.from(s, 'utf8'), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify'])),
    );
    // A key that cannot be imported fails each verification (as an internal error), not the process.
    this.keys.catch(() => undefined);
  }

  get enabled(): boolean {
    return this.count > 0;
  }

  async verify(token: string, now: number): Promise<{ ok: true; principal: Principal } | TokenFailure> {
    let lastError: unknown;
    for (const key of await this.keys) {
      try {
        const { payload } = await jwtVerify(token, key, { algorithms: TOKEN_ALGORITHMS, currentDate: new Date(now) });
        const sub = payload.sub;
        if (typeof sub !== 'string' || sub.length === 0 || !isValidChannel(userChannel(sub))) {
          return { ok: false, reason: 'invalid', message: 'token sub must be a user id of [A-Za-z0-9_-:.@=]' };
        }
        const claim = payload['channels'];
        let channels: string[] = [];
        if (claim !== undefined) {
          if (!Array.isArray(claim) || claim.length > MAX_PATTERNS || !claim.every((c): c is string => typeof c === 'string' && c.length <= 200)) {
            return { ok: false, reason: 'invalid', message: 'token channels must be an array of channel patterns' };
          }
          channels = claim;
        }
        return { ok: true, principal: { user: sub, channels, expiresAt: payload.exp === undefined ? undefined : payload.exp * 1000 } };
      } catch (err) {
        if (err instanceof errors.JWTExpired) return { ok: false, reason: 'expired', message: 'token expired' };
        lastError = err;
      }
    }
    const message = lastError instanceof errors.JOSEError ? `token rejected (${lastError.code})` : 'token rejected';
    return { ok: false, reason: 'invalid', message };
  }
}
