import { createLocalJWKSet, errors, type JSONWebKeySet, type JWSHeaderParameters, type FlattenedJWSInput } from 'jose';
import type { Logger } from '../util/logger.js';

/** The keys of a fetched set, as jose verifies with them. */
type KeyGetter = ReturnType<typeof createLocalJWKSet>;
/** What jose's `jwtVerify` gets a key from. */
export type KeyResolver = (header: JWSHeaderParameters, token: FlattenedJWSInput) => ReturnType<KeyGetter>;

/** How the set is fetched and kept. */
export interface RemoteKeySetOptions {
  /** Most ms one fetch may take, body included. @default 5000 */
  timeout?: number;
  /** Largest answer read (a key set is a few KB). @default 1048576 */
  maxBytes?: number;
  /** Age (ms) past which the set is fetched again in the background, the old one serving meanwhile. @default 600000 */
  maxAge?: number;
  /** Age (ms) past which the set, not fetched again since (the provider down), no longer verifies tokens. @default 86400000 */
  maxStale?: number;
  /** A token whose key is not in the set fetches it again at most this often (ms): a key the provider just added. @default 30000 */
  cooldown?: number;
  logger?: Logger;
  /** @default fetch */
  fetch?: typeof fetch;
}

/**
 * The identity provider's keys could not be had: no set was ever fetched and the fetch fails, or a token names a
 * key the set does not hold and the set cannot be fetched again yet. Not the token's fault: the client tries again.
 */
export class KeysUnavailableError extends Error {
  override readonly name = 'KeysUnavailableError';
}

/** The `iat` of a token's payload (seconds), if it has a numeric one. */
function issuedAt(token: FlattenedJWSInput): number | undefined {
  try {
    const payload = typeof token.payload === 'string' ? Buffer.from(token.payload, 'base64url').toString('utf8') : '';
    const iat = (JSON.parse(payload) as { iat?: unknown } | null)?.iat;
    return typeof iat === 'number' ? iat : undefined;
  } catch {
    return undefined;
  }
}

/** Longest wait between two fetches after failures (ms); the first retry waits 1 s. */
const MAX_FAILURE_BACKOFF = 30_000;

/**
 * A JWKS (an identity provider's `jwks_uri`), fetched and kept for jose to verify with. Unlike jose's remote key
 * set, which fails every token while the provider is down once its cache is ten minutes old, this one:
 * - serves the set it has while a newer one is fetched in the background, and after that fetch failed: the keys
 *   that verified tokens a moment ago still do, for at most `maxStale` (a key the provider retired, perhaps leaked,
 *   must not stay trusted for as long as someone can keep the gateway from fetching);
 * - after a failed fetch, waits before the next (1 s doubling to 30 s) instead of fetching for every connect, so a
 *   provider that is down is not hammered at the connect rate, and says so in the log once per failure streak;
 * - reads at most `maxBytes` of an answer, within `timeout`, and follows no redirect;
 * - tells a key it could not check (`KeysUnavailableError`: the client is closed with 1013 and tries again) from a
 *   key that is not there (jose's `JWKSNoMatchingKey`: the token is refused). A key is "not there" only when a set
 *   fetched after the token was issued (its `iat`) lacks it: a key the provider published after the last fetch,
 *   within the 30 s between fetches, is one to check again, whatever tokens with unknown keys others send.
 * Times come from the caller (`now`), so it keeps no timer.
 */
export class RemoteKeySet {
  private keys: KeyGetter | undefined;
  /** When the set in use was fetched (ms). */
  private fetchedAt = 0;
  /** Sets fetched so far. */
  private generation = 0;
  /** When a fetch last started (ms). */
  private triedAt = Number.NEGATIVE_INFINITY;
  private failures = 0;
  private lastFailure = '';
  private inflight: Promise<void> | undefined;
  private readonly timeout: number;
  private readonly maxBytes: number;
  private readonly maxAge: number;
  private readonly maxStale: number;
  private readonly cooldown: number;
  private readonly fetch: typeof fetch;

  constructor(
    private readonly url: URL,
    private readonly o: RemoteKeySetOptions = {},
  ) {
    this.timeout = o.timeout ?? 5000;
    this.maxBytes = o.maxBytes ?? 1_048_576;
    this.maxAge = o.maxAge ?? 600_000;
    this.maxStale = o.maxStale ?? 86_400_000;
    this.cooldown = o.cooldown ?? 30_000;
    this.fetch = o.fetch ?? fetch;
  }

  /** jose's key lookup at `now`. */
  resolver(now: number): KeyResolver {
    return (header, token) => this.key(header, token, now);
  }

