/**
 * A Map for the few entries of one connection (its subscriptions; most connections have one or two): the
 * first entry is kept in fields, a Map made only for a second one. A Map of one costs about 180 bytes (the
 * object and its smallest hash table), which is per idle connection. Keys compare with `===`.
 */
export class SmallMap<K, V> {
  private key: K | undefined = undefined;
  private value: V | undefined = undefined;
  private one = false;
  private many: Map<K, V> | undefined = undefined;

  get size(): number {
    return this.many !== undefined ? this.many.size : this.one ? 1 : 0;
  }

  get(key: K): V | undefined {
    if (this.many !== undefined) return this.many.get(key);
    return this.one && this.key === key ? this.value : undefined;
  }

  has(key: K): boolean {
    if (this.many !== undefined) return this.many.has(key);
    return this.one && this.key === key;
  }

  set(key: K, value: V): this {
    if (this.many !== undefined) {
      this.many.set(key, value);
    } else if (!this.one || this.key === key) {
      this.key = key;
      this.value = value;
      this.one = true;
    } else {
      this.many = new Map([
        [this.key as K, this.value as V],
        [key, value],
      ]);
      this.key = undefined;
      this.value = undefined;
      this.one = false;
    }
    return this;
  }

  delete(key: K): boolean {
    if (this.many !== undefined) return this.many.delete(key);
    if (!this.one || this.key !== key) return false;
    this.key = undefined;
    this.value = undefined;
    this.one = false;
    return true;
  }

  clear(): void {
    this.key = undefined;
    this.value = undefined;
    this.one = false;
    this.many = undefined;
  }

  /** The values, in insertion order. */
  values(): Iterable<V> {
    if (this.many !== undefined) return this.many.values();
    return this.one ? [this.value as V] : [];
  }
}
