/** SmallMap and OneOrSet (the per-connection collections that keep one entry without a Map or a Set), and MinHeap. */
import { describe, expect, it } from 'vitest';
import { addTo, holds, removeFrom, sizeOf, valuesOf, withoutValue, withValue, type OneOrSet } from '../src/util/one-or-set.js';
import { MinHeap } from '../src/util/min-heap.js';
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

describe('MinHeap', () => {
  it('gives back what it was given in order, through interleaved pushes and pops and a retain', () => {
    let seed = 7;
    const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const heap = new MinHeap<number>((a, b) => a < b);
    const model: number[] = [];
    expect([heap.size, heap.peek(), heap.pop()]).toEqual([0, undefined, undefined]);
    for (let i = 0; i < 5000; i++) {
      if (random() < 0.6) {
        const v = Math.floor(random() * 1000);
        heap.push(v);
        model.push(v);
      } else {
        model.sort((a, b) => a - b);
        expect(heap.peek()).toBe(model[0]);
        expect(heap.pop()).toBe(model.shift());
      }
      if (i === 2500) {
        heap.retain((v) => v % 3 !== 0);
        model.splice(0, model.length, ...model.filter((v) => v % 3 !== 0));
      }
      expect(heap.size).toBe(model.length);
    }
    const rest: number[] = [];
    for (let v = heap.pop(); v !== undefined; v = heap.pop()) rest.push(v);
    expect(rest).toEqual(model.sort((a, b) => a - b));
  });
});