  private async key(header: JWSHeaderParameters, token: FlattenedJWSInput, now: number): ReturnType<KeyGetter> {
    if (this.keys === undefined || now - this.fetchedAt >= this.maxStale) {
      await this.refresh(now);
      if (this.keys === undefined || now - this.fetchedAt >= this.maxStale) {
        throw new KeysUnavailableError(`the key set could not be fetched (${this.lastFailure || 'retrying later'})`);
      }
    } else if (now - this.fetchedAt >= this.maxAge) {
      void this.refresh(now);
    }
    // The set looked in, and its generation: a fetch may end while the lookup runs.
    const generation = this.generation;
    const keys = this.keys;
    try {
      return await keys(header, token);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey)) throw err;
      // A newer set arrived meanwhile, or a fetch under way (a background one) may bring the key; else fetch again
      // unless one started within the cooldown.
      if (this.generation === generation) {
        if (this.inflight !== undefined) await this.inflight;
        else if (now - this.triedAt >= this.cooldown) await this.refresh(now);
      }
      // A newer set answers for good (a key it lacks is refused).
      if (this.generation !== generation) return (this.keys as KeyGetter)(header, token);
      // The set was fetched after the token was issued and lacks its key: refused. A token issued since (or without
      // `iat`, when the last fetch failed) may be signed with a key published since: the client tries again.
      const iat = issuedAt(token);
      if (this.failures === 0 && (iat === undefined || iat * 1000 < this.fetchedAt)) throw err;
      throw new KeysUnavailableError(
        `key ${String(header.kid ?? '(no kid)').slice(0, 64)} not in the key set yet (${this.lastFailure || 'fetched again soon'})`,
      );
    }
  }

  /** Fetches the set (one fetch at a time; not again before the back-off after a failure ends). Never rejects. */
  private refresh(now: number): Promise<void> {
    if (this.inflight !== undefined) return this.inflight;
    if (this.failures > 0 && now - this.triedAt < Math.min(MAX_FAILURE_BACKOFF, 1000 * 2 ** (this.failures - 1))) return Promise.resolve();
    this.triedAt = now;
    this.inflight = this.load()
      .then((keys) => {
        this.keys = keys;
        this.fetchedAt = now;
        this.generation += 1;
        if (this.failures > 0) this.o.logger?.info({ jwks: this.url.origin, failures: this.failures }, 'auth: the JWKS answers again');
        this.failures = 0;
        this.lastFailure = '';
      })
      .catch((err: unknown) => {
        this.failures += 1;
        this.lastFailure = err instanceof Error ? err.message : String(err);
        // Once per streak at warn (connections are closed with 1013 meanwhile, or verified with the old keys).
        const level = this.failures === 1 ? 'warn' : 'debug';
        this.o.logger?.[level](
          { jwks: this.url.origin, error: this.lastFailure, failures: this.failures, keptKeys: this.keys !== undefined },
          'auth: fetching the JWKS failed',
        );
      })
      .finally(() => {
        this.inflight = undefined;
      });
    return this.inflight;
  }

  /** One fetch: 200, at most `maxBytes`, within `timeout`, a key set jose can read. */
  private async load(): Promise<KeyGetter> {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), this.timeout);
    try {
      const res = await this.fetch(this.url, { redirect: 'manual', signal: abort.signal, headers: { accept: 'application/json' } });
      if (res.status !== 200) {
        await res.body?.cancel().catch(() => undefined);
        throw new Error(`the JWKS answered HTTP ${res.status}`);
      }
      const length = Number(res.headers.get('content-length') ?? 0);
      if (length > this.maxBytes) {
        await res.body?.cancel().catch(() => undefined);
        throw new Error(`the JWKS is larger than ${this.maxBytes} bytes`);
      }
      const chunks: Uint8Array[] = [];
      let bytes = 0;
      if (res.body !== null) {
        const reader = res.body.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          bytes += value.byteLength;
          if (bytes > this.maxBytes) {
            await reader.cancel().catch(() => undefined);
            throw new Error(`the JWKS is larger than ${this.maxBytes} bytes`);
          }
          chunks.push(value);
        }
      }
      let json: unknown;
      try {
        json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        throw new Error('the JWKS is not JSON');
      }
      const keys = (json as { keys?: unknown } | null)?.keys;
      if (!Array.isArray(keys)) throw new Error('the JWKS has no "keys" array');
      try {
        return createLocalJWKSet(json as JSONWebKeySet);
      } catch (err) {
        throw new Error(`the JWKS is not a key set (${(err as Error).message})`);
      }
    } catch (err) {
      if (abort.signal.aborted) throw new Error(`the JWKS did not answer within ${this.timeout} ms`);
      throw err instanceof Error && err.message.startsWith('the JWKS') ? err : new Error(`the JWKS could not be fetched: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }
}
