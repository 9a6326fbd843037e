/**
 * Inbox messages in the SDK, against a fake socket and a fake clock: each reaches the app once however often
 * the server sends it, is acknowledged after the handlers returned (auto) or on `message.ack()` (manual),
 * `ack()` resolves when the server confirms, and an acknowledgement lost with a connection is sent again when
 * the server redelivers the message at the next connect.
 */
import { describe, expect, it } from 'vitest';
import { InboxAcks } from '../src/inbox.js';
import type { Message } from '../src/types.js';
import { flush, handshake, result, setup } from './helpers.js';

const inboxMsg = (id: string, n: number) => ({ type: 'notice', channel: 'user:42', payload: { n }, seq: 0, inbox: id, time: 1000 });

describe('inbox messages', () => {
  it('hands each to the app once and acknowledges it after the handlers returned (auto)', () => {
    const { client, socket, messages } = setup();
    const seenInHandler: string[] = [];
    client.on('message', () => seenInHandler.push(JSON.stringify(socket().framesOf('ack'))));
    client.connect();
    handshake(socket(), { 'user:42': result(0) });
    socket().receiveBatch([inboxMsg('m1', 1), inboxMsg('m2', 2), inboxMsg('m1', 1)]);
    expect(messages.map((m) => [m.inbox, m.payload])).toEqual([
      ['m1', { n: 1 }],
      ['m2', { n: 2 }],
    ]);
    // Not acknowledged before the handler ran; acknowledged right after (the repeat of m1 is acknowledged again).
    expect(seenInHandler).toEqual(['[]', '[{"type":"ack","inbox":["m1"]}]']);
    expect(socket().framesOf('ack')).toEqual([
      { type: 'ack', inbox: ['m1'] },
      { type: 'ack', inbox: ['m2'] },
      { type: 'ack', inbox: ['m1'] },
    ]);
    expect(client.getSubscription('user:42')?.position).toEqual({ seq: 0, epoch: 'e1' });
  });

  it('acknowledges on message.ack() only with inboxAck manual; ack() resolves when the server confirms', async () => {
    const { client, socket, messages } = setup({ inboxAck: 'manual' });
    const acked: string[][] = [];
    client.on('acked', (a) => acked.push(a.inbox));
    client.connect();
    handshake(socket());
    socket().receive(inboxMsg('m1', 1));
    expect(socket().framesOf('ack')).toEqual([]);
    const m = messages[0] as Message;
    let done = false;
    void m.ack?.().then(() => (done = true));
    expect(m.ack?.()).toBe(m.ack?.());
    expect(socket().framesOf('ack')).toEqual([{ type: 'ack', inbox: ['m1'] }]);
    await flush();
    expect(done).toBe(false);
    socket().receive({ type: 'acked', inbox: ['m1'] });
    await flush();
    expect(done).toBe(true);
    expect(acked).toEqual([['m1']]);
  });

  it('sends an acknowledgement lost with the connection again when the message comes back, without handing it over twice', () => {
    const { client, socket, clock, messages } = setup();
    client.connect();
    handshake(socket());
    socket().receive(inboxMsg('m9', 9));
    const first = socket();
    expect(first.framesOf('ack')).toEqual([{ type: 'ack', inbox: ['m9'] }]);
    // The connection drops before the server had the ack: the message is still in the inbox, and comes again.
    first.serverClose(1012);
    clock.advance(60_000);
    expect(socket()).not.toBe(first);
    handshake(socket());
    socket().receive(inboxMsg('m9', 9));
    expect(messages).toHaveLength(1);
    expect(socket().framesOf('ack')).toEqual([{ type: 'ack', inbox: ['m9'] }]);
  });

  it('does not acknowledge a redelivered message the app has not acknowledged yet (manual)', () => {
    const sent: string[][] = [];
    const acks = new InboxAcks((ids) => sent.push(ids), true);
    const delivered: string[] = [];
    const m = (): Message & { inbox: string } => ({ type: 't', channel: 'user:1', payload: {}, seq: 0, inbox: 'x' });
    acks.receive(m(), (x) => delivered.push(x.inbox ?? ''));
    acks.receive(m(), (x) => delivered.push(x.inbox ?? ''));
    expect([delivered, sent]).toEqual([['x'], []]);
  });
});
