import { describe, expect, it } from 'vitest';
import { IdempotencyIndex } from '../src/engine/memory/idempotency.js';
import { INBOX_BOX_OVERHEAD, INBOX_MESSAGE_OVERHEAD, MemoryInbox } from '../src/engine/memory/inbox.js';
import { HeraldError } from '../src/util/errors.js';

/** An inbox on a manual clock, with its ids in an index of `maxKeys` for `ttl` ms. */
function inboxAt(
  clock: { now: number },
  opts: { maxKeys?: number; ttl?: number; evicted?: (n: number) => void; maxReceipts?: number; maxBytes?: number } = {},
): MemoryInbox {
  const now = (): number => clock.now;
  const ids = new IdempotencyIndex(opts.ttl ?? 60_000, opts.maxKeys ?? 1_000, now, opts.evicted);
  return new MemoryInbox(now, () => undefined, ids, opts.maxReceipts ?? 1_000, opts.maxBytes ?? 1e9);
}

const note = (user: string, n: number, extra: { ttl?: number; idempotencyKey?: string } = {}) => ({
  user,
  type: 'note',
  payloadJson: `{"n":${n}}`,
  ttl: extra.ttl ?? 60_000,
  receipt: false,
  ...(extra.idempotencyKey === undefined ? {} : { idempotencyKey: extra.idempotencyKey }),
});
const LIMITS = { max: 10, idempotencyTtl: 60_000 };

describe('memory inbox: what a stored message holds', () => {
  it("keeps each message's frame in a buffer of its own, not a slice of Node's shared 8 KiB pool (which it would keep whole)", async () => {
    const inbox = inboxAt({ now: 1_000 });
    // Short Buffers made from strings are slices of Node's pool; an inbox frame made the same way would be one.
    expect(Buffer.from('{"a":1}').buffer.byteLength).toBeGreaterThan(1_000);
    for (let i = 0; i < 3; i++)
      await inbox.put({ user: 'ann', type: 'note', payloadJson: `{"n":${i}}`, ttl: 60_000, receipt: false }, { max: 10, idempotencyTtl: 1_000 });
    const kept = await inbox.list('ann', 10);
    expect(kept.map((m) => m.frame.buffer.byteLength)).toEqual(kept.map((m) => m.frame.length));
    expect(kept.map((m) => (JSON.parse(m.frame.toString()) as { payload: unknown }).payload)).toEqual([{ n: 0 }, { n: 1 }, { n: 2 }]);
  });
});

describe('memory inbox: the ids of keyed puts', () => {
  it('stores a repeated id once within the window, and again after it', async () => {
    const clock = { now: 1_000 };
    const inbox = inboxAt(clock, { ttl: 5_000 });
    const first = await inbox.put(note('ann', 1, { idempotencyKey: 'k' }), LIMITS);
    const again = await inbox.put(note('ann', 2, { idempotencyKey: 'k' }), LIMITS);
    expect(again).toMatchObject({ id: first.id, duplicate: true });
    // The same id for another user is another message.
    expect(await inbox.put(note('bob', 3, { idempotencyKey: 'k' }), LIMITS)).toMatchObject({ duplicate: false });
    clock.now += 5_000;
    const later = await inbox.put(note('ann', 4, { idempotencyKey: 'k' }), LIMITS);
    expect(later.duplicate).toBe(false);
    expect(later.id).not.toBe(first.id);
    expect((await inbox.list('ann', 10)).map((m) => m.id)).toEqual([first.id, later.id]);
  });

  it('remembers at most maxKeys ids: the oldest is forgotten early, and counted', async () => {
    const clock = { now: 1_000 };
    let evicted = 0;
    const inbox = inboxAt(clock, { maxKeys: 3, evicted: (n) => (evicted += n) });
    for (let i = 0; i < 5; i++) await inbox.put(note('ann', i, { idempotencyKey: `k${i}` }), LIMITS);
    expect(evicted).toBe(2);
    // k0 and k1 were forgotten (a repeat stores again); k2..k4 are still known.
    expect((await inbox.put(note('ann', 9, { idempotencyKey: 'k0' }), LIMITS)).duplicate).toBe(false);
    expect((await inbox.put(note('ann', 9, { idempotencyKey: 'k4' }), LIMITS)).duplicate).toBe(true);
  });
});

