import { describe, expect, it } from 'vitest';
import { FramesMemo } from '../src/util/frames-memo.js';

describe('FramesMemo', () => {
  it('builds once for consecutive lists of the very same Buffers, again for any other list', () => {
    let builds = 0;
    const memo = new FramesMemo((frames) => {
      builds++;
      return Buffer.concat(frames);
    });
    const a = Buffer.from('a');
    const b = Buffer.from('b');
    const first = memo.get([a, b]);
    // Another array holding the same Buffers (the next subscriber's queue): the same result, not rebuilt.
    expect(memo.get([a, b])).toBe(first);
    expect(builds).toBe(1);
    // Equal bytes in other Buffers, another order, another length: rebuilt.
    expect(memo.get([a, Buffer.from('b')]).toString()).toBe('ab');
    expect(memo.get([b, a]).toString()).toBe('ba');
    expect(memo.get([b]).toString()).toBe('b');
    expect(builds).toBe(4);
  });
});
