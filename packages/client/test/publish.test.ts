/**
 * `client.publish()` against a fake socket and a fake clock: the frame, the answer, waiting for a connection,
 * resending after a lost connection or an engine failure under the same key, errors and timeouts, and
 * `echo: false` (the tab's own message is not emitted, the channel's order and position are kept).
 */
import { describe, expect, it } from 'vitest';
import type { Payload } from '@herald/protocol';
import { ClientErrorCode, type HeraldError } from '../src/errors.js';
import { flush, handshake, msg, result, setup } from './helpers.js';

/** Records how a promise settled. */
function track<T>(p: Promise<T>): { value?: T; error?: HeraldError } {
  const t: { value?: T; error?: HeraldError } = {};
  p.then(
    (v) => (t.value = v),
    (e: HeraldError) => (t.error = e),
  );
  return t;
}

describe('client.publish', () => {
  it('sends a publish frame with an id and a key, and resolves with the seq of the answer', async () => {
    const { client, socket } = setup();
    client.connect();
    handshake(socket());
    const done = track(client.publish('chat:1', 'chat.message', { text: 'hi 👋' }));
    const [frame] = socket().framesOf('publish');
    expect(frame).toEqual({
      type: 'publish',
      channel: 'chat:1',
      event: 'chat.message',
      payload: { text: 'hi 👋' },
      key: expect.stringMatching(/^[a-z0-9]{16}$/),
      id: expect.any(Number),
    });
    socket().receive({ type: 'published', channel: 'chat:1', seq: 7, epoch: 'e1', id: frame?.['id'] });
    await flush();
    expect(done.value).toEqual({ channel: 'chat:1', seq: 7, epoch: 'e1', duplicate: false });
  });

  it('waits for the connection, and sends what a lost connection left unanswered again with the same key', async () => {
    const { client, socket, clock } = setup({ publishTimeout: 120_000 });
    const early = track(client.publish('chat:1', 'm', { n: 1 }));
    client.connect();
    handshake(socket());
    const first = socket().framesOf('publish')[0] as Record<string, unknown>;
    expect(first['payload']).toEqual({ n: 1 });
    socket().serverClose(1006);
    clock.advance(60_000);
    handshake(socket());
    const again = socket().framesOf('publish')[0] as Record<string, unknown>;
    expect(again).toEqual(first);
    socket().receive({ type: 'published', channel: 'chat:1', seq: 3, epoch: 'e1', id: again['id'], duplicate: true });
    await flush();
    expect(early.value).toEqual({ channel: 'chat:1', seq: 3, epoch: 'e1', duplicate: true });
  });

  it('keeps the publishes of one client in the order of the calls', () => {
    const { client, socket } = setup();
    for (let i = 0; i < 5; i++) void client.publish('c', 'm', { i });
    client.connect();
    handshake(socket());
    expect(
      socket()
        .framesOf('publish')
        .map((f) => f['payload']),
    ).toEqual([0, 1, 2, 3, 4].map((i) => ({ i })));
  });

  it('rejects with the server code (forbidden, rate_limited, publish_rejected) and reports nothing else', async () => {
    const { client, socket, errors } = setup();
    client.connect();
    handshake(socket());
    const done = track(client.publish('news', 'm', {}));
    const id = socket().framesOf('publish')[0]?.['id'];
    socket().receive({ type: 'error', code: 'publish_rejected', message: 'no links, please', channel: 'news', id });
    await flush();
    expect(done.error).toMatchObject({ code: ClientErrorCode.ServerError, serverCode: 'publish_rejected', message: 'no links, please', channel: 'news' });
    expect(errors).toEqual([]);
  });

  it('sends it again after engine_unavailable or engine_timeout, with the same key, until answered', async () => {
    const { client, socket, clock } = setup({ backoff: () => 500 });
    client.connect();
    handshake(socket());
    const done = track(client.publish('c', 'm', {}));
    const first = socket().framesOf('publish')[0] as Record<string, unknown>;
    socket().receive({ type: 'error', code: 'engine_timeout', message: 'x', channel: 'c', id: first['id'] });
    expect(socket().framesOf('publish')).toHaveLength(1);
    clock.advance(500);
    expect(socket().framesOf('publish')).toEqual([first, first]);
    socket().receive({ type: 'error', code: 'engine_unavailable', message: 'x', channel: 'c', id: first['id'] });
    clock.advance(500);
    socket().receive({ type: 'published', channel: 'c', seq: 1, epoch: 'e', id: first['id'] });
    await flush();
    expect(done.value).toMatchObject({ seq: 1 });
    expect(socket().framesOf('publish')).toHaveLength(3);
  });

  it('sends the publishes an engine failure left unanswered again in call order, with those called meanwhile', async () => {
    const { client, socket, clock } = setup({ backoff: (n) => [300, 700, 100, 900][n % 4] as number });
    client.connect();
    handshake(socket());
    const done = [1, 2, 3].map((n) => track(client.publish('c', 'm', { n })));
    const frames = socket().framesOf('publish');
    // Answered in order, each with its own attempt count: a timer each would send them again shuffled.
    socket().receive({ type: 'error', code: 'engine_unavailable', message: 'x', channel: 'c', id: frames[0]?.['id'] });
    socket().receive({ type: 'error', code: 'engine_timeout', message: 'x', channel: 'c', id: frames[1]?.['id'] });
    socket().receive({ type: 'error', code: 'engine_unavailable', message: 'x', channel: 'c', id: frames[2]?.['id'] });
    done.push(track(client.publish('c', 'm', { n: 4 })));
    expect(socket().framesOf('publish')).toHaveLength(3);
    clock.advance(300);
    const again = socket().framesOf('publish').slice(3);
    expect(again.map((f) => f['payload'])).toEqual([1, 2, 3, 4].map((n) => ({ n })));
    expect(again.slice(0, 3)).toEqual(frames);
    again.forEach((f, i) => socket().receive({ type: 'published', channel: 'c', seq: i + 1, epoch: 'e', id: f['id'] }));
    await flush();
    expect(done.map((d) => d.value?.seq)).toEqual([1, 2, 3, 4]);
  });

  it("sends a publish again when rate_limited answers the burst of a reconnect (it may be published), not one sent at the app's pace", async () => {
    const { client, socket, clock } = setup({ backoff: () => 500, publishTimeout: 60_000 });
    client.connect();
    handshake(socket());
    const resent = track(client.publish('c', 'm', { n: 1 }));
    const frame = socket().framesOf('publish')[0] as Record<string, unknown>;
    // The answer is lost with the connection; the next one sends it again with the rest, at once.
    socket().serverClose(1006);
    clock.advance(500);
    handshake(socket());
    expect(socket().framesOf('publish')).toEqual([frame]);
    socket().receive({ type: 'error', code: 'rate_limited', message: 'slow down', channel: 'c', id: frame['id'] });
    await flush();
    expect(resent.error).toBeUndefined();
    clock.advance(500);
    expect(socket().framesOf('publish')).toEqual([frame, frame]);
    socket().receive({ type: 'published', channel: 'c', seq: 9, epoch: 'e', id: frame['id'], duplicate: true });
    await flush();
    expect(resent.value).toMatchObject({ seq: 9, duplicate: true });
    // Sent at once on an open connection: over the limit means not published, and the app is told.
    const own = track(client.publish('c', 'm', { n: 2 }));
    const id = socket().framesOf('publish')[2]?.['id'];
    socket().receive({ type: 'error', code: 'rate_limited', message: 'slow down', channel: 'c', id });
    await flush();
    expect(own.error).toMatchObject({ code: ClientErrorCode.ServerError, serverCode: 'rate_limited' });
  });

  it('rejects after its timeout (saying whether it was sent), on close(), and at once when closed or invalid', async () => {
    const { client, socket, clock } = setup({ publishTimeout: 5000 });
    const unsent = track(client.publish('c', 'm', {}));
    clock.advance(5000);
    await flush();
    expect(unsent.error).toMatchObject({ code: ClientErrorCode.PublishTimeout, message: 'no publish answer in 5000 ms' });
    client.connect();
    handshake(socket());
    const sent = track(client.publish('c', 'm', {}, { timeout: 100 }));
    clock.advance(100);
    await flush();
    expect(sent.error?.message).toMatch(/sent: it may be published/);
    const pending = track(client.publish('c', 'm', {}));
    const closing = client.close();
    socket().serverClose(1000);
    await closing;
    await flush();
    expect(pending.error).toMatchObject({ code: ClientErrorCode.Closed });
    await expect(client.publish('c', 'm', {})).rejects.toMatchObject({ code: ClientErrorCode.Closed });
    await expect(client.publish('bad name', 'm', {})).rejects.toMatchObject({ code: ClientErrorCode.InvalidChannel });
    await expect(client.publish('c', 'subscribed', {})).rejects.toMatchObject({ code: ClientErrorCode.InvalidOption });
    await expect(client.publish('c', 'm', 'text' as unknown as Payload)).rejects.toMatchObject({ code: ClientErrorCode.InvalidOption });
  });

  it('tells publish answers from subscribe answers by id', async () => {
    const { client, socket } = setup();
    client.connect();
    handshake(socket());
    const sub = client.subscribe('private:x');
    const subErrors: unknown[] = [];
    sub.on('error', (e) => subErrors.push(e));
    const done = track(client.publish('private:x', 'm', {}));
    const [subscribe] = socket().framesOf('subscribe');
    const [publish] = socket().framesOf('publish');
    expect(subscribe?.['id']).not.toBe(publish?.['id']);
    socket().receive({ type: 'error', code: 'forbidden', message: 'no', channel: 'private:x', id: publish?.['id'] });
    await flush();
    expect(done.error).toMatchObject({ serverCode: 'forbidden' });
    expect(subErrors).toEqual([]);
    expect(sub.state).toBe('subscribing');
  });
});

