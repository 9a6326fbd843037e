import { describe, expect, it } from 'vitest';
import { MemoryInbox } from '../src/engine/memory/inbox.js';

describe('memory inbox: what a stored message holds', () => {
  it("keeps each message's frame in a buffer of its own, not a slice of Node's shared 8 KiB pool (which it would keep whole)", async () => {
    const inbox = new MemoryInbox(
      () => 1_000,
      () => undefined,
    );
    // Short Buffers made from strings are slices of Node's pool; an inbox frame made the same way would be one.
    expect(Buffer.from('{"a":1}').buffer.byteLength).toBeGreaterThan(1_000);
    for (let i = 0; i < 3; i++)
      await inbox.put({ user: 'ann', type: 'note', payloadJson: `{"n":${i}}`, ttl: 60_000, receipt: false }, { max: 10, idempotencyTtl: 1_000 });
    const kept = await inbox.list('ann', 10);
    expect(kept.map((m) => m.frame.buffer.byteLength)).toEqual(kept.map((m) => m.frame.length));
    expect(kept.map((m) => (JSON.parse(m.frame.toString()) as { payload: unknown }).payload)).toEqual([{ n: 0 }, { n: 1 }, { n: 2 }]);
  });
});
