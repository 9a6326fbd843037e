import { describe, expect, it } from 'vitest';
import { ClientErrorCode, HeraldClient } from '../src/index.js';
import { RecordingLogger, fakeWebSocket, handshake, msg, result, setup } from './helpers.js';

function connected(subs: Record<string, ReturnType<typeof result>> = { news: result(0) }) {
  const h = setup();
  h.client.subscribe('news');
  h.client.connect();
  handshake(h.socket(), subs);
  return h;
}

describe('defensive parsing', () => {
  it.each([
    ['Blob', () => new Blob(['{"type":"pong"}'])],
    ['ArrayBuffer', () => new ArrayBuffer(8)],
    ['Uint8Array (ws Buffer)', () => new Uint8Array([123, 125])],
    ['undefined', () => undefined],
  ])('a %s frame becomes an error event, not an exception', (_name, make) => {
    const h = connected();
    const data = make();
    expect(() => h.socket().onmessage?.({ data })).not.toThrow();
    expect(h.errors.map((e) => e.code)).toEqual([ClientErrorCode.BinaryFrame]);
    expect(h.errors[0]?.data).toBe(data);
    // The connection keeps working.
    h.socket().receive(msg('news', 1));
    expect(h.messages.map((m) => m.seq)).toEqual([1]);
  });

  it('invalid JSON: error event with the raw data, also given to the logger', () => {
    const h = connected();
    expect(() => h.socket().receive('{"type":"upd')).not.toThrow();
    expect(h.errors.map((e) => e.code)).toEqual([ClientErrorCode.InvalidJson]);
    expect(h.errors[0]?.data).toBe('{"type":"upd');
    expect(h.errors[0]?.cause).toBeInstanceOf(SyntaxError);
    expect(h.logger.warnings.map((w) => w.data)).toEqual(['{"type":"upd']);
  });

  it.each([
    ['not an object', '[1,2]'],
    ['no type', '{"channel":"news","payload":{},"seq":1}'],
    ['payload not an object', '{"type":"u","channel":"news","payload":"x","seq":1}'],
    ['seq missing', '{"type":"u","channel":"news","payload":{}}'],
    ['negative seq', '{"type":"u","channel":"news","payload":{},"seq":-1}'],
    ['invalid channel', '{"type":"u","channel":"bad channel","payload":{},"seq":1}'],
    ['a client frame type', '{"type":"subscribe","channel":"news"}'],
    ['subscribed without epoch', '{"type":"subscribed","channel":"news","seq":1,"recovered":true}'],
    ['connected with bad subs', '{"type":"connected","client":"c","user":null,"ping":1,"subs":{"a":{"seq":"1"}}}'],
    ['error without code', '{"type":"error","message":"m"}'],
    ['presence members not a list', '{"type":"subscribed","channel":"presence:room","seq":0,"epoch":"e","recovered":false,"members":5,"count":1}'],
    ['a presence member that is null', '{"type":"subscribed","channel":"presence:room","seq":0,"epoch":"e","recovered":false,"members":[null],"count":1}'],
    [
      'connected with a null member',
      '{"type":"connected","client":"c","user":null,"ping":1,"subs":{"presence:a":{"seq":0,"epoch":"e","recovered":false,"members":[null],"count":1}}}',
    ],
    ['a join whose users hold null', '{"type":"join","channel":"presence:room","payload":{"users":[null],"count":1},"seq":0}'],
    ['a leave whose users are not a list', '{"type":"leave","channel":"presence:room","payload":{"users":"u1","count":0},"seq":0}'],
  ])('bad envelope (%s): error event, nothing delivered', (_name, raw) => {
    const h = connected();
    h.socket().receive(raw);
    expect(h.errors.map((e) => e.code)).toEqual([ClientErrorCode.InvalidFrame]);
    expect(h.errors[0]?.data).toBe(raw);
    expect(h.messages).toEqual([]);
    expect(h.client.state).toBe('connected');
  });

  it('a malformed presence change in a batch is reported and skipped; the messages after it are delivered', () => {
    const h = setup();
    h.client.subscribe('presence:room');
    h.client.connect();
    handshake(h.socket(), { 'presence:room': Object.assign(result(0), { members: [{ user: 'a', info: {} }], count: 1 }) });
    h.socket().receive(
      [
        '{"type":"join","channel":"presence:room","payload":{"users":[null],"count":2},"seq":0}',
        JSON.stringify(msg('presence:room', 1)),
        JSON.stringify(msg('presence:room', 2)),
      ].join('\n'),
    );
    expect(h.errors.map((e) => e.code)).toEqual([ClientErrorCode.InvalidFrame]);
    expect(h.messages.map((m) => m.seq)).toEqual([1, 2]);
    expect(h.client.getSubscription('presence:room')?.memberCount).toBe(1);
    expect(h.client.state).toBe('connected');
  });

  it('splits \\n-batched frames and handles them in order', () => {
    const h = connected();
    h.socket().receiveBatch([msg('news', 1), { type: 'pong' }, msg('news', 2), msg('news', 3)]);
    expect(h.messages.map((m) => m.seq)).toEqual([1, 2, 3]);
  });

  it('a bad line in a batch is reported; the other lines are still delivered', () => {
    const h = connected();
    h.socket().receive(`${JSON.stringify(msg('news', 1))}\n{oops\n${JSON.stringify(msg('news', 2))}\n`);
    expect(h.messages.map((m) => m.seq)).toEqual([1, 2]);
    expect(h.errors.map((e) => e.code)).toEqual([ClientErrorCode.InvalidJson]);
  });

  it('the connected frame and its recovered messages may arrive in one batch', () => {
    const h = setup();
    const sub = h.client.subscribe('news', undefined, { since: 3, epoch: 'e1' });
    h.client.connect();
    h.socket().open();
    h.socket().receiveBatch([{ type: 'connected', client: 'c', user: null, ping: 25_000, subs: { news: result(5) } }, msg('news', 4), msg('news', 5)]);
    expect(h.messages.map((m) => m.seq)).toEqual([4, 5]);
    expect(sub.position).toEqual({ seq: 5, epoch: 'e1' });
  });

  it('an exception in an app handler is reported and breaks nothing', () => {
    const h = connected();
    const got: number[] = [];
    h.client.subscribe('news', (m) => {
      if (m.seq === 1) throw new Error('app bug');
      got.push(m.seq);
    });
    h.client.subscribe('news', (m) => got.push(m.seq * 10));
    h.socket().receiveBatch([msg('news', 1), msg('news', 2)]);
    expect(got).toEqual([10, 2, 20]);
    expect(h.errors.map((e) => e.code)).toEqual([ClientErrorCode.Handler]);
    expect((h.errors[0]?.cause as Error).message).toBe('app bug');
    expect(h.messages.map((m) => m.seq)).toEqual([1, 2]); // client-level listeners still saw both
  });

  it('an error listener that throws is logged, not fed back into itself', () => {
    const h = connected();
    h.client.on('error', () => {
      throw new Error('error handler bug');
    });
    expect(() => h.socket().receive('nope')).not.toThrow();
    expect(h.logger.warnings.some((w) => w.message.includes('error handler threw'))).toBe(true);
    expect(h.errors).toHaveLength(1);
  });

  it('a server error frame becomes an error event with the protocol code', () => {
    const h = connected();
    h.socket().receive({ type: 'error', code: 'invalid_frame', message: 'bad' });
    expect(h.errors).toHaveLength(1);
    expect(h.errors[0]).toMatchObject({ code: ClientErrorCode.ServerError, serverCode: 'invalid_frame', message: 'bad' });
    expect(h.client.state).toBe('connected');
  });

  it('a second connected frame is a protocol error, not a state change', () => {
    const h = connected();
    const n = h.states.length;
    h.socket().receive({ type: 'connected', client: 'c2', user: null, ping: 1, subs: {} });
    expect(h.errors.map((e) => e.code)).toEqual([ClientErrorCode.InvalidFrame]);
    expect(h.states).toHaveLength(n);
    expect(h.client.clientId).toBe('c1');
  });

  it('without an error listener, reported errors still reach the logger', () => {
    const { WebSocket, sockets } = fakeWebSocket();
    const logger = new RecordingLogger();
    const client = new HeraldClient({ url: 'ws://x', WebSocket, logger, environment: null });
    client.connect();
    handshake(sockets[0]!);
    sockets[0]!.receive({ type: 'error', code: 'forbidden', message: 'no' });
    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0]?.data).toMatchObject({ code: ClientErrorCode.ServerError, serverCode: 'forbidden' });
  });
});
