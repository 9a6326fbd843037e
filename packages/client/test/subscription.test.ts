import { describe, expect, it } from 'vitest';
import { ClientErrorCode, HeraldError } from '../src/index.js';
import { connectedFrame, handshake, msg, result, setup } from './helpers.js';

function connectedClient() {
  const h = setup();
  h.client.connect();
  handshake(h.socket());
  return h;
}

describe('subscribe', () => {
  it('while connected: sends subscribe with an id and becomes subscribed on the answer', () => {
    const h = connectedClient();
    const sub = h.client.subscribe('news');
    expect(sub.state).toBe('subscribing');
    expect(h.socket().last()).toEqual({ type: 'subscribe', channel: 'news', id: 1 });
    const events: unknown[] = [];
    sub.on('subscribed', (e) => events.push(e));
    h.socket().receive({ type: 'subscribed', channel: 'news', ...result(3), id: 1 });
    expect(sub.state).toBe('subscribed');
    expect(events).toEqual([{ seq: 3, epoch: 'e1', recovered: true }]);
    expect(sub.position).toEqual({ seq: 3, epoch: 'e1' });
  });

  it('returns the same subscription for the same channel; each handler is added', () => {
    const h = connectedClient();
    const a: number[] = [];
    const b: number[] = [];
    const s1 = h.client.subscribe('news', (m) => a.push(m.seq));
    const s2 = h.client.subscribe('news', (m) => b.push(m.seq));
    expect(s1).toBe(s2);
    expect(h.socket().framesOf('subscribe')).toHaveLength(1);
    h.socket().receive({ type: 'subscribed', channel: 'news', ...result(0), id: 1 });
    h.socket().receive(msg('news', 1));
    expect([a, b]).toEqual([[1], [1]]);
  });

  it('since/epoch options go in the subscribe frame', () => {
    const h = connectedClient();
    h.client.subscribe('news', undefined, { since: 40, epoch: 'e9' });
    expect(h.socket().last()).toEqual({ type: 'subscribe', channel: 'news', since: 40, epoch: 'e9', id: 1 });
  });

  it.each(['', 'has space', 'x'.repeat(201), 'client:c1'])('rejects %j with HERALD_ERR_CLIENT_INVALID_CHANNEL', (channel) => {
    const h = setup();
    expect(() => h.client.subscribe(channel)).toThrowError(HeraldError);
    try {
      h.client.subscribe(channel);
    } catch (e) {
      expect((e as HeraldError).code).toBe(ClientErrorCode.InvalidChannel);
    }
  });

  it('rejects an invalid since', () => {
    const h = setup();
    expect(() => h.client.subscribe('news', undefined, { since: -1 })).toThrowError(expect.objectContaining({ code: ClientErrorCode.InvalidOption }));
  });

  it('subscribed after the connect frame left, before connected: sent once connected', () => {
    const h = setup();
    h.client.connect();
    h.socket().open();
    h.client.subscribe('late');
    expect(h.socket().framesOf('subscribe')).toEqual([]);
    h.socket().receive(connectedFrame());
    expect(h.socket().framesOf('subscribe')).toEqual([{ type: 'subscribe', channel: 'late', id: 1 }]);
  });

  it('a state listener subscribing on connected does not subscribe twice', () => {
    const h = setup();
    h.client.on('state', (s) => {
      if (s.to === 'connected') h.client.subscribe('from-listener');
    });
    h.client.connect();
    handshake(h.socket());
    expect(h.socket().framesOf('subscribe')).toHaveLength(1);
  });
});

