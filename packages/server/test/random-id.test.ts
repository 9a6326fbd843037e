import { describe, expect, it } from 'vitest';
import { newClientId, newEpoch, randomId } from '../src/util/random-id.js';

describe('random ids', () => {
  it('connection ids are 16 base64url characters (96 random bits), all distinct across pool refills', () => {
    const ids = Array.from({ length: 3000 }, newClientId);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('epochs are 8 base64url characters, and ids of mixed sizes never overlap or repeat', () => {
    const ids = Array.from({ length: 4000 }, (_, i) => (i % 3 === 0 ? newEpoch() : i % 3 === 1 ? newClientId() : randomId(7)));
    for (const [i, id] of ids.entries()) expect(id).toHaveLength(i % 3 === 0 ? 8 : i % 3 === 1 ? 16 : 10);
    expect(new Set(ids).size).toBe(ids.length);
    expect(() => randomId(10_000)).toThrow(RangeError);
  });
});