describe('client.publish with echo: false', () => {
  it('does not emit its own message, whether it comes before or after the answer; keeps order and position', async () => {
    const { client, socket, messages } = setup();
    const room = client.subscribe('room');
    client.connect();
    handshake(socket(), { room: result(0) });
    // The message comes before the answer: held (with what follows) until the answer says which it is.
    void client.publish('room', 'said', { mine: 1 }, { echo: false });
    const a = socket().framesOf('publish')[0]?.['id'];
    socket().receive(msg('room', 1, { mine: 1 }));
    socket().receive(msg('room', 2, { other: 2 }));
    expect(messages).toEqual([]);
    socket().receive({ type: 'published', channel: 'room', seq: 1, epoch: 'e1', id: a });
    expect(messages.map((m) => m.seq)).toEqual([2]);
    // The answer comes first: the message is dropped when it arrives.
    void client.publish('room', 'said', { mine: 3 }, { echo: false });
    const b = socket().framesOf('publish')[1]?.['id'];
    socket().receive({ type: 'published', channel: 'room', seq: 3, epoch: 'e1', id: b });
    socket().receive(msg('room', 3, { mine: 3 }));
    socket().receive(msg('room', 4, { other: 4 }));
    expect(messages.map((m) => m.seq)).toEqual([2, 4]);
    // The position counts the skipped ones: no gap, no resubscribe.
    expect(room.position).toEqual({ seq: 4, epoch: 'e1' });
    expect(socket().framesOf('subscribe')).toEqual([]);
    // With echo (the default) its own message is emitted like any other.
    void client.publish('room', 'said', { mine: 5 });
    socket().receive(msg('room', 5, { mine: 5 }));
    expect(messages.map((m) => m.seq)).toEqual([2, 4, 5]);
  });

  it('releases held messages when the publish fails', async () => {
    const { client, socket, messages } = setup();
    client.subscribe('room');
    client.connect();
    handshake(socket(), { room: result(0) });
    void client.publish('room', 'said', {}, { echo: false }).catch(() => undefined);
    const id = socket().framesOf('publish')[0]?.['id'];
    socket().receive(msg('room', 1));
    expect(messages).toEqual([]);
    socket().receive({ type: 'error', code: 'rate_limited', message: 'slow down', channel: 'room', id });
    expect(messages.map((m) => m.seq)).toEqual([1]);
  });
});
