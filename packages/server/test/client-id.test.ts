import { describe, expect, it } from 'vitest';
import { newClientId } from '../src/client-id.js';

describe('connection ids', () => {
  it('are 16 base64url characters (96 random bits), all distinct across pool refills', () => {
    const ids = Array.from({ length: 3000 }, newClientId);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
