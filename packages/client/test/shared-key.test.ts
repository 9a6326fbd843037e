import { describe, expect, it } from 'vitest';
import { hash, sharedName, tokenUser } from '../src/shared-key.js';
import { tokenFor } from './support/tabs.js';

describe('sharing key', () => {
  it('reads the user from a JWT sub claim; another token of the same user gives the same user', () => {
    expect(tokenUser(tokenFor('42'))).toBe('sub:42');
    expect(tokenUser(tokenFor('42', 'refreshed'))).toBe('sub:42');
    expect(tokenUser(tokenFor('ünï 名前'))).toBe(tokenUser(tokenFor('ünï 名前')));
    expect(tokenUser(tokenFor('ünï 名前'))).not.toBe(tokenUser(tokenFor('uni')));
  });

  it('keeps a token it cannot read whole: two such tokens never share', () => {
    expect(tokenUser('opaque')).toBe('token:opaque');
    expect(tokenUser('a.bm90IGpzb24.c')).toBe('token:a.bm90IGpzb24.c');
  });

  it('names one lock and channel per URL and user, without showing either', () => {
    const a = sharedName('wss://push.example.com/ws', 'sub:42');
    expect(a).toMatch(/^herald\/1\/[0-9a-z]+$/);
    expect(a).not.toContain('42');
    expect(sharedName('wss://push.example.com/ws', 'sub:42')).toBe(a);
    expect(sharedName('wss://push.example.com/ws', 'sub:43')).not.toBe(a);
    expect(sharedName('wss://other.example.com/ws', 'sub:42')).not.toBe(a);
    expect(sharedName('wss://push.example.com/ws', '')).not.toBe(a);
  });

  it('hashes to 53 bits: no collision among many users', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 50_000; i++) seen.add(hash(`sub:${i}`));
    expect(seen.size).toBe(50_000);
  });
});
