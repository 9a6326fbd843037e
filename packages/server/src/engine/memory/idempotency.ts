/** What an idempotency key remembers: the seq and epoch of the original publish. */
export interface Remembered {
  seq: number;
  epoch: string;
}

const EMPTY = 0;
const MIN_CAPACITY = 1024;

/** Two independent 32-bit FNV-1a hashes of `key` (64 bits in all). */
function hashes(key: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  return [a >>> 0, b >>> 0];
}

/**
 * Remembers publish ids for the idempotency window, in about 40 bytes per id whatever the id's length, so that
 * the window holds at the rates it is documented for (the default bound, 3 000 000 ids, covers 10 000 publishes
 * a second with ids for 5 minutes in about 120 MB, allocated only as ids arrive).
 *
 * Ids are kept as 64-bit hashes (two FNV-1a lanes) in a ring ordered by time (one TTL for all, so the oldest id
 * is always next to expire) with an open-addressing index over it. A false match needs two different ids with
 * the same 64 bits within one window: about 1 in 4 million at the full bound, and then one publish is taken
 * for a repeat. When the bound is reached before the window has passed, the oldest id is forgotten early and
 * `onEarlyEviction` says so (a repeat of it would publish again).
 */
export class IdempotencyIndex {
  private capacity = 0;
  /** Ring of ids, oldest at `head`. */
  private h1 = new Uint32Array(0);
  private h2 = new Uint32Array(0);
  private expires = new Float64Array(0);
  private seqs = new Float64Array(0);
  private epochs: string[] = [];
  private head = 0;
  private count = 0;
  /** Open addressing: ring index + 1, or EMPTY. */
  private table = new Int32Array(0);
  private mask = 0;

  constructor(
    private readonly ttl: number,
    private readonly maxKeys: number,
    private readonly now: () => number,
    private readonly onEarlyEviction: (n: number) => void = () => undefined,
  ) {}

  /** Ids remembered now. */
  get size(): number {
    this.expire(this.now());
    return this.count;
  }

  /** Bytes the index holds (its arrays; the epoch strings are shared with the history). */
  get bytes(): number {
    return this.capacity * 32 + this.table.length * 4;
  }

  get(key: string): Remembered | undefined {
    this.expire(this.now());
    const i = this.find(...hashes(key));
    return i < 0 ? undefined : { seq: this.seqs[i] as number, epoch: this.epochs[i] as string };
  }

  set(key: string, value: Remembered): void {
    const now = this.now();
    this.expire(now);
    const [a, b] = hashes(key);
    const existing = this.find(a, b);
    if (existing >= 0) {
      // Seen within the window: keep its place (and expiry), take the newer answer.
      this.seqs[existing] = value.seq;
      this.epochs[existing] = value.epoch;
      return;
    }
    if (this.count === this.capacity) {
      if (this.capacity < this.maxKeys) this.resize(Math.min(this.maxKeys, Math.max(MIN_CAPACITY, this.capacity * 2)));
      else {
        // Full within the window: forget the oldest id before its time, and say so.
        this.dropHead();
        this.onEarlyEviction(1);
      }
    }
    const i = (this.head + this.count) % this.capacity;
    this.h1[i] = a;
    this.h2[i] = b;
    this.expires[i] = now + this.ttl;
    this.seqs[i] = value.seq;
    this.epochs[i] = value.epoch;
    this.count += 1;
    this.link(a, i);
  }

  /**
   * Forgets the ids whose window has passed (they are at the head of the ring), and gives memory back once few are
   * left: after a burst the arrays would otherwise stay at its high-water mark (about 130 MB at the default bound).
   */
  private expire(now: number): void {
    let dropped = false;
    while (this.count > 0 && (this.expires[this.head] as number) <= now) {
      this.dropHead();
      dropped = true;
    }
    // Down to a quarter full at most, so that the next growth (at full) is far: no resizing back and forth.
    if (dropped && this.capacity > MIN_CAPACITY && this.count <= this.capacity / 8) this.resize(Math.max(MIN_CAPACITY, this.count * 4));
  }

  private dropHead(): void {
    this.unlink(this.head);
    this.epochs[this.head] = '';
    this.head = (this.head + 1) % this.capacity;
    this.count -= 1;
  }

  /** The ring index of an id, or -1. */
  private find(a: number, b: number): number {
    if (this.count === 0) return -1;
    for (let s = a & this.mask; ; s = (s + 1) & this.mask) {
      const v = this.table[s] as number;
      if (v === EMPTY) return -1;
      const i = v - 1;
      if (this.h1[i] === a && this.h2[i] === b) return i;
    }
  }

  private link(a: number, i: number): void {
    let s = a & this.mask;
    while (this.table[s] !== EMPTY) s = (s + 1) & this.mask;
    this.table[s] = i + 1;
  }

  /** Removes ring index `i` from the table (backward-shift deletion keeps linear probing correct). */
  private unlink(i: number): void {
    let s = (this.h1[i] as number) & this.mask;
    while (this.table[s] !== i + 1) s = (s + 1) & this.mask;
    for (;;) {
      this.table[s] = EMPTY;
      let next = s;
      for (;;) {
        next = (next + 1) & this.mask;
        const v = this.table[next] as number;
        if (v === EMPTY) return;
        const home = (this.h1[v - 1] as number) & this.mask;
        // Move the entry back when its home slot is not in the cyclic range (s, next].
        if (s <= next ? home <= s || home > next : home <= s && home > next) {
          this.table[s] = v;
          s = next;
          break;
        }
      }
    }
  }

  /** Reallocates the ring at `capacity` (at least `count`; oldest first at index 0) and rebuilds the table at twice its size. */
  private resize(capacity: number): void {
    const old = { h1: this.h1, h2: this.h2, expires: this.expires, seqs: this.seqs, epochs: this.epochs, head: this.head, capacity: this.capacity };
    this.h1 = new Uint32Array(capacity);
    this.h2 = new Uint32Array(capacity);
    this.expires = new Float64Array(capacity);
    this.seqs = new Float64Array(capacity);
    this.epochs = new Array<string>(capacity).fill('');
    let size = 1;
    while (size < capacity * 2) size *= 2;
    this.table = new Int32Array(size);
    this.mask = size - 1;
    this.capacity = capacity;
    this.head = 0;
    for (let k = 0; k < this.count; k++) {
      const j = (old.head + k) % old.capacity;
      this.h1[k] = old.h1[j] as number;
      this.h2[k] = old.h2[j] as number;
      this.expires[k] = old.expires[j] as number;
      this.seqs[k] = old.seqs[j] as number;
      this.epochs[k] = old.epochs[j] as string;
      this.link(this.h1[k] as number, k);
    }
  }
}
