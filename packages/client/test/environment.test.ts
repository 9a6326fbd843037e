import { describe, expect, it } from 'vitest';
import { HeraldClient, browserEnvironment } from '../src/index.js';
import { connectedFrame, fakeWebSocket, handshake, setup } from './helpers.js';

describe('online event', () => {
  it('reconnects at once while waiting for a retry', () => {
    const h = setup({ random: () => 0.99 });
    h.client.connect();
    handshake(h.socket());
    h.socket().serverClose(1006);
    expect(h.states.at(-1)).toMatchObject({ to: 'disconnected', delay: 990 });
    h.env.goOnline();
    expect(h.sockets).toHaveLength(2);
    expect(h.states.at(-1)).toMatchObject({ from: 'disconnected', to: 'connecting', attempt: 0 });
    h.clock.advance(10_000); // the cancelled retry timer must not open a third socket
    expect(h.sockets).toHaveLength(2);
  });

  it('does nothing while connected or connecting', () => {
    const h = setup();
    h.client.connect();
    h.env.goOnline();
    handshake(h.socket());
    h.env.goOnline();
    expect(h.sockets).toHaveLength(1);
    expect(h.client.state).toBe('connected');
  });

  it('hooks are installed by connect() and removed by close() and terminal codes', () => {
    const h = setup();
    expect(h.env.online.size).toBe(0);
    h.client.connect();
    expect(h.env.online.size).toBe(1);
    expect(h.env.visible.size).toBe(1);
    handshake(h.socket());
    h.socket().serverClose(4503);
    expect(h.env.online.size).toBe(0);
    expect(h.env.visible.size).toBe(0);
    h.client.connect();
    h.client.connect();
    expect(h.env.online.size).toBe(1); // never twice
    void h.client.close();
    expect(h.env.online.size).toBe(0);
  });
});

describe('visibilitychange to visible', () => {
  it('checks liveness at once: a ping, and a dead socket is dropped after visibilityTimeout', () => {
    const h = setup({ visibilityTimeout: 5000 });
    h.client.connect();
    handshake(h.socket());
    h.clock.advance(1000);
    h.env.becomeVisible();
    expect(h.socket().last()).toEqual({ type: 'ping' });
    h.clock.advance(4999);
    expect(h.client.state).toBe('connected');
    h.clock.advance(1);
    expect(h.sockets[0]?.closedWith).toEqual({ code: 4002, reason: 'no pong after resume' });
    expect(h.states.at(-1)).toMatchObject({ from: 'connected', to: 'disconnected', code: 4002 });
  });

  it('an answer within the timeout keeps the connection', () => {
    const h = setup({ visibilityTimeout: 5000 });
    h.client.connect();
    handshake(h.socket());
    h.env.becomeVisible();
    h.clock.advance(200);
    h.socket().receive({ type: 'pong' });
    h.clock.advance(20_000);
    expect(h.client.state).toBe('connected');
    expect(h.socket().closedWith).toBeUndefined();
  });

  it('reconnects at once while waiting for a retry', () => {
    const h = setup();
    h.client.connect();
    h.socket().serverClose(1006);
    h.env.becomeVisible();
    expect(h.sockets).toHaveLength(2);
  });
});

describe('browserEnvironment', () => {
  it('is null where there is no window or document (Node)', () => {
    expect(browserEnvironment({})).toBeNull();
    expect(browserEnvironment()).toBeNull(); // Node 20's globalThis
  });

  it("listens to the scope's online event and the document's visibilitychange", () => {
    const doc = Object.assign(new EventTarget(), { visibilityState: 'hidden' });
    const win = Object.assign(new EventTarget(), { document: doc });
    const env = browserEnvironment(win);
    expect(env).not.toBeNull();
    const log: string[] = [];
    const offOnline = env!.onOnline(() => log.push('online'));
    const offVisible = env!.onVisible(() => log.push('visible'));
    win.dispatchEvent(new Event('online'));
    doc.dispatchEvent(new Event('visibilitychange')); // still hidden: ignored
    doc.visibilityState = 'visible';
    doc.dispatchEvent(new Event('visibilitychange'));
    offOnline();
    offVisible();
    win.dispatchEvent(new Event('online'));
    doc.dispatchEvent(new Event('visibilitychange'));
    expect(log).toEqual(['online', 'visible']);
  });

  it('offers Web Locks, BroadcastChannel and pagehide where the scope has them, so tabs can share', () => {
    const locks = { request: () => Promise.resolve(), query: () => Promise.resolve({}) };
    class Channel {}
    const win = Object.assign(new EventTarget(), { document: new EventTarget(), navigator: { locks }, BroadcastChannel: Channel });
    const env = browserEnvironment(win);
    expect(env?.locks).toBe(locks);
    expect(env?.BroadcastChannel).toBe(Channel);
    const left: string[] = [];
    const off = env!.onLeave!(() => left.push('pagehide'));
    win.dispatchEvent(new Event('pagehide'));
    off();
    win.dispatchEvent(new Event('pagehide'));
    expect(left).toEqual(['pagehide']);
    const bare = browserEnvironment(Object.assign(new EventTarget(), { navigator: {} }));
    expect([bare?.locks, bare?.BroadcastChannel]).toEqual([undefined, undefined]);
  });

  it('drives a client whose environment is a browser-like global', () => {
    const doc = Object.assign(new EventTarget(), { visibilityState: 'visible' });
    const win = Object.assign(new EventTarget(), { document: doc });
    const { WebSocket, sockets } = fakeWebSocket();
    const client = new HeraldClient({ url: 'ws://x', WebSocket, environment: browserEnvironment(win), random: () => 0.9 });
    client.connect();
    sockets[0]!.open();
    sockets[0]!.receive(connectedFrame());
    sockets[0]!.serverClose(1006);
    win.dispatchEvent(new Event('online'));
    expect(sockets).toHaveLength(2);
    void client.close();
  });
});
