import { describe, expect, it } from 'vitest';
import type { SubscriptionEvents } from '../src/index.js';
import { handshake, msg, result, setup } from './helpers.js';

/** A connected client following `news` from seq 10 in epoch e1. */
function following() {
  const h = setup();
  const sub = h.client.subscribe('news');
  const seen: number[] = [];
  sub.on('message', (m) => seen.push(m.seq));
  const resets: Array<SubscriptionEvents['reset']> = [];
  sub.on('reset', (r) => resets.push(r));
  h.client.connect();
  handshake(h.socket(), { news: result(10) });
  return { ...h, sub, seen, resets };
}

describe('exactly once, in order', () => {
  it('delivers consecutive seqs and drops duplicates (seq <= last)', () => {
    const h = following();
    for (const seq of [11, 12, 12, 11, 13, 10, 13, 14]) h.socket().receive(msg('news', seq));
    expect(h.seen).toEqual([11, 12, 13, 14]);
    expect(h.messages.map((m) => m.seq)).toEqual([11, 12, 13, 14]);
    expect(h.sub.position).toEqual({ seq: 14, epoch: 'e1' });
  });

  it('moves the position before the app handler runs', () => {
    const h = following();
    const positions: Array<number | undefined> = [];
    h.sub.on('message', () => positions.push(h.sub.position?.seq));
    h.socket().receive(msg('news', 11));
    expect(positions).toEqual([11]);
  });

  it('a gap resubscribes with since = last and epoch, and delivers nothing past it until recovery', () => {
    const h = following();
    h.socket().receive(msg('news', 11));
    h.socket().receive(msg('news', 14)); // 12 and 13 lost
    expect(h.socket().last()).toMatchObject({ type: 'subscribe', channel: 'news', since: 11, epoch: 'e1' });
    const id = h.socket().last()?.['id'];
    expect(h.sub.state).toBe('subscribing');
    h.socket().receive(msg('news', 15)); // live traffic before the answer: held back (replayed later)
    expect(h.seen).toEqual([11]);
    h.socket().receiveBatch([{ type: 'subscribed', channel: 'news', ...result(15), id }, msg('news', 12), msg('news', 13), msg('news', 14), msg('news', 15)]);
    h.socket().receive(msg('news', 16));
    expect(h.seen).toEqual([11, 12, 13, 14, 15, 16]);
    expect(h.sub.state).toBe('subscribed');
    expect(h.socket().framesOf('subscribe')).toHaveLength(1); // one resubscribe, not one per message
  });

  it('recovered: the recovered event tells where the replay starts', () => {
    const h = following();
    const rec: Array<SubscriptionEvents['recovered']> = [];
    h.sub.on('recovered', (r) => rec.push(r));
    h.socket().receive(msg('news', 12));
    const id = h.socket().last()?.['id'];
    h.socket().receive({ type: 'subscribed', channel: 'news', ...result(12), id });
    expect(rec).toEqual([{ since: 10, seq: 12, epoch: 'e1' }]);
    expect(h.resets).toEqual([]);
  });

  it('recovered:false resets the position and emits reset (history_lost)', () => {
    const h = following();
    h.socket().receive(msg('news', 50));
    const id = h.socket().last()?.['id'];
    h.socket().receive({ type: 'subscribed', channel: 'news', ...result(60, 'e1', false), id });
    expect(h.resets).toEqual([{ reason: 'history_lost', seq: 60, epoch: 'e1', previous: { seq: 10, epoch: 'e1' } }]);
    h.socket().receive(msg('news', 60)); // already covered by the refetch
    h.socket().receive(msg('news', 61));
    expect(h.seen).toEqual([61]);
  });

  it('a fresh subscribed for a subscribed channel (new epoch) resets the position; client-level reset too', () => {
    const h = following();
    const clientResets: unknown[] = [];
    h.client.on('reset', (r) => clientResets.push(r));
    h.socket().receive(msg('news', 11));
    h.socket().receive({ type: 'subscribed', channel: 'news', ...result(0, 'e2', false) });
    expect(h.resets).toEqual([{ reason: 'epoch_changed', seq: 0, epoch: 'e2', previous: { seq: 11, epoch: 'e1' } }]);
    expect(clientResets).toEqual([{ channel: 'news', reason: 'epoch_changed', seq: 0, epoch: 'e2', previous: { seq: 11, epoch: 'e1' } }]);
    h.socket().receive(msg('news', 1));
    h.socket().receive(msg('news', 2));
    expect(h.seen).toEqual([11, 1, 2]);
    expect(h.sub.position).toEqual({ seq: 2, epoch: 'e2' });
  });

  it('a server at a lower seq in the same epoch cannot be continuing our history: reset', () => {
    const h = following();
    h.socket().receive(msg('news', 12));
    const id = h.socket().last()?.['id'];
    h.socket().receive({ type: 'subscribed', channel: 'news', ...result(5, 'e1', true), id });
    expect(h.resets[0]).toMatchObject({ reason: 'history_lost', seq: 5 });
  });

  it('seq 0 messages (one connection, client:<id>) are delivered without dedup or tracking', () => {
    const h = following();
    h.socket().receive(msg('client:c1', 0, { hello: 1 }, 'notice'));
    h.socket().receive(msg('client:c1', 0, { hello: 1 }, 'notice'));
    h.socket().receive(msg('news', 0, { side: true }));
    expect(h.messages.map((m) => [m.channel, m.seq])).toEqual([
      ['client:c1', 0],
      ['client:c1', 0],
      ['news', 0],
    ]);
    expect(h.seen).toEqual([0]);
    expect(h.sub.position).toEqual({ seq: 10, epoch: 'e1' });
  });

  it('messages for channels without a subscription are dropped', () => {
    const h = following();
    h.socket().receive(msg('other', 1));
    expect(h.messages).toEqual([]);
  });
});