describe('memory inbox: expiry', () => {
  it('drops a message at its own ttl even when a longer-lived one was put before it', async () => {
    const clock = { now: 1_000 };
    const inbox = inboxAt(clock);
    await inbox.put(note('ann', 1, { ttl: 60_000 }), LIMITS);
    await inbox.list('ann', 10); // a touch before anything expired
    await inbox.put(note('ann', 2, { ttl: 100 }), LIMITS);
    await inbox.put(note('ann', 3, { ttl: 200 }), LIMITS);
    clock.now += 150;
    const payloads = async (): Promise<unknown[]> =>
      (await inbox.list('ann', 10)).map((m) => (JSON.parse(m.frame.toString()) as { payload: { n: number } }).payload.n);
    expect(await payloads()).toEqual([1, 3]);
    clock.now += 100;
    expect(await payloads()).toEqual([1]);
    clock.now += 60_000;
    expect(await payloads()).toEqual([]);
  });

  it('lists at most `limit` messages, oldest first', async () => {
    const inbox = inboxAt({ now: 1_000 });
    for (let i = 0; i < 5; i++) await inbox.put(note('ann', i), LIMITS);
    const kept = await inbox.list('ann', 2);
    expect(kept.map((m) => (JSON.parse(m.frame.toString()) as { payload: { n: number } }).payload.n)).toEqual([0, 1]);
  });
});

describe('memory inbox: usage', () => {
  it('counts the messages kept through drops at the per-user bound, removals and expiry, and the receipts until their expiry', async () => {
    const clock = { now: 1_000 };
    const inbox = inboxAt(clock);
    for (let i = 0; i < 12; i++) await inbox.put(note('ann', i, { ttl: 1_000 }), { max: 10, idempotencyTtl: 60_000 });
    expect(inbox.usage.messages).toBe(10);
    const bob = await inbox.put({ ...note('bob', 0, { ttl: 5_000 }), receipt: true }, LIMITS);
    await inbox.put(note('bob', 1, { ttl: 5_000 }), LIMITS);
    expect(inbox.usage).toMatchObject({ messages: 12, receipts: 1, receiptEvictions: 0 });
    await inbox.remove('bob', [bob.id, 'not-there']);
    expect(inbox.usage).toMatchObject({ messages: 11, receipts: 1, receiptEvictions: 0 });
    clock.now += 1_000;
    inbox.sweep();
    expect(inbox.usage).toMatchObject({ messages: 1, receipts: 1, receiptEvictions: 0 });
    clock.now += 4_000;
    inbox.sweep();
    expect(inbox.usage).toMatchObject({ messages: 0, receipts: 0, receiptEvictions: 0 });
    expect(inbox.usage.bytes).toBe(0);
  });

  it('keeps at most maxReceipts receipts: the oldest goes first and is counted, unless it had expired anyway', async () => {
    const clock = { now: 1_000 };
    const inbox = inboxAt(clock, { maxReceipts: 3 });
    const put = (user: string, ttl: number) => inbox.put({ ...note(user, 0, { ttl }), receipt: true }, LIMITS);
    const ids: string[] = [];
    for (const user of ['a', 'b', 'c']) ids.push((await put(user, 60_000)).id);
    expect(inbox.usage).toMatchObject({ messages: 3, receipts: 3, receiptEvictions: 0 });
    // A fourth and a fifth: the two oldest receipts go, before their messages expire; the messages stay.
    for (const user of ['d', 'e']) ids.push((await put(user, 60_000)).id);
    expect(inbox.usage).toMatchObject({ messages: 5, receipts: 3, receiptEvictions: 2 });
    expect(await inbox.receipt(ids[0] as string)).toBeNull();
    expect(await inbox.receipt(ids[1] as string)).toBeNull();
    expect(await inbox.receipt(ids[2] as string)).toMatchObject({ id: ids[2], user: 'c', delivered: 0 });
    expect((await inbox.list('a', 10)).map((m) => m.id)).toEqual([ids[0]]);
    // Acknowledging an evicted one finds no receipt (no message.acked from it); a kept one still counts.
    expect(await inbox.acked([ids[0] as string, ids[4] as string], 'client-1', clock.now)).toEqual([ids[4]]);
    // An oldest receipt that had expired already is not an early eviction.
    const short = new Set<string>();
    const inbox2 = inboxAt(clock, { maxReceipts: 2 });
    short.add((await inbox2.put({ ...note('x', 0, { ttl: 100 }), receipt: true }, LIMITS)).id);
    await inbox2.put({ ...note('y', 0, { ttl: 60_000 }), receipt: true }, LIMITS);
    clock.now += 200;
    await inbox2.put({ ...note('z', 0, { ttl: 60_000 }), receipt: true }, LIMITS);
    expect(inbox2.usage).toMatchObject({ receipts: 2, receiptEvictions: 0 });
    expect(await inbox2.receipt([...short][0] as string)).toBeNull();
  });
});