describe('unsubscribe', () => {
  it('sends unsubscribe, stops delivery, and ignores the answer', () => {
    const h = connectedClient();
    const seen: number[] = [];
    const sub = h.client.subscribe('news', (m) => seen.push(m.seq));
    h.socket().receive({ type: 'subscribed', channel: 'news', ...result(0), id: 1 });
    const ended: unknown[] = [];
    sub.on('unsubscribed', (e) => ended.push(e));
    sub.unsubscribe();
    expect(sub.state).toBe('unsubscribed');
    expect(h.socket().last()).toEqual({ type: 'unsubscribe', channel: 'news', id: 2 });
    h.socket().receive(msg('news', 1)); // in flight
    h.socket().receive({ type: 'unsubscribed', channel: 'news', id: 2 });
    expect(seen).toEqual([]);
    expect(ended).toEqual([]); // our own unsubscribe is not news
    expect(h.client.getSubscription('news')).toBeUndefined();
  });

  it('unsubscribe then subscribe again: the stale answers do not touch the new subscription', () => {
    const h = connectedClient();
    const old = h.client.subscribe('news'); // id 1
    old.unsubscribe(); // id 2
    const fresh = h.client.subscribe('news'); // id 3
    expect(fresh).not.toBe(old);
    h.socket().receive({ type: 'subscribed', channel: 'news', ...result(5), id: 1 });
    expect(fresh.state).toBe('subscribing');
    h.socket().receive({ type: 'unsubscribed', channel: 'news', id: 2 });
    expect(fresh.state).toBe('subscribing');
    h.socket().receive({ type: 'subscribed', channel: 'news', ...result(5), id: 3 });
    expect(fresh.state).toBe('subscribed');
  });

  it('the answer is recognised even when the server does not echo the id', () => {
    const h = connectedClient();
    h.client.subscribe('news').unsubscribe();
    const fresh = h.client.subscribe('news');
    h.socket().receive({ type: 'unsubscribed', channel: 'news' });
    expect(fresh.state).toBe('subscribing');
  });

  it('unsubscribed while the connect frame was in flight: unsubscribed once connected', () => {
    const h = setup();
    const sub = h.client.subscribe('news');
    h.client.connect();
    h.socket().open();
    sub.unsubscribe();
    h.socket().receive(connectedFrame({ news: result(1) }));
    expect(h.socket().last()).toMatchObject({ type: 'unsubscribe', channel: 'news' });
    h.socket().receive(msg('news', 2));
    expect(h.messages).toEqual([]);
  });

  it('while disconnected: dropped locally and left out of the next connect frame', () => {
    const h = setup();
    h.client.subscribe('a');
    h.client.subscribe('b').unsubscribe();
    h.client.connect();
    h.socket().open();
    expect(h.socket().frames()[0]).toMatchObject({ subs: { a: {} } });
    expect(Object.keys(h.socket().frames()[0]?.['subs'] as object)).toEqual(['a']);
  });

  it('a server-initiated unsubscribed ends the subscription with its reason', () => {
    const h = connectedClient();
    const sub = h.client.subscribe('news');
    const ended: unknown[] = [];
    sub.on('unsubscribed', (e) => ended.push(e));
    h.socket().receive({ type: 'unsubscribed', channel: 'news', reason: 'permission revoked' });
    expect(ended).toEqual([{ reason: 'permission revoked' }]);
    expect(sub.state).toBe('unsubscribed');
  });
});

