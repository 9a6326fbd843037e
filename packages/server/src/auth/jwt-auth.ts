import { createPublicKey } from 'node:crypto';
import { createVerifier, TokenError, type Algorithm } from 'fast-jwt';
import { decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';
import { isValidChannel, userChannel, type ChannelName, type ErrorCode } from '@herald/protocol';
import { AdminTokens, ADMIN_TOKEN_KID } from './admin-token.js';
import { ApiKeyChecker } from './api-key.js';
import { checkPublish, checkSubscribe } from './channel-policy.js';
import { KeysUnavailableError, RemoteKeySet, type RemoteKeySetOptions } from './jwks.js';
import type { Logger } from '../util/logger.js';
import type { ApiScope, Auth, AuthFailure, Identity, Verification } from './types.js';

/** Algorithms of shared secrets: an explicit list, so `alg: none` and algorithm confusion are impossible. */
export const SECRET_ALGORITHMS = ['HS256'] as const;
/** Algorithms of public keys and of a JWKS (identity providers). */
export const PUBLIC_KEY_ALGORITHMS = ['RS256', 'ES256'] as const;

const MAX_PATTERNS = 100;
/** Largest `info` claim: it is sent to every member of every presence channel the user joins. */
const MAX_INFO_BYTES = 1024;

/** What the JWT implementation of the Auth seam is built from. */
export interface JwtAuthOptions {
  /** HS256 secrets (several allow rotation). */
  secrets?: readonly string[];
  /** PEM public keys (SPKI) of RS256 (RSA) or ES256 (P-256) signers. */
  publicKeys?: readonly string[];
  /** A JWKS URL (an identity provider's); keys are fetched on demand and kept (see RemoteKeySet). */
  jwksUrl?: string | undefined;
  /** How the JWKS is fetched (tests shorten the timeout). */
  jwks?: RemoteKeySetOptions;
  /** Accepted `aud` values: a token must name one (in `aud`, a string or a list). Empty: `aud` is not checked. */
  audiences?: readonly string[];
  /** Accepted `iss` values: a token's `iss` must be one. Empty: `iss` is not checked. */
  issuers?: readonly string[];
  logger?: Logger;
  /** API keys accepted by `/api/*` (and `/metrics`). */
  apiKeys?: readonly string[];
  /** Tokens accepted by `/metrics` only. */
  metricsTokens?: readonly string[];
  /** Accept admin tokens (`kid: herald-admin`, signed with a key derived from an API key). */
  admin?: boolean;
}

/** One configured key: a synchronous fast-jwt verifier (node:crypto) of its one algorithm. */
type Verify = (token: string) => JWTPayload;

/**
 * Verified tokens kept per public-key verifier (fast-jwt's LRU, keyed by a hash of the token): a reconnect with
 * the same RS256/ES256 token costs a hash instead of a signature check (2 us against 26-70 us). HS256 verifiers
 * keep none: an HMAC costs about what the cache's hash does, and a miss would pay both.
 */
const PUBLIC_KEY_CACHE = 10_000;

/**
 * Most keys of a JWKS tried for a token without `kid` that several of its keys could have signed (a provider
 * rotating keys publishes the old and the new): a few signature checks, not one per key of a large set.
 */
export const MAX_KID_LESS_CANDIDATES = 4;

/**
 * jose's `jwtVerify` with the keys of `keys`. A token without `kid` that more than one key of the set could verify
 * (jose's `JWKSMultipleMatchingKeys`) is checked with each of them in turn, at most MAX_KID_LESS_CANDIDATES: the
 * first key whose signature matches decides (its claims are then checked); when none does, the token is refused
 * as a bad signature, or, when the set held more candidates than were tried, with jose's multiple-keys error.
 */
async function verifyWithKeySet(token: string, keys: RemoteKeySet, now: number): ReturnType<typeof jwtVerify> {
  const options = { algorithms: [...PUBLIC_KEY_ALGORITHMS], currentDate: new Date(now) };
  try {
    return await jwtVerify(token, keys.resolver(now), options);
  } catch (err) {
    if (!(err instanceof errors.JWKSMultipleMatchingKeys)) throw err;
    let tried = 0;
    for await (const key of err) {
      if (tried === MAX_KID_LESS_CANDIDATES) throw err;
      tried += 1;
      try {
        return await jwtVerify(token, key, options);
      } catch (inner) {
        if (!(inner instanceof errors.JWSSignatureVerificationFailed)) throw inner;
      }
    }
    throw new errors.JWSSignatureVerificationFailed();
  }
}

/**
 * The close reasons of fast-jwt's errors, in jose's codes as the protocol documents them
 * (`token rejected (ERR_JWS_INVALID)`), so that they did not change when the verifier did.
 */
const JOSE_CODES: Readonly<Record<string, string>> = {
  [TokenError.codes.invalidSignature]: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
  [TokenError.codes.invalidAlgorithm]: 'ERR_JOSE_ALG_NOT_ALLOWED',
  [TokenError.codes.invalidPayload]: 'ERR_JWT_INVALID',
  [TokenError.codes.invalidCritHeader]: 'ERR_JOSE_NOT_SUPPORTED',
  [TokenError.codes.invalidClaimType]: 'ERR_JWT_CLAIM_VALIDATION_FAILED',
  [TokenError.codes.invalidClaimValue]: 'ERR_JWT_CLAIM_VALIDATION_FAILED',
};

/** A verifier of `key` for `alg` only: the time claims are checked by `timeClaims` against the caller's clock. */
function verifierOf(key: string, alg: Algorithm, cache: number | false): Verify {
  return createVerifier({ key, algorithms: [alg], ignoreExpiration: true, ignoreNotBefore: true, cache }) as Verify;
}

/** jose's checks of `exp`, `nbf` and `iat` at `now` (no tolerance): undefined when they pass. */
function timeClaims(payload: JWTPayload, now: number): 'expired' | 'invalid' | 'early' | undefined {
  const { exp, nbf, iat } = payload;
  if ((exp !== undefined && typeof exp !== 'number') || (nbf !== undefined && typeof nbf !== 'number') || (iat !== undefined && typeof iat !== 'number')) {
    return 'invalid';
  }
  const seconds = Math.floor(now / 1000);
  if (exp !== undefined && exp <= seconds) return 'expired';
  if (nbf !== undefined && nbf > seconds) return 'early';
  return undefined;
}

/** The most a token's `nbf` may be ahead of this gateway's clock and be taken for a clock skew (seconds). */
const MAX_SKEW = 60;

/**
 * A token whose `nbf` is ahead of this gateway's clock. Up to MAX_SKEW, the clocks of its issuer and the gateway
 * differ (a token is minted just before it is used), so it is valid in a moment: `early`, and the client tries again
 * (refusing it for good would strand it). Further ahead it was minted for later: refused.
 */
function notYet(payload: JWTPayload, now: number): AuthFailure {
  const ahead = typeof payload.nbf === 'number' ? Math.max(1, Math.ceil(payload.nbf - now / 1000)) : undefined;
  if (ahead === undefined || ahead > MAX_SKEW) return { ok: false, reason: 'invalid', message: 'token rejected (not valid yet: nbf is in the future)' };
  return { ok: false, reason: 'early', message: `token not valid yet (nbf ${ahead} s ahead of this gateway's clock)` };
}

/** The empty list every identity without such claims shares (one array less per idle connection). */
const NONE: readonly string[] = Object.freeze([]);

/** A claim of channel patterns (`channels`, `publish`): empty when absent, undefined when malformed. */
function patterns(payload: JWTPayload, name: string): readonly string[] | undefined {
  const claim = payload[name];
  if (claim === undefined || (Array.isArray(claim) && claim.length === 0)) return NONE;
  const ok = Array.isArray(claim) && claim.length <= MAX_PATTERNS && claim.every((c): c is string => typeof c === 'string' && c.length <= 200);
  return ok ? claim : undefined;
}

/** Reads the claims Herald uses; a message when they are malformed. */
function identityOf(payload: JWTPayload): Identity | string {
  const sub = payload.sub;
  if (typeof sub !== 'string' || sub.length === 0 || !isValidChannel(userChannel(sub))) return 'token sub must be a user id of [A-Za-z0-9_-:.@=]';
  const channels = patterns(payload, 'channels');
  if (channels === undefined) return 'token channels must be an array of channel patterns';
  const publish = patterns(payload, 'publish');
  if (publish === undefined) return 'token publish must be an array of channel patterns';
  const identity: Identity = { user: sub, channels, gateway: NONE, expiresAt: payload.exp === undefined ? undefined : payload.exp * 1000 };
  if (publish.length > 0) identity.publish = publish;
  const info = payload['info'];
  if (info !== undefined) {
    const json = JSON.stringify(info);
    if (Buffer.byteLength(json) > MAX_INFO_BYTES) return `token info must be at most ${MAX_INFO_BYTES} bytes of JSON`;
    identity.infoJson = json;
  }
  return identity;
}

/** Reads a PEM public key once, for the one algorithm its type allows. */
function importPublicKey(pem: string): { alg: string; verify: Verify } {
  const k = createPublicKey(pem);
  const alg =
    k.asymmetricKeyType === 'rsa' ? 'RS256' : k.asymmetricKeyType === 'ec' && k.asymmetricKeyDetails?.namedCurve === 'prime256v1' ? 'ES256' : undefined;
  if (alg === undefined) throw new Error('a JWT public key must be RSA (RS256) or EC P-256 (ES256)');
  // Handed over in its SPKI form: the options accept what Node reads as a public key (PKCS#1, text around the
  // block), and a verifier may expect `-----BEGIN PUBLIC KEY-----` (with jose one such key made every token fail).
  const spki = k.export({ type: 'spki', format: 'pem' }).toString();
  return { alg, verify: verifierOf(spki, alg as Algorithm, PUBLIC_KEY_CACHE) };
}

/**
 * Connection tokens are JWTs: HS256 with the configured secrets, RS256/ES256 with configured public keys or
 * a JWKS URL (so tokens minted by an identity provider work), each with an explicit algorithm list. Claims:
 * `sub` (the user), `channels` (private and presence channel patterns), `publish` (channel patterns it may publish to), `info` (what presence members see), `exp`. Admin tokens are verified apart, with keys
 * derived from the API keys (see admin-token.ts). API keys are compared in constant time.
 */
export class JwtAuth implements Auth {
  // Configured keys are verified synchronously with fast-jwt (node:crypto, constant-time HMAC comparison):
  // 6-7 us of CPU per HS256 token where jose's WebCrypto path took 20-70 (scripts/jwt-verify-cost.mjs). A
  // JWKS stays with jose's remote key set (fetched, cached and rotated keys).
  private readonly hmac: Verify[];
  private readonly publicKeys: Array<{ alg: string; verify: Verify }>;
  private readonly jwks: RemoteKeySet | undefined;
  private readonly audiences: readonly string[];
  private readonly issuers: readonly string[];
  private readonly admin: AdminTokens | undefined;
  private readonly apiKeys: ApiKeyChecker;
  private readonly metricsTokens: ApiKeyChecker;

  constructor(o: JwtAuthOptions) {
    this.hmac = (o.secrets ?? []).map((s) => verifierOf(s, 'HS256', false));
    // A key that cannot be read fails each verification (as an invalid token), not the process; the options
    // were checked at start (resolveOptions), so this is only a second line of defence.
    this.publicKeys = (o.publicKeys ?? []).flatMap((pem) => {
      try {
        return [importPublicKey(pem)];
      } catch {
        return [];
      }
    });
    this.jwks =
      o.jwksUrl === undefined ? undefined : new RemoteKeySet(new URL(o.jwksUrl), { ...o.jwks, ...(o.logger === undefined ? {} : { logger: o.logger }) });
    this.audiences = o.audiences ?? [];
    this.issuers = o.issuers ?? [];
    this.admin = o.admin ? new AdminTokens(o.apiKeys ?? []) : undefined;
    this.apiKeys = new ApiKeyChecker(o.apiKeys ?? []);
    this.metricsTokens = new ApiKeyChecker(o.metricsTokens ?? []);
  }

  async verifyConnection(token: string, now: number): Promise<Verification> {
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      return { ok: false, reason: 'invalid', message: 'token rejected (malformed)' };
    }
    if (this.admin && header.kid === ADMIN_TOKEN_KID) return this.admin.verify(token, now);
    const alg = header.alg ?? '';
    let own: readonly Verify[];
    if ((SECRET_ALGORITHMS as readonly string[]).includes(alg)) {
      own = this.hmac;
    } else if ((PUBLIC_KEY_ALGORITHMS as readonly string[]).includes(alg)) {
      own = this.publicKeys.filter((k) => k.alg === alg).map((k) => k.verify);
    } else {
      return { ok: false, reason: 'invalid', message: `token rejected (algorithm ${alg.slice(0, 20) || 'missing'} not accepted)` };
    }
    let code: string | undefined;
    for (const verify of own) {
      let payload: JWTPayload;
      try {
        payload = verify(token);
      } catch (err) {
        // The next key (rotation) may have signed it; the last failure names the problem.
        code = err instanceof TokenError ? (JOSE_CODES[err.code] ?? 'ERR_JWS_INVALID') : 'ERR_JWS_INVALID';
        continue;
      }
      return this.accept(payload, now);
    }
    if (this.jwks !== undefined && alg !== 'HS256') {
      try {
        const { payload } = await verifyWithKeySet(token, this.jwks, now);
        return this.accept(payload, now);
      } catch (err) {
        if (err instanceof KeysUnavailableError) return { ok: false, reason: 'unavailable', message: `token not checked: ${err.message}` };
        if (err instanceof errors.JWTExpired) return { ok: false, reason: 'expired', message: 'token expired' };
        if (err instanceof errors.JWTClaimValidationFailed && err.claim === 'nbf') return this.foreign(err.payload) ?? notYet(err.payload, now);
        code = err instanceof errors.JOSEError ? err.code : undefined;
      }
    }
    return { ok: false, reason: 'invalid', message: code === undefined ? 'token rejected' : `token rejected (${code})` };
  }

  /** A token whose signature verified: its time claims at `now`, then the claims Herald reads. */
  private accept(payload: JWTPayload, now: number): Verification {
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
      return { ok: false, reason: 'invalid', message: 'token rejected (ERR_JWT_INVALID)' };
    }
    // Who it is for first: a token of another application gets its final answer even while not valid yet.
    const foreign = this.foreign(payload);
    if (foreign !== undefined) return foreign;
    const time = timeClaims(payload, now);
    if (time === 'expired') return { ok: false, reason: 'expired', message: 'token expired' };
    if (time === 'invalid') return { ok: false, reason: 'invalid', message: 'token rejected (ERR_JWT_CLAIM_VALIDATION_FAILED)' };
    if (time === 'early') return notYet(payload, now);
    const identity = identityOf(payload);
    return typeof identity === 'string' ? { ok: false, reason: 'invalid', message: identity } : { ok: true, identity };
  }

  /** The refusal of a token whose `aud` or `iss` is not an accepted one (when they are set): one of the same identity provider for another application. */
  private foreign(payload: JWTPayload): AuthFailure | undefined {
    if (this.audiences.length > 0) {
      const aud = payload.aud;
      const named = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
      if (!named.some((a) => this.audiences.includes(a))) return { ok: false, reason: 'invalid', message: 'token rejected (aud is not this gateway)' };
    }
    if (this.issuers.length > 0 && (typeof payload.iss !== 'string' || !this.issuers.includes(payload.iss))) {
      return { ok: false, reason: 'invalid', message: 'token rejected (iss is not an accepted issuer)' };
    }
    return undefined;
  }

  maySubscribe(identity: Identity, channel: ChannelName): ErrorCode | null {
    return checkSubscribe(identity, channel);
  }

  mayPublish(identity: Identity, channel: ChannelName): ErrorCode | null {
    return checkPublish(identity, channel);
  }

  verifyApiKey(authorization: string | undefined, scope: ApiScope = 'api'): boolean {
    // Both are checked for `metrics` (constant time whichever matches).
    const api = this.apiKeys.check(authorization);
    return scope === 'metrics' ? this.metricsTokens.check(authorization) || api : api;
  }
}
