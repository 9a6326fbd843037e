/**
 * Values kept per key where almost every key has one (a user's connections, a channel's members): the value
 * itself, and a Set only from the second one on. A Set of one costs about 150 bytes (the object and its
 * smallest hash table), which is per idle connection in maps such as these. `T` must not be a Set.
 */
export type OneOrSet<T> = T | Set<T>;

/** Adds `value` under `key` (no duplicates, as a Set). */
export function addTo<K, T>(map: Map<K, OneOrSet<T>>, key: K, value: T): void {
  const cur = map.get(key);
  if (cur === undefined) map.set(key, value);
  else if (cur instanceof Set) cur.add(value);
  else if (cur !== value) map.set(key, new Set([cur, value]));
}

/** Removes `value` from `key`; true when `key` is then gone (it held nothing else). */
export function removeFrom<K, T>(map: Map<K, OneOrSet<T>>, key: K, value: T): boolean {
  const cur = map.get(key);
  if (cur === undefined) return false;
  if (cur instanceof Set) {
    if (!cur.delete(value)) return false;
    if (cur.size > 1) return false;
    const [last] = cur;
    if (last === undefined) map.delete(key);
    else map.set(key, last);
    return last === undefined;
  }
  if (cur !== value) return false;
  map.delete(key);
  return true;
}

/** How many values `v` holds. */
export function sizeOf<T>(v: OneOrSet<T> | undefined): number {
  return v === undefined ? 0 : v instanceof Set ? v.size : 1;
}

/** The values of `v`. */
export function valuesOf<T>(v: OneOrSet<T> | undefined): Iterable<T> {
  return v === undefined ? [] : v instanceof Set ? v : [v];
}

/** `cur` with `value` added (a new Set from the second value on; a Set is added to in place). */
export function withValue<T>(cur: OneOrSet<T> | undefined, value: T): OneOrSet<T> {
  if (cur === undefined) return value;
  if (cur instanceof Set) return cur.add(value);
  return cur === value ? cur : new Set([cur, value]);
}

/** Whether `cur` holds `value`. */
export function holds<T>(cur: OneOrSet<T> | undefined, value: T): boolean {
  return cur instanceof Set ? cur.has(value) : cur !== undefined && cur === value;
}

/** `cur` without `value`: undefined once empty, the one value left instead of a Set of one. */
export function withoutValue<T>(cur: OneOrSet<T> | undefined, value: T): OneOrSet<T> | undefined {
  if (cur === undefined) return undefined;
  if (!(cur instanceof Set)) return cur === value ? undefined : cur;
  cur.delete(value);
  if (cur.size > 1) return cur;
  const [last] = cur;
  return last;
}
