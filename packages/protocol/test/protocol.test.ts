import { describe, expect, it } from 'vitest';
import {
  channelKind,
  CloseCode,
  isReservedType,
  isValidChannel,
  limitCloseReason,
  parseClientFrame,
  shouldReconnect,
  validateServerFrame,
} from '@herald/protocol';

describe('channel names', () => {
  it('accepts [A-Za-z0-9_-:.@=]{1,200} and nothing else', () => {
    for (const ok of ['news', 'user:42', 'private:team-1', 'a.b_c-d:e@f=g', 'x'.repeat(200)]) expect(isValidChannel(ok)).toBe(true);
    for (const bad of ['', 'x'.repeat(201), 'with space', 'emoji😀', 'slash/x', 'tab\t', 'a,b', 42, null, undefined]) expect(isValidChannel(bad)).toBe(false);
  });

  it('classifies user, private, client and public channels', () => {
    expect(channelKind('user:1')).toBe('user');
    expect(channelKind('private:x')).toBe('private');
    expect(channelKind('client:abc')).toBe('client');
    expect(channelKind('news')).toBe('public');
    expect(channelKind('users')).toBe('public');
  });

  it('reserves the protocol frame types', () => {
    for (const t of ['connect', 'connected', 'subscribe', 'subscribed', 'unsubscribe', 'unsubscribed', 'ping', 'pong', 'error', 'publish', 'ack']) {
      expect(isReservedType(t)).toBe(true);
    }
    expect(isReservedType('chat.message')).toBe(false);
  });
});

describe('close codes', () => {
  it('1000 and 4500-4999 are terminal, everything else reconnects', () => {
    for (const c of [1000, 4500, 4501, 4503, 4509, 4999]) expect(shouldReconnect(c)).toBe(false);
    for (const c of [1001, 1006, 1009, 1011, 1012, 4000, 4002, 4008, 4029, 4401, 4499]) expect(shouldReconnect(c)).toBe(true);
    expect(CloseCode.TokenExpired).toBe(4401);
  });

  it('caps close reasons at 123 bytes without splitting a character', () => {
    expect(limitCloseReason('short')).toBe('short');
    const long = '€'.repeat(100); // 3 bytes each
    const cut = limitCloseReason(long);
    expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(123);
    expect(cut).toBe('€'.repeat(41));
  });
});

