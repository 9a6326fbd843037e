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
