import { describe, expect, it } from 'vitest';
import { fullJitterBackoff } from '../src/index.js';
import { handshake, setup } from './helpers.js';

describe('fullJitterBackoff', () => {
  it('draws retry n uniformly from [0, min(maxDelay, minDelay * 2^n))', () => {
    const top = fullJitterBackoff({ minDelay: 1000, maxDelay: 30_000, random: () => 0.999_999 });
    expect([0, 1, 2, 3, 4, 5, 6].map(top)).toEqual([999, 1999, 3999, 7999, 15_999, 29_999, 29_999]);
    const bottom = fullJitterBackoff({ minDelay: 1000, maxDelay: 30_000, random: () => 0 });
    expect([0, 1, 5, 40].map(bottom)).toEqual([0, 0, 0, 0]);
    const mid = fullJitterBackoff({ minDelay: 1000, maxDelay: 30_000, random: () => 0.5 });
    expect([0, 1, 2, 3, 4, 5].map(mid)).toEqual([500, 1000, 2000, 4000, 8000, 15_000]);
  });

  it('stays within its bounds for any random draw and never overflows', () => {
    let i = 0;
    const draws = [0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999];
    const b = fullJitterBackoff({ minDelay: 250, maxDelay: 10_000, random: () => draws[i++ % draws.length] ?? 0 });
    for (let attempt = 0; attempt < 200; attempt++) {
      const d = b(attempt);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(Math.min(10_000, 250 * 2 ** attempt));
      expect(Number.isFinite(d)).toBe(true);
    }
  });

  it('spreads many clients over the whole window (full jitter)', () => {
    let x = 1;
    const lcg = () => (x = (x * 48_271) % 2_147_483_647) / 2_147_483_647;
    const b = fullJitterBackoff({ minDelay: 1000, maxDelay: 30_000, random: lcg });
    const delays = Array.from({ length: 1000 }, () => b(4)); // window 16 s
    expect(Math.min(...delays)).toBeLessThan(1000);
    expect(Math.max(...delays)).toBeGreaterThan(15_000);
  });
});

describe('reconnect schedule', () => {
  it('waits backoff(n) before retry n: 1 s, 2 s, 4 s ... capped at 30 s windows', () => {
    const h = setup({ random: () => 0.999 });
    h.client.connect();
    const delays: number[] = [];
    for (let n = 0; n < 8; n++) {
      h.socket().serverClose(1006);
      const s = h.states.at(-1);
      expect(s).toMatchObject({ to: 'disconnected', code: 1006, attempt: n });
      delays.push(s?.delay ?? -1);
      const before = h.sockets.length;
      h.clock.advance((s?.delay ?? 0) - 1);
      expect(h.sockets.length).toBe(before); // not one millisecond early
      h.clock.advance(1);
      expect(h.sockets.length).toBe(before + 1);
      expect(h.states.at(-1)).toMatchObject({ from: 'disconnected', to: 'connecting', attempt: n });
    }
    expect(delays).toEqual([999, 1998, 3996, 7992, 15_984, 29_970, 29_970, 29_970]);
  });

  it('uses an injected backoff(attempt)', () => {
    const calls: number[] = [];
    const h = setup({ backoff: (n) => (calls.push(n), 7 * (n + 1)) });
    h.client.connect();
    h.socket().serverClose(1012);
    h.clock.advance(7);
    h.socket().serverClose(1012);
    expect(calls).toEqual([0, 1]);
    expect(h.states.filter((s) => s.to === 'disconnected').map((s) => s.delay)).toEqual([7, 14]);
  });

  it('resets the attempt counter once a connection stayed up for stableAfter', () => {
    const h = setup({ stableAfter: 10_000 });
    h.client.connect();
    for (let n = 0; n < 3; n++) {
      handshake(h.socket());
      h.socket().serverClose(4008); // dropped right after connecting: keeps counting
      expect(h.states.at(-1)).toMatchObject({ to: 'disconnected', attempt: n });
      h.clock.advance(h.states.at(-1)?.delay ?? 0);
    }
    handshake(h.socket());
    h.clock.advance(9_999);
    h.socket().serverClose(1006);
    expect(h.states.at(-1)).toMatchObject({ attempt: 3 }); // 9.999 s is not stable yet
    h.clock.advance(h.states.at(-1)?.delay ?? 0);
    handshake(h.socket());
    h.clock.advance(10_000);
    h.socket().serverClose(1006);
    expect(h.states.at(-1)).toMatchObject({ to: 'disconnected', attempt: 0, delay: 500 });
  });

  it('the first connection is not a retry: connecting carries no attempt', () => {
    const h = setup();
    h.client.connect();
    expect(h.states).toEqual([{ from: 'disconnected', to: 'connecting' }]);
  });
});