describe('parseClientFrame', () => {
  it('parses every client frame', () => {
    expect(parseClientFrame('{"type":"connect","token":"t","subs":{"a":{"since":3,"epoch":"e"}},"batch":true}')).toEqual({
      ok: true,
      frame: { type: 'connect', token: 't', batch: true, subs: { a: { since: 3, epoch: 'e' } } },
    });
    expect(parseClientFrame('{"type":"subscribe","channel":"news","since":0,"id":7}')).toEqual({
      ok: true,
      frame: { type: 'subscribe', channel: 'news', since: 0, id: 7 },
    });
    expect(parseClientFrame('{"type":"unsubscribe","channel":"news"}')).toEqual({ ok: true, frame: { type: 'unsubscribe', channel: 'news' } });
    expect(parseClientFrame('{"type":"ping"}')).toEqual({ ok: true, frame: { type: 'ping' } });
    expect(parseClientFrame('{"type":"publish","channel":"chat:1","event":"said","payload":{"t":"👋"},"id":3,"key":"k-1","echo":false}')).toEqual({
      ok: true,
      frame: { type: 'publish', channel: 'chat:1', event: 'said', payload: { t: '👋' }, id: 3, key: 'k-1', echo: false },
    });
    expect(parseClientFrame('{"type":"publish","channel":"c","event":"e","payload":[]}')).toEqual({
      ok: true,
      frame: { type: 'publish', channel: 'c', event: 'e', payload: [] },
    });
  });

  it.each([
    ['not json', 'invalid_json'],
    ['', 'invalid_json'],
    ['[]', 'invalid_frame'],
    ['null', 'invalid_frame'],
    ['"connect"', 'invalid_frame'],
    ['{}', 'invalid_frame'],
    ['{"type":5}', 'invalid_frame'],
    ['{"type":"nope"}', 'unknown_type'],
    ['{"type":"subscribe"}', 'invalid_frame'],
    ['{"type":"subscribe","channel":7}', 'invalid_frame'],
    ['{"type":"subscribe","channel":"bad name"}', 'invalid_channel'],
    ['{"type":"subscribe","channel":"a","since":-1}', 'invalid_frame'],
    ['{"type":"subscribe","channel":"a","since":1.5}', 'invalid_frame'],
    ['{"type":"subscribe","channel":"a","since":"3"}', 'invalid_frame'],
    ['{"type":"subscribe","channel":"a","since":1e300}', 'invalid_frame'],
    ['{"type":"subscribe","channel":"a","epoch":5}', 'invalid_frame'],
    ['{"type":"subscribe","channel":"a","id":"x"}', 'invalid_frame'],
    ['{"type":"connect","token":5}', 'invalid_frame'],
    ['{"type":"connect","batch":"yes"}', 'invalid_frame'],
    ['{"type":"connect","subs":[]}', 'invalid_frame'],
    ['{"type":"connect","subs":{"a":5}}', 'invalid_frame'],
    ['{"type":"publish","event":"e","payload":{}}', 'invalid_frame'],
    ['{"type":"publish","channel":"bad name","event":"e","payload":{}}', 'invalid_channel'],
    ['{"type":"publish","channel":"c","payload":{}}', 'invalid_frame'],
    ['{"type":"publish","channel":"c","event":"a b","payload":{}}', 'invalid_frame'],
    [`{"type":"publish","channel":"c","event":"${'e'.repeat(101)}","payload":{}}`, 'invalid_frame'],
    ['{"type":"publish","channel":"c","event":"subscribed","payload":{}}', 'reserved_type'],
    ['{"type":"publish","channel":"c","event":"published","payload":{}}', 'reserved_type'],
    ['{"type":"publish","channel":"c","event":"e"}', 'invalid_frame'],
    ['{"type":"publish","channel":"c","event":"e","payload":"text"}', 'invalid_frame'],
    ['{"type":"publish","channel":"c","event":"e","payload":null}', 'invalid_frame'],
    ['{"type":"publish","channel":"c","event":"e","payload":{},"key":""}', 'invalid_frame'],
    [`{"type":"publish","channel":"c","event":"e","payload":{},"key":"${'k'.repeat(65)}"}`, 'invalid_frame'],
    ['{"type":"publish","channel":"c","event":"e","payload":{},"key":"a/b"}', 'invalid_frame'],
    ['{"type":"publish","channel":"c","event":"e","payload":{},"echo":0}', 'invalid_frame'],
  ])('%s -> %s', (text, code) => {
    const r = parseClientFrame(text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.code).toBe(code);
  });

  it('keeps the request id on failures so the error can be correlated', () => {
    const r = parseClientFrame('{"type":"subscribe","channel":"bad name","id":9}');
    expect(r).toMatchObject({ ok: false, code: 'invalid_channel', id: 9 });
  });
});

describe('validateServerFrame', () => {
  it('accepts control frames and full message envelopes', () => {
    expect(validateServerFrame({ type: 'pong' })).toMatchObject({ kind: 'control' });
    expect(validateServerFrame({ type: 'published', channel: 'c', seq: 4, epoch: 'e', id: 2 })).toMatchObject({ kind: 'control' });
    expect(validateServerFrame({ type: 'hi', channel: 'news', payload: { a: 1 }, seq: 1 })).toMatchObject({ kind: 'message' });
    expect(validateServerFrame({ type: 'hi', channel: 'news', payload: [1], seq: 0 })).toMatchObject({ kind: 'message' });
  });

  it('describes malformed envelopes instead of throwing', () => {
    for (const bad of [
      null,
      5,
      [],
      {},
      { type: 1 },
      { type: 'hi', channel: 'news', payload: 'x', seq: 1 },
      { type: 'hi', channel: 'bad name', payload: {}, seq: 1 },
      { type: 'hi', channel: 'n', payload: {}, seq: -1 },
      { type: 'hi', channel: 'n', payload: {} },
    ]) {
      expect(typeof validateServerFrame(bad)).toBe('string');
    }
  });
});
