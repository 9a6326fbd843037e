import { createPublicKey, webcrypto } from 'node:crypto';
import { createRemoteJWKSet, decodeProtectedHeader, errors, importSPKI, jwtVerify, type JWTPayload } from 'jose';
import { isValidChannel, userChannel, type ChannelName, type ErrorCode } from '@herald/protocol';
import { AdminTokens, ADMIN_TOKEN_KID } from './admin-token.js';
import { ApiKeyChecker } from './api-key.js';
import { checkPublish, checkSubscribe } from './channel-policy.js';
import type { ApiScope, Auth, Identity, Verification } from './types.js';

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
  /** A JWKS URL (an identity provider's); keys are fetched on demand and cached (jose's remote key set). */
  jwksUrl?: string | undefined;
  /** API keys accepted by `/api/*` (and `/metrics`). */
  apiKeys?: readonly string[];
  /** Tokens accepted by `/metrics` only. */
  metricsTokens?: readonly string[];
  /** Accept admin tokens (`kid: herald-admin`, signed with a key derived from an API key). */
  admin?: boolean;
}

type Candidate = Parameters<typeof jwtVerify>[1];

/** A claim of channel patterns (`channels`, `publish`): [] when absent, undefined when malformed. */
function patterns(payload: JWTPayload, name: string): string[] | undefined {
  const claim = payload[name];
  if (claim === undefined) return [];
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
  const identity: Identity = { user: sub, channels, gateway: [], expiresAt: payload.exp === undefined ? undefined : payload.exp * 1000 };
  if (publish.length > 0) identity.publish = publish;
  const info = payload['info'];
  if (info !== undefined) {
    const json = JSON.stringify(info);
    if (Buffer.byteLength(json) > MAX_INFO_BYTES) return `token info must be at most ${MAX_INFO_BYTES} bytes of JSON`;
    identity.infoJson = json;
  }
  return identity;
}

/** Imports a PEM public key once, for the one algorithm its type allows. */
async function importPublicKey(pem: string): Promise<{ alg: string; key: webcrypto.CryptoKey }> {
  const k = createPublicKey(pem);
  const alg =
    k.asymmetricKeyType === 'rsa' ? 'RS256' : k.asymmetricKeyType === 'ec' && k.asymmetricKeyDetails?.namedCurve === 'prime256v1' ? 'ES256' : undefined;
  if (alg === undefined) throw new Error('a JWT public key must be RSA (RS256) or EC P-256 (ES256)');
  // Imported from its SPKI form: jose takes only a PEM that starts with `-----BEGIN PUBLIC KEY-----`, while
  // the options accept what Node reads as a public key (PKCS#1, text around the block); one such key used to
  // make every RS256/ES256 token fail.
  const spki = k.export({ type: 'spki', format: 'pem' }).toString();
  return { alg, key: (await importSPKI(spki, alg)) as webcrypto.CryptoKey };
}

/**
 * Connection tokens are JWTs: HS256 with the configured secrets, RS256/ES256 with configured public keys or
 * a JWKS URL (so tokens minted by an identity provider work), each with an explicit algorithm list. Claims:
 * `sub` (the user), `channels` (private and presence channel patterns), `publish` (channel patterns it may publish to), `info` (what presence members see), `exp`. Admin tokens are verified apart, with keys
 * derived from the API keys (see admin-token.ts). API keys are compared in constant time.
 */
export class JwtAuth implements Auth {
  // Keys imported once as WebCrypto CryptoKeys: jose verifies with WebCrypto, and given raw bytes or a
  // KeyObject it imports a CryptoKey on every verification, which doubled the cost of one.
  private readonly hmac: Promise<webcrypto.CryptoKey[]>;
  private readonly publicKeys: Promise<Array<{ alg: string; key: webcrypto.CryptoKey }>>;
  private readonly jwks: ReturnType<typeof createRemoteJWKSet> | undefined;
  private readonly admin: AdminTokens | undefined;
  private readonly apiKeys: ApiKeyChecker;
  private readonly metricsTokens: ApiKeyChecker;

  constructor(o: JwtAuthOptions) {
    this.hmac = Promise.all(
      (o.secrets ?? []).map((s) => webcrypto.subtle.importKey('raw', Buffer.from(s, 'utf8'), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify'])),
    );
    this.publicKeys = Promise.all((o.publicKeys ?? []).map(importPublicKey));
    // A key that cannot be imported fails each verification (as an invalid token), not the process; the
    // options were checked at start (resolveOptions), so this is only a second line of defence.
    this.hmac.catch(() => undefined);
    this.publicKeys.catch(() => undefined);
    this.jwks = o.jwksUrl === undefined ? undefined : createRemoteJWKSet(new URL(o.jwksUrl), { cooldownDuration: 30_000, cacheMaxAge: 600_000 });
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
    let candidates: Candidate[];
    let algorithms: readonly string[];
    if ((SECRET_ALGORITHMS as readonly string[]).includes(alg)) {
      candidates = await this.hmac.catch(() => []);
      algorithms = SECRET_ALGORITHMS;
    } else if ((PUBLIC_KEY_ALGORITHMS as readonly string[]).includes(alg)) {
      const own = (await this.publicKeys.catch(() => [])).filter((k) => k.alg === alg).map((k) => k.key);
      candidates = this.jwks ? [...own, this.jwks] : own;
      algorithms = PUBLIC_KEY_ALGORITHMS;
    } else {
      return { ok: false, reason: 'invalid', message: `token rejected (algorithm ${alg.slice(0, 20) || 'missing'} not accepted)` };
    }
    let lastError: unknown;
    for (const key of candidates) {
      try {
        const { payload } = await jwtVerify(token, key, { algorithms: [...algorithms], currentDate: new Date(now) });
        const identity = identityOf(payload);
        return typeof identity === 'string' ? { ok: false, reason: 'invalid', message: identity } : { ok: true, identity };
      } catch (err) {
        if (err instanceof errors.JWTExpired) return { ok: false, reason: 'expired', message: 'token expired' };
        lastError = err;
      }
    }
    const message = lastError instanceof errors.JOSEError ? `token rejected (${lastError.code})` : 'token rejected';
    return { ok: false, reason: 'invalid', message };
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
