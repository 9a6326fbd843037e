import { createHash, timingSafeEqual } from 'node:crypto';

/** One-shot SHA-256 (no Hash object per request). */
// createHash, not crypto.hash: that one needs Node 20.12, and Herald runs on every Node 20.
const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Keys up to this many bytes are compared byte for byte, zero-padded to this width (no hashing per request). */
const WIDTH = 256;

/**
 * Checks `Authorization: Bearer <key>` against a set of keys in constant time, so that neither the key's
 * content nor its length leaks through timing: when every key fits in 256 bytes, the presented key is
 * zero-padded to that width and compared over the whole width with each key (its length compared apart, as
 * integers); a presented key longer than that cannot match and is refused without comparing. Longer keys are
 * compared through equal-length SHA-256 digests instead. Several keys may be configured at once for rotation;
 * every key is compared, whatever matches.
 */
export class ApiKeyChecker {
  private readonly digests: Buffer[];
  /** The keys zero-padded to WIDTH, with their byte lengths; undefined when one is longer. */
  private readonly padded: Array<{ bytes: Buffer; length: number }> | undefined;
  private readonly scratch = Buffer.alloc(WIDTH);
  /** Bytes of `scratch` that may be non-zero. */
  private dirty = 0;

  constructor(keys: readonly string[]) {
    this.digests = keys.map(digest);
    const padded = keys.map((k) => {
      const bytes = Buffer.alloc(WIDTH);
      return { bytes, length: Buffer.byteLength(k) <= WIDTH ? bytes.write(k) : -1 };
    });
    this.padded = padded.every((p) => p.length >= 0) ? padded : undefined;
  }

  check(authorization: string | undefined): boolean {
    if (authorization === undefined) return false;
    const m = /^Bearer[ \t]+(\S+)\s*$/i.exec(authorization);
    const key = m?.[1] ?? '';
    let ok = false;
    if (this.padded !== undefined) {
      const length = Buffer.byteLength(key);
      if (length > WIDTH) return false;
      const scratch = this.scratch;
      const written = scratch.write(key);
      // Zeroes what a longer key left behind (the same key each time: nothing to do).
      if (written < this.dirty) scratch.fill(0, written, this.dirty);
      this.dirty = written;
      for (const p of this.padded) ok = (timingSafeEqual(p.bytes, scratch) && p.length === length) || ok;
    } else {
      const given = digest(key);
      for (const d of this.digests) ok = timingSafeEqual(d, given) || ok;
    }
    return ok && m !== null;
  }
}