describe('recovery across reconnects', () => {
  it('the connect frame after a reconnect resubscribes every channel with since and epoch', () => {
    const h = setup();
    h.client.subscribe('news');
    h.client.subscribe('prices', undefined, { since: 7, epoch: 'p1' });
    h.client.connect();
    h.socket().open();
    expect(h.socket().frames()[0]).toEqual({ type: 'connect', subs: { news: {}, prices: { since: 7, epoch: 'p1' } }, batch: true });
    h.socket().receive({
      type: 'connected',
      client: 'c1',
      user: '42',
      ping: 25_000,
      subs: { 'user:42': result(3, 'u1'), news: result(20, 'n1'), prices: result(7, 'p1') },
    });
    h.socket().receiveBatch([msg('news', 21), msg('user:42', 4), msg('prices', 8)]);
    h.socket().serverClose(1012);
    h.clock.advance(500);
    h.socket().open();
    expect(h.socket().frames()[0]).toEqual({
      type: 'connect',
      subs: { news: { since: 21, epoch: 'n1' }, prices: { since: 8, epoch: 'p1' }, 'user:42': { since: 4, epoch: 'u1' } },
      batch: true,
    });
  });

  it('messages missed while disconnected are replayed once, without duplicates', () => {
    const h = setup();
    const seen: number[] = [];
    h.client.subscribe('news', (m) => seen.push(m.seq));
    h.client.connect();
    handshake(h.socket(), { news: result(0) });
    h.socket().receiveBatch([msg('news', 1), msg('news', 2)]);
    h.socket().serverClose(1006);
    h.clock.advance(500);
    h.socket().open();
    h.socket().receiveBatch([
      { type: 'connected', client: 'c2', user: '42', ping: 25_000, subs: { news: result(4) } },
      msg('news', 2), // at-least-once from the engine: a duplicate
      msg('news', 3),
      msg('news', 4),
    ]);
    expect(seen).toEqual([1, 2, 3, 4]);
  });

  it('an epoch change across a reconnect is a reset', () => {
    const h = setup();
    const sub = h.client.subscribe('news');
    const resets: unknown[] = [];
    sub.on('reset', (r) => resets.push(r));
    h.client.connect();
    handshake(h.socket(), { news: result(9, 'old') });
    h.socket().serverClose(1012);
    h.clock.advance(500);
    handshake(h.socket(), { news: result(2, 'new', false) });
    expect(resets).toEqual([{ reason: 'epoch_changed', seq: 2, epoch: 'new', previous: { seq: 9, epoch: 'old' } }]);
  });

  it('messages between the socket drop and the new connected frame are not delivered', () => {
    const h = setup();
    h.client.subscribe('news');
    h.client.connect();
    handshake(h.socket(), { news: result(0) });
    h.socket().serverClose(1006);
    h.clock.advance(500);
    h.socket().open();
    h.socket().receive(msg('news', 1)); // server bug or stray frame: not ready yet
    expect(h.messages).toEqual([]);
  });
});

describe('the user channel', () => {
  it('is tracked from connected.subs: its messages reach client.on("message")', () => {
    const h = setup();
    h.client.connect();
    handshake(h.socket(), { 'user:42': result(0, 'u1') });
    h.socket().receiveBatch([msg('user:42', 1), msg('user:42', 1), msg('user:42', 2)]);
    expect(h.messages.map((m) => m.seq)).toEqual([1, 2]);
    expect(h.client.getSubscription('user:42')?.position).toEqual({ seq: 2, epoch: 'u1' });
  });

  it('subscribe("user:42") returns the tracked subscription without a subscribe frame', () => {
    const h = setup();
    h.client.connect();
    handshake(h.socket(), { 'user:42': result(5, 'u1') });
    const seen: number[] = [];
    const sub = h.client.subscribe('user:42', (m) => seen.push(m.seq));
    expect(sub.state).toBe('subscribed');
    expect(h.socket().framesOf('subscribe')).toEqual([]);
    h.socket().receive(msg('user:42', 6));
    expect(seen).toEqual([6]);
  });

  it('subscribe("user:42") before connecting goes in the connect frame', () => {
    const h = setup();
    const seen: number[] = [];
    h.client.subscribe('user:42', (m) => seen.push(m.seq));
    h.client.connect();
    h.socket().open();
    expect(h.socket().frames()[0]).toMatchObject({ subs: { 'user:42': {} } });
    h.socket().receive({ type: 'connected', client: 'c', user: '42', ping: 25_000, subs: { 'user:42': result(0) } });
    h.socket().receive(msg('user:42', 1));
    expect(seen).toEqual([1]);
  });

  it('anonymous connections track no user channel', () => {
    const h = setup();
    h.client.connect();
    handshake(h.socket(), {}, null);
    expect(h.client.user).toBeNull();
    expect(h.client.getSubscription('user:null')).toBeUndefined();
  });
});
