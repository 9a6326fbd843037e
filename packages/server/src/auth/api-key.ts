import { hash, timingSafeEqual } from 'node:crypto';

/** One-shot SHA-256 (no Hash object per request). */
const digest = (s: string): Buffer => hash('sha256', s, 'buffer');

/**
 * Checks `Authorization: Bearer <key>` against a set of keys in constant time: both sides are hashed to
 * equal-length digests first, so neither the key's content nor its length leaks through timing. Several
 * keys may be configured at once for rotation; every key is compared, whatever matches.
 */
export class ApiKeyChecker {
  private readonly digests: Buffer[];

  constructor(keys: readonly string[]) {
    this.digests = keys.map(digest);
  }

  check(authorization: string | undefined): boolean {
    if (authorization === undefined) return false;
    const m = /^Bearer[ \t]+(\S+)\s*$/i.exec(authorization);
    const given = digest(m?.[1] ?? '');
    let ok = false;
    for (const d of this.digests) ok = timingSafeEqual(d, given) || ok;
    return ok && m !== null;
  }
}
