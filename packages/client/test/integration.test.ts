// The SDK in Node (with the ws package) against a real gateway, through a fault-injecting TCP proxy:
// connections cut while messages are published, and a memory-engine gateway restarted under the client.
// The SDK runs on real timers with short retry delays; every wait is on an event, never a fixed sleep.
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { api, onCleanup, proxyTo, publish, range, restartableGateway, sdkApp, Signal, startGateway, WAIT } from './support/harness.js';

describe('SDK in Node against the real gateway', () => {
  it('delivers 1000 messages exactly once and in order while the connection is cut twice (proxy drop, API disconnect 4000)', async () => {
    const { http, port } = await startGateway();
    const proxy = await proxyTo(port);
    const channel = 'ticks';
    const app = sdkApp(`ws://127.0.0.1:${proxy.port}/ws`, channel);
    await app.signal.until(() => app.client.state === 'connected', 'the first connection');

    const TOTAL = 1000;
    const WINDOW = 150; // publishers stay at most this far ahead of what the app has seen...
    let cutUntil = 0; // ...except during a cut, when they publish up to this index regardless
    let next = 1;
    let published = 0;
    const assigned: number[] = [];
    const publishers = new Signal();
    const wakeAll = (): void => {
      publishers.notify();
      app.signal.notify();
    };
    app.client.on('message', () => publishers.notify());
    let stopped = false; // a failed test stops the publishers instead of leaving them waiting
    onCleanup(() => {
      stopped = true;
      publishers.notify();
    });
    const worker = async (): Promise<void> => {
      for (;;) {
        await publishers.until(() => stopped || next > TOTAL || next <= cutUntil || next - app.seqs.length <= WINDOW, 'room to publish', 120_000);
        if (stopped || next > TOTAL) return;
        const i = next++;
        const r = await publish(http, { channel, type: 'tick', payload: { i } });
        assigned.push(r.results[channel].seq as number);
        published += 1;
        wakeAll();
      }
    };
    const workers = Promise.all([worker(), worker(), worker(), worker()]);
    workers.catch(() => undefined); // awaited below; this only keeps an early failure from going unhandled
    const progress = (): string => `published ${published}, delivered ${app.seqs.length}, state ${app.client.state}, proxy accepted ${proxy.accepted}`;

    // Cut 1: the proxy drops the connection while publishing goes on; new connections are refused until
    // at least 50 more messages were published, so the client must recover them from history.
    await app.signal.until(() => app.seqs.length >= 250, '250 messages', WAIT, progress);
    proxy.mode = 'reject';
    expect(proxy.dropAll()).toBe(1);
    cutUntil = Math.min(TOTAL, next + 49);
    publishers.notify();
    await app.signal.until(() => published >= cutUntil, '50 publishes during cut 1', WAIT, progress);
    proxy.mode = 'forward';
    await app.signal.until(() => app.connects >= 2 && app.client.state === 'connected', 'reconnect after cut 1', WAIT, progress);

    // Cut 2: the server API disconnects the client with a reconnectable code.
    await app.signal.until(() => app.seqs.length >= 600, '600 messages', WAIT, progress);
    proxy.mode = 'reject';
    const d = await api(http, 'POST', '/api/disconnect', { client: app.client.clientId, code: 4000, reason: 'test cut' });
    expect(d.status).toBe(200);
    expect(d.body).toEqual({ disconnected: 1 });
    cutUntil = Math.min(TOTAL, next + 49);
    publishers.notify();
    await app.signal.until(() => published >= cutUntil, '50 publishes during cut 2', WAIT, progress);
    proxy.mode = 'forward';

    await workers;
    await app.signal.until(() => app.seqs.length >= TOTAL, `${TOTAL} messages`, WAIT, progress);

    expect([...assigned].sort((a, b) => a - b)).toEqual(range(1, TOTAL));
    expect(app.seqs).toEqual(range(1, TOTAL));
    expect(app.client.getSubscription(channel)?.position?.seq).toBe(TOTAL);
    expect(app.connects).toBe(3);
    // The connections that were up ended with 1006 (proxy drop) and 4000 (API); refused retries in between.
    const closes = app.states.filter((s) => s.from === 'connected').map((s) => [s.to, s.code]);
    expect(closes).toEqual([
      ['disconnected', 1006],
      ['disconnected', 4000],
    ]);
    // Both reconnects resumed the stream from history; nothing was lost, so no reset.
    // Each time, at least the 50 messages published while the client was away came from history.
    const recoveries = app.events.filter((e) => e.startsWith('recovered')).map((e) => e.split(' ').map(Number));
    expect(recoveries).toHaveLength(2);
    for (const [, , since, , upTo] of recoveries) expect((upTo as number) - (since as number)).toBeGreaterThanOrEqual(50);
    expect(app.events.filter((e) => e.startsWith('reset'))).toEqual([]);
    expect(app.errors).toEqual([]);
    expect(proxy.accepted).toBe(3);
  }, 60_000);

  it('after a restart of a memory-engine gateway, reconnects and reports the lost history (new epoch, recovered:false)', async () => {
    const gw = await restartableGateway();
    const proxy = await proxyTo(gw.port);
    const channel = 'orders';
    const app = sdkApp(`ws://127.0.0.1:${proxy.port}/ws`, channel);
    await app.signal.until(() => app.client.state === 'connected', 'the first connection');

    for (let i = 1; i <= 5; i++) await publish(gw.http, { channel, type: 'order', payload: { i } });
    await app.signal.until(() => app.seqs.length >= 5, '5 messages');
    const epoch1 = app.client.getSubscription(channel)?.position?.epoch;
    expect(epoch1).toBeTypeOf('string');

    // Restart: the clients are closed with 1012 and the new instance starts with empty history.
    await gw.restart();
    await app.signal.until(() => app.connects >= 2 && app.client.state === 'connected', 'reconnect after the restart');
    await app.signal.until(() => app.events.some((e) => e.startsWith('reset')), 'the reset event');
    expect(app.states.find((s) => s.to === 'disconnected')?.code).toBe(1012);

    const sub = app.client.getSubscription(channel);
    const epoch2 = sub?.position?.epoch;
    expect(epoch2).toBeTypeOf('string');
    expect(epoch2).not.toBe(epoch1);

    // Live messages of the new epoch are delivered after the reset, from seq 1 again.
    for (let i = 1; i <= 3; i++) await publish(gw.http, { channel, type: 'order', payload: { i: 100 + i } });
    await app.signal.until(() => app.seqs.length >= 8, '3 more messages');
    expect(app.events.filter((e) => !e.startsWith('recovered'))).toEqual([
      ...range(1, 5).map((s) => `message ${s}`),
      `reset epoch_changed 5@${epoch1} -> 0@${epoch2}`,
      ...range(1, 3).map((s) => `message ${s}`),
    ]);
    expect(app.errors).toEqual([]);
  }, 60_000);

  it('after a restart, messages published to the new instance while the client was away are never handed over silently', async () => {
    const gw = await restartableGateway();
    const proxy = await proxyTo(gw.port);
    const channel = 'prices';
    const app = sdkApp(`ws://127.0.0.1:${proxy.port}/ws`, channel);
    await app.signal.until(() => app.client.state === 'connected', 'the first connection');
    for (let i = 1; i <= 4; i++) await publish(gw.http, { channel, type: 'price', payload: { i } });
    await app.signal.until(() => app.seqs.length >= 4, '4 messages');
    const epoch1 = app.client.getSubscription(channel)?.position?.epoch;

    // Keep the client away while the new instance takes 6 publishes (seq 1..6 of a new epoch, so seq 5
    // and 6 are above the client's position 4: only the epoch tells them apart from a continuation).
    proxy.mode = 'reject';
    await gw.restart();
    for (let i = 1; i <= 6; i++) await publish(gw.http, { channel, type: 'price', payload: { i: 200 + i } });
    await app.signal.until(() => proxy.rejected >= 1, 'a refused reconnect attempt');
    proxy.mode = 'forward';

    await app.signal.until(() => app.connects >= 2 && app.client.state === 'connected', 'reconnect after the restart');
    await app.signal.until(() => app.events.some((e) => e.startsWith('reset')), 'the reset event');
    const epoch2 = app.client.getSubscription(channel)?.position?.epoch;
    expect(epoch2).not.toBe(epoch1);

    await publish(gw.http, { channel, type: 'price', payload: { i: 207 } });
    await app.signal.until(() => app.seqs.length >= 5, 'the live message after the reset');
    expect(app.events.filter((e) => !e.startsWith('recovered'))).toEqual([
      ...range(1, 4).map((s) => `message ${s}`),
      `reset epoch_changed 4@${epoch1} -> 6@${epoch2}`,
      'message 7',
    ]);
    expect(app.errors).toEqual([]);
  }, 60_000);

  it('detects a silently dead connection (no FIN, no data) with its heartbeat and recovers what was sent into it', async () => {
    const { http, port } = await startGateway();
    const proxy = await proxyTo(port);
    const channel = 'quiet';
    const PING = 300;
    const app = sdkApp(`ws://127.0.0.1:${proxy.port}/ws`, channel, { pingInterval: PING });
    const stateTimes: Array<{ to: string; code: number | undefined; at: number }> = [];
    app.client.on('state', (s) => stateTimes.push({ to: s.to, code: s.code, at: Date.now() }));
    await app.signal.until(() => app.client.state === 'connected', 'the first connection');
    for (let i = 1; i <= 2; i++) await publish(http, { channel, type: 't', payload: { i } });
    await app.signal.until(() => app.seqs.length >= 2, '2 messages');

    const frozenAt = Date.now();
    expect(proxy.freeze()).toBe(1);
    // Sent into the frozen connection: the server believes it delivered it.
    await publish(http, { channel, type: 't', payload: { i: 3 } });

    await app.signal.until(() => stateTimes.some((s) => s.to === 'disconnected'), 'the dead connection to be detected', WAIT);
    const detected = stateTimes.find((s) => s.to === 'disconnected') as { to: string; code: number | undefined; at: number };
    expect(detected.code).toBe(4002);
    expect(detected.at - frozenAt).toBeLessThanOrEqual(2 * PING + 3000);

    await app.signal.until(() => app.connects >= 2 && app.client.state === 'connected', 'a new connection');
    expect(proxy.accepted).toBe(2);
    await app.signal.until(() => app.seqs.length >= 3, 'the message sent into the dead connection');
    expect(app.seqs).toEqual([1, 2, 3]);
    expect(app.events).toContain('recovered since 2 to 3');
    expect(app.errors).toEqual([]);
  }, 60_000);
});