describe('subscribe errors', () => {
  it('forbidden (answer by id): subscription error event, client error event, subscription removed', () => {
    const h = connectedClient();
    const sub = h.client.subscribe('private:x');
    const subErrors: HeraldError[] = [];
    sub.on('error', (e) => subErrors.push(e));
    h.socket().receive({ type: 'error', code: 'forbidden', message: 'no', id: 1 });
    expect(subErrors).toHaveLength(1);
    expect(subErrors[0]).toMatchObject({ code: ClientErrorCode.ServerError, serverCode: 'forbidden', channel: 'private:x' });
    expect(h.errors).toHaveLength(1);
    expect(sub.state).toBe('unsubscribed');
    h.socket().serverClose(1006);
    h.clock.advance(500);
    h.socket().open();
    expect(h.socket().frames()[0]).toMatchObject({ subs: {} }); // not retried on reconnect
  });

  it('an error for a connect-time subscription names its channel', () => {
    const h = setup();
    const sub = h.client.subscribe('private:x');
    h.client.connect();
    h.socket().open();
    h.socket().receiveBatch([connectedFrame(), { type: 'error', code: 'forbidden', message: 'no', channel: 'private:x' }]);
    expect(sub.state).toBe('unsubscribed');
    expect(h.errors[0]?.channel).toBe('private:x');
  });

  it('engine_unavailable is transient: the subscribe is retried with backoff', () => {
    const h = connectedClient();
    const sub = h.client.subscribe('news');
    h.socket().receive({ type: 'error', code: 'engine_unavailable', message: 'retry later', channel: 'news', id: 1 });
    expect(sub.state).toBe('subscribing');
    h.clock.advance(499);
    expect(h.socket().framesOf('subscribe')).toHaveLength(1);
    h.clock.advance(1);
    expect(h.socket().framesOf('subscribe')).toHaveLength(2);
    h.socket().receive({ type: 'subscribed', channel: 'news', ...result(0), id: 2 });
    expect(sub.state).toBe('subscribed');
  });

  it('a subscribe unanswered within connectTimeout is reported and sent again with backoff', () => {
    const h = connectedClient();
    const sub = h.client.subscribe('news');
    const subErrors: HeraldError[] = [];
    sub.on('error', (e) => subErrors.push(e));
    h.clock.advance(9_999);
    expect(subErrors).toEqual([]);
    h.clock.advance(1);
    expect(subErrors).toHaveLength(1);
    expect(subErrors[0]).toMatchObject({ code: ClientErrorCode.SubscribeTimeout, channel: 'news', message: 'no answer to subscribe in 10000 ms' });
    expect(h.errors.map((e) => e.code)).toEqual([ClientErrorCode.SubscribeTimeout]);
    expect(sub.state).toBe('subscribing');
    h.clock.advance(500);
    expect(
      h
        .socket()
        .framesOf('subscribe')
        .map((f) => f['id']),
    ).toEqual([1, 2]);
    // The answer to the first request comes now: stale, the second one decides.
    h.socket().receive({ type: 'subscribed', channel: 'news', ...result(3), id: 1 });
    expect(sub.state).toBe('subscribing');
    h.socket().receive({ type: 'subscribed', channel: 'news', ...result(3), id: 2 });
    expect(sub.state).toBe('subscribed');
    h.clock.advance(20_000); // within one ping interval: the socket stays
    expect(subErrors).toHaveLength(1);
    expect(h.socket().framesOf('subscribe')).toHaveLength(2);
  });

  it('a late answer before the retry is sent still subscribes, and the retry is called off', () => {
    const h = connectedClient();
    const sub = h.client.subscribe('news');
    h.clock.advance(10_000);
    expect(h.errors.map((e) => e.code)).toEqual([ClientErrorCode.SubscribeTimeout]);
    h.socket().receive({ type: 'subscribed', channel: 'news', ...result(0), id: 1 });
    expect(sub.state).toBe('subscribed');
    h.clock.advance(20_000); // within one ping interval: the socket stays
    expect(h.socket().framesOf('subscribe')).toHaveLength(1);
    expect(h.errors).toHaveLength(1);
  });

  it('answered, unsubscribed or disconnected subscribes never time out', () => {
    const h = connectedClient();
    h.client.subscribe('a');
    h.socket().receive({ type: 'subscribed', channel: 'a', ...result(0), id: 1 });
    h.client.subscribe('b').unsubscribe();
    h.client.subscribe('c');
    h.client.subscribe('d');
    h.socket().receive({ type: 'error', code: 'forbidden', message: 'no', channel: 'd', id: 4 });
    h.socket().serverClose(1006);
    h.clock.advance(500);
    h.socket().open();
    h.socket().receive(connectedFrame({ c: result(0) }));
    h.clock.advance(20_000); // within one ping interval: the socket stays
    expect(h.errors.map((e) => e.serverCode ?? e.code)).toEqual(['forbidden']);
  });

  it('a pending subscribe retry dies with its connection', () => {
    const h = connectedClient();
    h.client.subscribe('news');
    h.socket().receive({ type: 'error', code: 'engine_unavailable', message: 'retry later', channel: 'news', id: 1 });
    h.socket().serverClose(1006);
    h.clock.advance(500); // reconnect (the retry timer was due now too)
    h.socket().open();
    expect(h.socket().frames()[0]).toMatchObject({ subs: { news: {} } });
    h.socket().receive(connectedFrame({ news: result(0) }));
    h.clock.advance(60_000);
    expect(h.socket().framesOf('subscribe')).toEqual([]);
  });
});
