import { describe, expect, it } from 'vitest';
import { Heartbeat } from '../src/heartbeat.js';
import { FakeClock, connectedFrame, handshake, msg, setup } from './helpers.js';

const pings = (h: ReturnType<typeof setup>, i = -1) => (h.sockets.at(i)?.framesOf('ping') ?? []).length;

describe('Heartbeat (unit)', () => {
  it('pings every interval; in a silence a second ping at 1.5 intervals, death at 2 intervals', () => {
    const clock = new FakeClock();
    const log: string[] = [];
    const hb = new Heartbeat(
      clock,
      () => log.push('ping'),
      (r) => log.push(`dead: ${r}`),
    );
    hb.start(1000);
    clock.advance(999);
    expect(log).toEqual([]);
    clock.advance(1);
    expect(log).toEqual(['ping']);
    clock.advance(500);
    expect(log).toEqual(['ping', 'ping']);
    clock.advance(499);
    expect(log).toEqual(['ping', 'ping']);
    clock.advance(1);
    expect(log).toEqual(['ping', 'ping', 'dead: no pong']);
    clock.advance(10_000);
    expect(log).toHaveLength(3); // nothing after death
  });

  it('detects death within two intervals of the last frame whatever the timer phase', () => {
    const clock = new FakeClock();
    const log: string[] = [];
    const hb = new Heartbeat(
      clock,
      () => log.push(`ping@${clock.now()}`),
      () => log.push(`dead@${clock.now()}`),
    );
    const t0 = clock.now();
    hb.start(1000);
    clock.advance(1100);
    hb.alive(); // the last frame, just after the first ping
    clock.advance(5000);
    expect(log).toEqual([`ping@${t0 + 1000}`, `ping@${t0 + 2000}`, `ping@${t0 + 2600}`, `dead@${t0 + 3100}`]);
  });

  it('anything received resets the count of missed pings', () => {
    const clock = new FakeClock();
    const log: string[] = [];
    const hb = new Heartbeat(
      clock,
      () => log.push('ping'),
      () => log.push('dead'),
    );
    hb.start(1000);
    for (let i = 0; i < 10; i++) {
      clock.advance(1000);
      hb.alive();
    }
    expect(log).toEqual(Array(10).fill('ping'));
  });
});

describe('client heartbeat', () => {
  it('sends {"type":"ping"} every pingInterval once connected, and none before', () => {
    const h = setup({ pingInterval: 25_000, connectTimeout: 60_000 });
    h.client.connect();
    h.socket().open();
    h.clock.advance(30_000);
    expect(pings(h)).toBe(0); // not connected yet
    h.socket().receive(connectedFrame({}, '42'));
    h.clock.advance(24_999);
    expect(pings(h)).toBe(0);
    h.clock.advance(1);
    expect(h.socket().last()).toEqual({ type: 'ping' });
    h.socket().receive({ type: 'pong' });
    h.clock.advance(25_000);
    expect(pings(h)).toBe(2);
  });

  it("uses the server's connected.ping when it is shorter than pingInterval", () => {
    const h = setup({ pingInterval: 25_000 });
    h.client.connect();
    h.socket().open();
    h.socket().receive({ ...connectedFrame(), ping: 10_000 });
    h.clock.advance(10_000);
    expect(pings(h)).toBe(1);
  });

  it('pingInterval 0 disables pinging', () => {
    const h = setup({ pingInterval: 0 });
    h.client.connect();
    handshake(h.socket());
    h.clock.advance(600_000);
    expect(pings(h)).toBe(0);
    expect(h.client.state).toBe('connected');
  });

  it('two unanswered pings: closes the socket itself (no onclose needed) within two intervals, and reconnects', () => {
    const h = setup({ pingInterval: 25_000 });
    h.client.connect();
    handshake(h.socket());
    const dead = h.socket();
    h.clock.advance(49_999);
    expect(pings(h)).toBe(2);
    expect(h.client.state).toBe('connected');
    h.clock.advance(1);
    // The socket never fires onclose (sleeping laptop, dropped Wi-Fi): the client does not wait for it.
    expect(dead.closedWith).toEqual({ code: 4002, reason: 'no pong' });
    expect(h.states.at(-1)).toMatchObject({ from: 'connected', to: 'disconnected', code: 4002, reason: 'no pong', attempt: 0 });
    h.clock.advance(h.states.at(-1)?.delay ?? 0);
    expect(h.sockets).toHaveLength(2);
    expect(h.client.state).toBe('connecting');
  });

  it('any frame counts as liveness, not only pong', () => {
    const h = setup({ pingInterval: 25_000 });
    h.client.connect();
    handshake(h.socket(), { news: { seq: 0, epoch: 'e', recovered: true } });
    h.client.subscribe('news');
    for (let i = 1; i <= 6; i++) {
      h.clock.advance(25_000);
      h.socket().receive(msg('news', i));
    }
    expect(h.client.state).toBe('connected');
    expect(pings(h)).toBe(6);
  });

  it('callbacks of a socket given up on are ignored, even when they arrive later', () => {
    const h = setup({ pingInterval: 1000 });
    h.client.connect();
    handshake(h.socket(), { news: { seq: 5, epoch: 'e', recovered: true } });
    h.client.subscribe('news');
    const old = h.socket();
    h.clock.advance(3000); // declared dead
    h.clock.advance(h.states.at(-1)?.delay ?? 0);
    expect(h.sockets).toHaveLength(2);
    const statesBefore = h.states.length;
    // The old socket wakes up: a message, then a close. Neither may touch the new connection.
    old.receive(msg('news', 6));
    old.serverClose(4500, 'too late');
    old.onopen?.({});
    expect(h.messages).toEqual([]);
    expect(h.states).toHaveLength(statesBefore);
    expect(h.client.state).toBe('connecting');
    expect(h.socket().sent).toEqual([]);
  });

  it('connect timeout: no connected frame in time closes with 4000 and retries', () => {
    const h = setup({ connectTimeout: 10_000 });
    h.client.connect();
    h.socket().open();
    h.clock.advance(10_000);
    expect(h.sockets[0]?.closedWith?.code).toBe(4000);
    expect(h.states.at(-1)).toMatchObject({ from: 'connecting', to: 'disconnected', code: 4000, reason: 'connect timeout' });
  });
});
