/**
 * One connection as the core sees it, through its ports: a fake socket below, a recording ConnectionHost and
 * a stub protocol handler beside it (or the native protocol, for the close codes its clients get), a manual
 * clock for the rate limit and the heartbeat sweep. No sleeps.
 */
import { describe, expect, it } from 'vitest';
import { sweep } from '../src/delivery/heartbeat.js';
import { onCleanup, token } from './helpers.js';
import { bareConnection, coreHarness } from './support/core.js';

const frame = (s: string): Buffer => Buffer.from(s);
const text = (b: Buffer | undefined): string | undefined => b?.toString();

describe('connection: the frame rate limit', () => {
  it('passes frames within the burst and the refill, then closes with the protocol close code and counts a rate_limited drop', () => {
    const { conn, socket, handler, stats, host, clock } = bareConnection({ limits: { clientRate: 5, clientBurst: 5 }, codes: { rate_limited: 4777 } });
    for (let i = 0; i < 5; i++) conn.message(frame(`f${i}`), false);
    clock.advance(200); // one token back at 5 per second
    conn.message(frame('f5'), false);
    expect(handler.received).toEqual(['f0', 'f1', 'f2', 'f3', 'f4', 'f5']);
    expect(socket.closedWith).toBeUndefined();
    conn.message(frame('f6'), false);
    expect(handler.asked).toEqual(['rate_limited']);
    expect(socket.closedWith?.code).toBe(4777);
    expect(stats.dropped.get('rate_limited')).toBe(1);
    expect(stats.closedByCode.get(4777)).toBe(1);
    expect(host.removed).toBe(1);
    conn.message(frame('f7'), false);
    expect(handler.received).toHaveLength(6);
    expect(stats.dropped.get('rate_limited')).toBe(1);
  });

  it('closes a native connection over the rate limit with 4029', async () => {
    const core = await coreHarness({ limits: { clientRate: 5, clientBurst: 5 } });
    onCleanup(core.close);
    const { conn, socket } = core.open('c');
    for (let i = 0; i < 6; i++) core.send(conn, { type: 'ping', id: i });
    expect(socket.closedWith?.code).toBe(4029);
    expect(core.stats.dropped.get('rate_limited')).toBe(1);
    // The five pongs queued before the close went out first.
    expect(socket.frames().map((f) => f.id)).toEqual([0, 1, 2, 3, 4]);
  });
});

describe('connection: queue, flush and close', () => {
  it('flushes what was queued in one write and marks itself dirty once per flush', () => {
    const { conn, socket, host } = bareConnection();
    const frames = [frame('a'), frame('b'), frame('c')];
    for (const f of frames) conn.enqueue(f);
    expect(host.dirty).toBe(1);
    expect(socket.writes).toEqual([]);
    conn.flush();
    expect(socket.writes).toHaveLength(1);
    expect(socket.writes[0]).toHaveLength(3);
    socket.writes[0]?.forEach((b, i) => expect(b).toBe(frames[i]));
    conn.flush();
    expect(socket.writes).toHaveLength(1);
    conn.enqueue(frame('d'));
    expect(host.dirty).toBe(2);
  });

  it('joins the frames of one flush with \\n into one frame when joinFrames is set (one frame alone as it is)', () => {
    const { conn, socket } = bareConnection();
    conn.joinFrames = true;
    for (const s of ['{"n":1}', '{"n":2}', '{"n":3}']) conn.enqueue(frame(s));
    conn.flush();
    expect(socket.writes).toHaveLength(1);
    expect(socket.writes[0]).toHaveLength(1);
    expect(text(socket.writes[0]?.[0])).toBe('{"n":1}\n{"n":2}\n{"n":3}');
    const alone = frame('{"n":4}');
    conn.enqueue(alone);
    conn.flush();
    expect(socket.writes[1]).toHaveLength(1);
    expect(socket.writes[1]?.[0]).toBe(alone);
  });

  it('closes a slow consumer with 4008 after the write that crossed the limit, and counts the drop', () => {
    const { conn, socket, stats, handler } = bareConnection({ limits: { sendBufferLimit: 1024 }, codes: { slow_consumer: 4008 } });
    conn.opened();
    conn.enqueue(frame('a'));
    socket.bufferedAmount = 1024;
    conn.flush();
    expect(socket.closedWith).toBeUndefined();
    socket.bufferedAmount = 10 * 1024 * 1024;
    conn.enqueue(frame('b'));
    conn.flush();
    expect(socket.events).toEqual(['send', 'send', 'close:4008']);
    expect(handler.asked).toEqual(['slow_consumer']);
    expect(stats.dropped.get('slow_consumer')).toBe(1);
    expect(conn.state).toBe('closed');
  });

  it('does not flush a slow consumer before closing it, but flushes a queued error frame before any other close', () => {
    const slow = bareConnection({ codes: { slow_consumer: 4008 } });
    slow.conn.enqueue(frame('{"type":"t"}'));
    slow.conn.closeFor('slow_consumer', 'send buffer limit exceeded');
    expect(slow.socket.events).toEqual(['close:4008']);

    const erring = bareConnection({ codes: { protocol_violation: 4500 } });
    erring.conn.sendJson({ type: 'error', code: 'invalid_json' });
    erring.conn.closeFor('protocol_violation', 'too many invalid frames');
    expect(erring.socket.events).toEqual(['send', 'close:4500']);
    expect(erring.socket.frames()).toEqual([{ type: 'error', code: 'invalid_json' }]);

    const direct = bareConnection();
    direct.conn.sendJson({ type: 'error', code: 'not_connected' });
    direct.conn.close(4400, 'first frame must be connect');
    expect(direct.socket.events).toEqual(['send', 'close:4400']);
  });

  it('queues and writes nothing after a close, from either side, and closes once', () => {
    for (const side of ['server', 'peer'] as const) {
      const { conn, socket, host, handler, stats } = bareConnection();
      conn.enqueue(frame('before'));
      if (side === 'server') conn.close(4000, 'bye');
      else conn.closed(1006);
      const written = socket.writes.length;
      const dirty = host.dirty;
      conn.enqueue(frame('after'));
      conn.sendJson({ type: 'after' });
      conn.flush();
      conn.message(frame('late'), false);
      conn.close(4001, 'again');
      conn.closed(1000);
      conn.closeFor('shutdown', 'again');
      expect(socket.writes).toHaveLength(written);
      expect(socket.writes.flat().map(text)).not.toContain('after');
      expect(host.dirty).toBe(dirty);
      expect(handler.received).toEqual([]);
      expect(socket.events.filter((e) => e.startsWith('close'))).toEqual(side === 'server' ? ['close:4000'] : []);
      expect([host.removed, handler.closedCalls, stats.connectionsClosed]).toEqual([1, 1, 1]);
    }
  });
});