// ---- the fault-injecting proxy itself (the tests above rely on its semantics) ---------------------------

/** A TCP server that records what each connection sent and whether it ended; closed after the test. */
async function recordingServer(): Promise<{
  server: Server;
  port: number;
  conns: Array<{ socket: Socket; data: string; ended: boolean; closed: boolean }>;
  signal: Signal;
}> {
  const signal = new Signal();
  const conns: Array<{ socket: Socket; data: string; ended: boolean; closed: boolean }> = [];
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    const c = { socket, data: '', ended: false, closed: false };
    conns.push(c);
    socket.on('data', (d) => {
      c.data += d.toString();
      signal.notify();
    });
    socket.on('end', () => {
      c.ended = true;
      signal.notify();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      c.closed = true;
      signal.notify();
    });
    signal.notify();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onCleanup(async () => {
    for (const c of conns) c.socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return { server, port: (server.address() as { port: number }).port, conns, signal };
}

/** A client socket through the proxy that records what it received. */
function dial(port: number, signal: Signal): { socket: Socket; state: { data: string; ended: boolean; closed: boolean; error?: string } } {
  const socket = createConnection({ port, host: '127.0.0.1', allowHalfOpen: true });
  const state: { data: string; ended: boolean; closed: boolean; error?: string } = { data: '', ended: false, closed: false };
  socket.on('data', (d) => {
    state.data += d.toString();
    signal.notify();
  });
  socket.on('end', () => {
    state.ended = true;
    signal.notify();
  });
  socket.on('error', (e: NodeJS.ErrnoException) => {
    state.error = e.code ?? e.message;
    signal.notify();
  });
  socket.on('close', () => {
    state.closed = true;
    signal.notify();
  });
  onCleanup(() => socket.destroy());
  return { socket, state };
}

/** Resolves after `ms` when nothing is expected to happen (an absence check, never synchronization). */
const quietFor = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('TcpProxy', () => {
  it('forwards both ways, counts connections, and sends new connections to a changed target', async () => {
    const a = await recordingServer();
    const b = await recordingServer();
    const proxy = await proxyTo(a.port);
    const c1 = dial(proxy.port, a.signal);
    c1.socket.write('hello a');
    await a.signal.until(() => a.conns[0]?.data === 'hello a', 'data at a');
    a.conns[0]?.socket.write('back from a');
    await a.signal.until(() => c1.state.data === 'back from a', 'data back');
    expect(proxy.accepted).toBe(1);
    expect(proxy.active).toBe(1);

    proxy.setTarget(b.port);
    const c2 = dial(proxy.port, b.signal);
    c2.socket.write('hello b');
    c1.socket.write(' again');
    await b.signal.until(() => b.conns[0]?.data === 'hello b', 'data at b');
    await a.signal.until(() => a.conns[0]?.data === 'hello a again', 'the old pair still goes to a');
    expect(proxy.accepted).toBe(2);

    // A FIN is passed on as a FIN.
    c2.socket.end();
    await b.signal.until(() => b.conns[0]?.ended, 'the end at b');
  });

  it('dropAll destroys every pair; reject mode refuses new connections', async () => {
    const a = await recordingServer();
    const proxy = await proxyTo(a.port);
    const c = dial(proxy.port, a.signal);
    c.socket.write('x');
    await a.signal.until(() => a.conns[0]?.data === 'x', 'data at a');
    expect(proxy.dropAll()).toBe(1);
    await a.signal.until(() => c.state.ended && a.conns[0]?.ended, 'a FIN on both sides');
    expect(proxy.active).toBe(0);

    const c2 = dial(proxy.port, a.signal);
    c2.socket.write('x2');
    await a.signal.until(() => a.conns[1]?.data === 'x2', 'data at a');
    expect(proxy.dropAll({ reset: true })).toBe(1);
    await a.signal.until(() => c2.state.error === 'ECONNRESET' && a.conns[1]?.closed, 'a reset on both sides');

    proxy.mode = 'reject';
    const r = dial(proxy.port, a.signal);
    r.socket.write('y');
    await a.signal.until(() => r.state.closed, 'the refused connection to close');
    expect(r.state.data).toBe('');
    expect(proxy.rejected).toBe(1);
    expect(a.conns).toHaveLength(2);

    proxy.mode = 'forward';
    const ok = dial(proxy.port, a.signal);
    ok.socket.write('z');
    await a.signal.until(() => a.conns[2]?.data === 'z', 'a new connection after reject mode');
  });

  it('freeze holds data and ends without closing anything; unfreeze delivers them in order; new pairs are not frozen', async () => {
    const a = await recordingServer();
    const proxy = await proxyTo(a.port);
    const c = dial(proxy.port, a.signal);
    c.socket.write('1');
    await a.signal.until(() => a.conns[0]?.data === '1', 'data before the freeze');

    expect(proxy.freeze()).toBe(1);
    c.socket.write('2');
    c.socket.write('3');
    a.conns[0]?.socket.write('down');
    c.socket.end();
    const fresh = dial(proxy.port, a.signal);
    fresh.socket.write('fresh');
    await a.signal.until(() => a.conns[1]?.data === 'fresh', 'a new connection forwarding during the freeze');
    await quietFor(200);
    expect(a.conns[0]?.data).toBe('1');
    expect(a.conns[0]?.ended).toBe(false);
    expect(c.state.data).toBe('');
    expect(c.state.closed).toBe(false);

    proxy.unfreeze();
    await a.signal.until(() => a.conns[0]?.data === '123' && a.conns[0]?.ended, 'the held data and end');
    await a.signal.until(() => c.state.data === 'down', 'the held data downstream');
  });
});
