/** SmallMap and OneOrSet: the per-connection collections that keep one entry without a Map or a Set. */
import { describe, expect, it } from 'vitest';
import { addTo, holds, removeFrom, sizeOf, valuesOf, withoutValue, withValue, type OneOrSet } from '../src/util/one-or-set.js';
import { SmallMap } from '../src/util/small-map.js';

describe('SmallMap', () => {
  it('behaves as a Map through one, two and back to no entries', () => {
    const m = new SmallMap<string, number>();
    expect([m.size, m.get('a'), m.has('a'), [...m.values()]]).toEqual([0, undefined, false, []]);
    m.set('a', 1).set('a', 2);
    expect([m.size, m.get('a'), m.has('a'), m.has('b'), [...m.values()]]).toEqual([1, 2, true, false, [2]]);
    expect(m.delete('b')).toBe(false);
    m.set('b', 3);
    expect([m.size, m.get('a'), m.get('b'), [...m.values()]]).toEqual([2, 2, 3, [2, 3]]);
    expect(m.delete('a')).toBe(true);
    expect([m.size, m.get('a'), [...m.values()]]).toEqual([1, undefined, [3]]);
    m.clear();
    expect([m.size, m.get('b'), [...m.values()]]).toEqual([0, undefined, []]);
    expect(m.delete('b')).toBe(false);
  });
});

describe('OneOrSet', () => {
  it('keeps one value bare, a Set from the second, and the last one bare again', () => {
    const map = new Map<string, OneOrSet<string>>();
    addTo(map, 'u', 'c1');
    addTo(map, 'u', 'c1');
    expect(map.get('u')).toBe('c1');
    addTo(map, 'u', 'c2');
    expect(sizeOf(map.get('u'))).toBe(2);
    expect(removeFrom(map, 'u', 'c3')).toBe(false);
    expect(removeFrom(map, 'u', 'c1')).toBe(false);
    expect(map.get('u')).toBe('c2');
    expect(removeFrom(map, 'u', 'c1')).toBe(false);
    expect(removeFrom(map, 'u', 'c2')).toBe(true);
    expect(map.has('u')).toBe(false);
    expect(sizeOf(map.get('u'))).toBe(0);
  });

  it('withValue / withoutValue / holds / valuesOf', () => {
    let v: OneOrSet<object> | undefined;
    const [a, b, c] = [{}, {}, {}];
    v = withValue(v, a);
    expect(v).toBe(a);
    v = withValue(withValue(v, b), c);
    expect([holds(v, a), holds(v, b), holds(v, {}), [...valuesOf(v)]]).toEqual([true, true, false, [a, b, c]]);
    v = withoutValue(withoutValue(v, a), c);
    expect(v).toBe(b);
    expect(withoutValue(v, a)).toBe(b);
    expect(withoutValue(v, b)).toBeUndefined();
    expect([...valuesOf(undefined)]).toEqual([]);
  });
});