describe('connection: the heartbeat sweep', () => {
  const liveness = { pingInterval: 10_000, idleTimeout: 25_000 };
  const start = async () => {
    const core = await coreHarness({ native: { liveness }, limits: { connectTimeout: 10_000 } });
    onCleanup(core.close);
    return { core, run: () => sweep(core.hub.connections.values(), core.clock.now()) };
  };

  it('closes a connection not established within the connect timeout with 4000', async () => {
    const { core, run } = await start();
    const { socket } = core.open('late');
    const established = await core.connect('ok');
    core.clock.advance(9_999);
    run();
    expect(socket.closedWith).toBeUndefined();
    core.clock.advance(1);
    run();
    expect(socket.closedWith?.code).toBe(4000);
    expect(established.socket.closedWith).toBeUndefined();
    expect(core.hub.connections.has('late')).toBe(false);
  });

  it('pings a quiet connection once per ping interval and closes a silent one with 4002', async () => {
    const { core, run } = await start();
    const quiet = await core.connect('quiet');
    const answering = await core.connect('answering');
    const step = (ms: number) => {
      core.clock.advance(ms);
      run();
    };
    step(9_999);
    expect(quiet.socket.pings).toBe(0);
    step(1); // 10 s quiet
    expect([quiet.socket.pings, answering.socket.pings]).toEqual([1, 1]);
    answering.conn.pong();
    step(5_000);
    step(4_999);
    expect(quiet.socket.pings).toBe(1);
    step(1); // 20 s quiet, a ping interval after the first ping
    expect(quiet.socket.pings).toBe(2);
    step(5_000); // 25 s: not yet more than the idle timeout
    expect(quiet.socket.closedWith).toBeUndefined();
    step(1);
    expect(quiet.socket.closedWith?.code).toBe(4002);
    expect(quiet.socket.pings).toBe(2);
    // The one that answered at 10 s was pinged again at 20 s and is still open.
    expect(answering.socket.pings).toBe(2);
    expect(answering.socket.closedWith).toBeUndefined();
  });

  it('closes a connection whose identity expired with 4401', async () => {
    const { core, run } = await start();
    const exp = Math.floor(core.clock.now() / 1000) + 60;
    const { conn, socket, connected } = await core.connect('u', { token: await token({ sub: '42' }, { expiresAt: exp }) });
    expect(connected.user).toBe('42');
    for (let t = 0; t < 59; t++) {
      core.clock.advance(1000);
      conn.pong();
      run();
    }
    expect(socket.closedWith).toBeUndefined();
    core.clock.advance(1000);
    run();
    expect(socket.closedWith?.code).toBe(4401);
  });
});