describe('memory inbox: the bound on every inbox together (maxBytes)', () => {
  const MSG = INBOX_MESSAGE_OVERHEAD;
  const BOX = INBOX_BOX_OVERHEAD;
  /** The frame length of note(user, n) as stored. */
  const frameOf = async (user: string, n: number): Promise<number> => {
    const probe = inboxAt({ now: 1_000 });
    await probe.put(note(user, n), LIMITS);
    return (await probe.list(user, 1))[0]?.frame.length ?? 0;
  };

  it('counts each message and each user holding any, and gives it all back through drops, removals and expiry', async () => {
    const clock = { now: 1_000 };
    const inbox = inboxAt(clock);
    const f = await frameOf('ann', 1);
    await inbox.put(note('ann', 1, { ttl: 1_000 }), LIMITS);
    expect(inbox.usage.bytes).toBe(f + MSG + BOX);
    await inbox.put(note('ann', 2, { ttl: 1_000 }), LIMITS);
    expect(inbox.usage.bytes).toBe(2 * (f + MSG) + BOX);
    const bob = await inbox.put(note('bob', 1, { ttl: 60_000 }), LIMITS);
    expect(inbox.usage.bytes).toBe(3 * (f + MSG) + 2 * BOX);
    // At the per-user bound a put replaces the oldest: the count stays.
    for (let n = 0; n < 20; n++) await inbox.put(note('cat', n % 10, { ttl: 60_000 }), { max: 2, idempotencyTtl: 60_000 });
    expect(inbox.usage.bytes).toBe(5 * (f + MSG) + 3 * BOX);
    await inbox.remove('cat', 'all');
    await inbox.remove('bob', [bob.id]);
    expect(inbox.usage.bytes).toBe(2 * (f + MSG) + BOX);
    clock.now += 1_000;
    inbox.sweep();
    expect(inbox.usage).toMatchObject({ messages: 0, bytes: 0 });
  });

  it('refuses a put past the bound with inbox_storage_full (HTTP 507), keeps what it stored, and counts the refusal', async () => {
    const clock = { now: 1_000 };
    const f = await frameOf('u0', 0);
    const limit = 3 * (f + MSG + BOX) + 10; // room for three users with one message each, not a fourth
    const inbox = inboxAt(clock, { maxBytes: limit });
    const stored: string[] = [];
    for (let i = 0; i < 3; i++) stored.push((await inbox.put(note(`u${i}`, 0, { ttl: 1_000 }), LIMITS)).id);
    const refused = inbox.put(note('u3', 0, { idempotencyKey: 'k' }), LIMITS);
    await expect(refused).rejects.toBeInstanceOf(HeraldError);
    await expect(refused).rejects.toMatchObject({ code: 'inbox_storage_full', status: 507, extra: { limit } });
    // A second message for a user who has one does not fit either; nothing was dropped for either attempt.
    await expect(inbox.put(note('u0', 1), LIMITS)).rejects.toMatchObject({ code: 'inbox_storage_full' });
    expect(inbox.usage).toMatchObject({ messages: 3, bytes: 3 * (f + MSG + BOX), rejected: 2 });
    for (let i = 0; i < 3; i++) expect((await inbox.list(`u${i}`, 10)).map((m) => m.id)).toEqual([stored[i]]);
    expect(await inbox.list('u3', 10)).toEqual([]);
    // A put that only replaces the oldest message of a user at the per-user bound still fits.
    expect(await inbox.put(note('u0', 2), { max: 1, idempotencyTtl: 60_000 })).toMatchObject({ duplicate: false, dropped: 1 });
    // Room comes back as messages leave: an acknowledgement (remove) or expiry. The refused keyed put left no id
    // behind: once there is room it is stored, not answered as a duplicate.
    await inbox.remove('u1', 'all');
    expect(await inbox.put(note('u3', 0, { idempotencyKey: 'k' }), LIMITS)).toMatchObject({ duplicate: false });
    await expect(inbox.put(note('u4', 0), LIMITS)).rejects.toMatchObject({ code: 'inbox_storage_full' });
    // u2's message expires: a put at the bound sweeps expired messages (at most once a second) before refusing.
    clock.now += 1_000;
    expect(await inbox.put(note('u4', 0), LIMITS)).toMatchObject({ duplicate: false });
    expect(inbox.usage).toMatchObject({ messages: 3, bytes: 3 * (f + MSG + BOX), rejected: 3 });
  });

  it('sweeps expired messages at the bound at most once a second: a flood of refused puts is not a scan each', async () => {
    const clock = { now: 1_000 };
    const f = await frameOf('a', 0);
    const inbox = inboxAt(clock, { maxBytes: f + MSG + BOX + 10 }); // room for one message
    await inbox.put(note('a', 0, { ttl: 100 }), LIMITS);
    // Refused at 1000 (that put swept: nothing had expired yet).
    await expect(inbox.put(note('b', 0), LIMITS)).rejects.toMatchObject({ code: 'inbox_storage_full' });
    // At 1500 a's message has expired, but the last sweep at the bound was under a second ago: still refused.
    clock.now = 1_500;
    await expect(inbox.put(note('b', 0), LIMITS)).rejects.toMatchObject({ code: 'inbox_storage_full' });
    expect(inbox.usage).toMatchObject({ messages: 1, rejected: 2 });
    // A second after that sweep the next put sweeps again, and fits.
    clock.now = 2_000;
    expect(await inbox.put(note('b', 0), LIMITS)).toMatchObject({ duplicate: false });
    expect(inbox.usage).toMatchObject({ messages: 1, bytes: f + MSG + BOX, rejected: 2 });
    expect(await inbox.list('a', 10)).toEqual([]);
  });

  it('holds against a flood of puts to new users: the count never passes the bound', async () => {
    const inbox = inboxAt({ now: 1_000 }, { maxBytes: 100_000 });
    let refused = 0;
    for (let i = 0; i < 10_000; i++) {
      try {
        await inbox.put(note(`flood-${i}`, i), LIMITS);
      } catch (err) {
        expect(err).toMatchObject({ code: 'inbox_storage_full' });
        refused += 1;
      }
      expect(inbox.usage.bytes).toBeLessThanOrEqual(100_000);
    }
    expect(refused).toBeGreaterThan(9_000);
    expect(inbox.usage.rejected).toBe(refused);
    expect(inbox.usage.messages).toBe(10_000 - refused);
  });
});
