import { describe, expect, it, vi } from 'vitest';
import { ClientErrorCode, HeraldClient } from '../src/index.js';
import { connectedFrame, fakeWebSocket, flush, handshake, setup } from './helpers.js';

describe('close codes', () => {
  it.each([1000, 4500, 4501, 4503, 4509, 4999])('%i is terminal: closed with the code and reason, no reconnect', (code) => {
    const h = setup();
    h.client.connect();
    handshake(h.socket());
    h.socket().serverClose(code, 'why');
    expect(h.states.at(-1)).toEqual({ from: 'connected', to: 'closed', code, reason: 'why' });
    h.clock.advance(10 * 60_000);
    expect(h.sockets).toHaveLength(1);
    expect(h.clock.pending).toBe(0);
  });

  it.each([1001, 1006, 1011, 1012, 4000, 4002, 4008, 4029, 4499])('%i reconnects with backoff', (code) => {
    const h = setup();
    h.client.connect();
    handshake(h.socket());
    h.socket().serverClose(code, 'bye');
    expect(h.states.at(-1)).toEqual({ from: 'connected', to: 'disconnected', code, reason: 'bye', attempt: 0, delay: 500 });
    h.clock.advance(500);
    expect(h.sockets).toHaveLength(2);
    handshake(h.socket());
    expect(h.client.state).toBe('connected');
  });

  it('a close before the connection was accepted also follows the code rules', () => {
    const h = setup();
    h.client.connect();
    h.socket().serverClose(1006);
    expect(h.states.at(-1)).toMatchObject({ from: 'connecting', to: 'disconnected', code: 1006 });
    h.clock.advance(500);
    h.socket().open();
    h.socket().serverClose(4501, 'invalid token');
    expect(h.states.at(-1)).toEqual({ from: 'connecting', to: 'closed', code: 4501, reason: 'invalid token' });
  });

  it('a close event without a code counts as 1006 (abnormal closure)', () => {
    const h = setup();
    h.client.connect();
    handshake(h.socket());
    h.socket().onclose?.(undefined as never);
    expect(h.states.at(-1)).toMatchObject({ to: 'disconnected', code: 1006 });
  });
});

describe('tokens', () => {
  it('sends the token in the connect frame', () => {
    const h = setup({ token: 'T1' });
    h.client.connect();
    h.socket().open();
    expect(h.socket().frames()).toEqual([{ type: 'connect', token: 'T1', subs: {}, batch: true }]);
  });

  it('connects anonymously without token and getToken', () => {
    const h = setup();
    h.client.connect();
    h.socket().open();
    expect(h.socket().frames()).toEqual([{ type: 'connect', subs: {}, batch: true }]);
  });

  it('calls getToken for the first token, and again after 4401 before reconnecting', async () => {
    let n = 0;
    const getToken = vi.fn(async () => `T${++n}`);
    const h = setup({ getToken });
    h.client.connect();
    expect(h.sockets).toHaveLength(0); // waiting for the token
    await flush();
    h.socket().open();
    expect(h.socket().frames()[0]).toMatchObject({ token: 'T1' });
    h.socket().receive(connectedFrame());
    h.socket().serverClose(1012); // not a token problem: the token is reused
    h.clock.advance(500);
    await flush();
    expect(getToken).toHaveBeenCalledTimes(1);
    handshake(h.socket());
    expect(h.socket().frames()[0]).toMatchObject({ token: 'T1' });
    h.socket().serverClose(4401, 'token expired');
    expect(h.states.at(-1)).toMatchObject({ to: 'disconnected', code: 4401, attempt: 1, delay: 1000 });
    h.clock.advance(1000);
    expect(h.states.at(-1)).toMatchObject({ to: 'connecting', attempt: 1 });
    expect(h.sockets).toHaveLength(2); // no socket before the new token is there
    await flush();
    expect(getToken).toHaveBeenCalledTimes(2);
    h.socket().open();
    expect(h.socket().frames()[0]).toMatchObject({ token: 'T2' });
  });

  it('4401 with a fixed token and no getToken is terminal (the same token would be refused again)', () => {
    const h = setup({ token: 'T' });
    h.client.connect();
    handshake(h.socket());
    h.socket().serverClose(4401, 'token expired');
    expect(h.states.at(-1)).toMatchObject({ to: 'closed', code: 4401 });
  });

  it('prefers the fixed token first, then getToken after 4401', async () => {
    const getToken = vi.fn(async () => 'fresh');
    const h = setup({ token: 'initial', getToken });
    h.client.connect();
    h.socket().open();
    expect(h.socket().frames()[0]).toMatchObject({ token: 'initial' });
    expect(getToken).not.toHaveBeenCalled();
    h.socket().serverClose(4401);
    h.clock.advance(500);
    await flush();
    h.socket().open();
    expect(h.socket().frames()[0]).toMatchObject({ token: 'fresh' });
  });

  it('a failing getToken is reported and retried with backoff', async () => {
    let fail = true;
    const getToken = vi.fn(async () => {
      if (fail) throw new Error('auth server down');
      return 'ok';
    });
    const h = setup({ getToken });
    h.client.connect();
    await flush();
    expect(h.errors.map((e) => e.code)).toEqual([ClientErrorCode.Token]);
    expect((h.errors[0]?.cause as Error).message).toBe('auth server down');
    expect(h.states.at(-1)).toMatchObject({ from: 'connecting', to: 'disconnected', reason: 'token refresh failed', attempt: 0 });
    fail = false;
    h.clock.advance(500);
    await flush();
    h.socket().open();
    expect(h.socket().frames()[0]).toMatchObject({ token: 'ok' });
  });

  it('getToken resolving to something other than a non-empty string is a token error', async () => {
    const h = setup({ getToken: async () => '' });
    h.client.connect();
    await flush();
    expect(h.errors[0]?.code).toBe(ClientErrorCode.Token);
    expect(h.sockets).toHaveLength(0);
  });

  it('a getToken that never settles fails after connectTimeout and is called again; its late token opens nothing', async () => {
    const resolvers: ((t: string) => void)[] = [];
    const getToken = vi.fn(() => new Promise<string>((r) => resolvers.push(r)));
    const h = setup({ getToken, connectTimeout: 5000 });
    h.client.connect();
    h.clock.advance(4999);
    await flush();
    expect(h.client.state).toBe('connecting');
    h.clock.advance(1);
    await flush();
    expect(h.errors.map((e) => e.code)).toEqual([ClientErrorCode.Token]);
    expect((h.errors[0]?.cause as Error).message).toBe('getToken() did not settle in 5000 ms');
    expect(h.states.at(-1)).toMatchObject({ from: 'connecting', to: 'disconnected', reason: 'token refresh failed', attempt: 0 });
    h.clock.advance(500);
    await flush();
    expect(getToken).toHaveBeenCalledTimes(2);
    resolvers[0]?.('late');
    await flush();
    expect(h.sockets).toHaveLength(0);
    resolvers[1]?.('fresh');
    await flush();
    h.socket().open();
    expect(h.socket().frames()[0]).toMatchObject({ token: 'fresh' });
    expect(h.sockets).toHaveLength(1);
    // The token's timer is gone: the socket gets a connect timeout of its own, not an early one.
    h.socket().receive(connectedFrame());
    h.clock.advance(20_000); // within one ping interval: the socket stays
    expect(h.client.state).toBe('connected');
    expect(h.errors).toHaveLength(1);
  });

  it('close() while getToken is pending: the late token opens nothing', async () => {
    let resolve: (t: string) => void = () => {};
    const h = setup({ getToken: () => new Promise<string>((r) => (resolve = r)) });
    h.client.connect();
    await h.client.close();
    resolve('late');
    await flush();
    expect(h.sockets).toHaveLength(0);
    expect(h.client.state).toBe('closed');
  });
});

describe('close() and connect()', () => {
  it('close() closes with 1000, ends in closed, and never reconnects', async () => {
    const h = setup();
    h.client.connect();
    handshake(h.socket());
    const s = h.socket();
    const done = h.client.close();
    expect(s.closedWith).toEqual({ code: 1000, reason: 'client closed' });
    s.serverClose(1000);
    await done;
    expect(h.states.at(-1)).toEqual({ from: 'connected', to: 'closed', code: 1000, reason: 'client closed' });
    h.clock.advance(600_000);
    expect(h.sockets).toHaveLength(1);
    expect(h.clock.pending).toBe(0);
  });

  it('close() resolves even when the socket never reports its close', async () => {
    const h = setup();
    h.client.connect();
    handshake(h.socket());
    const done = h.client.close();
    h.clock.advance(1000);
    await expect(done).resolves.toBeUndefined();
  });

  it('close() while waiting for a retry cancels it', () => {
    const h = setup();
    h.client.connect();
    h.socket().serverClose(1006);
    void h.client.close();
    expect(h.states.at(-1)).toMatchObject({ from: 'disconnected', to: 'closed' });
    h.clock.advance(60_000);
    expect(h.sockets).toHaveLength(1);
  });

  it('connect() is idempotent while connecting or connected', () => {
    const h = setup();
    h.client.connect();
    h.client.connect();
    handshake(h.socket());
    h.client.connect();
    expect(h.sockets).toHaveLength(1);
  });

  it('connect() after a terminal close starts again and refreshes the token', async () => {
    let n = 0;
    const h = setup({ getToken: async () => `T${++n}` });
    h.client.connect();
    await flush();
    handshake(h.socket());
    h.socket().serverClose(4509, 'kicked');
    expect(h.client.state).toBe('closed');
    h.client.connect();
    await flush();
    h.socket().open();
    expect(h.socket().frames()[0]).toMatchObject({ token: 'T2' });
    expect(h.states.at(-1)).toEqual({ from: 'closed', to: 'connecting' });
  });

  it('a WebSocket constructor that throws (invalid URL) ends in closed with an error', () => {
    class Throwing {
      constructor() {
        throw new SyntaxError('invalid url');
      }
    }
    const h = setup({ WebSocket: Throwing as never });
    h.client.connect();
    expect(h.errors.map((e) => e.code)).toEqual([ClientErrorCode.Socket]);
    expect(h.states.at(-1)).toMatchObject({ from: 'connecting', to: 'closed' });
  });

  it('every transition passes through one state event, in order', () => {
    const h = setup();
    h.client.connect();
    handshake(h.socket());
    h.socket().serverClose(1012);
    h.clock.advance(500);
    handshake(h.socket());
    void h.client.close();
    expect(h.states.map((s) => `${s.from}->${s.to}`)).toEqual([
      'disconnected->connecting',
      'connecting->connected',
      'connected->disconnected',
      'disconnected->connecting',
      'connecting->connected',
      'connected->closed',
    ]);
  });

  it('a state listener may close the client mid-transition', () => {
    const { WebSocket, sockets } = fakeWebSocket();
    const client = new HeraldClient({ url: 'ws://x', WebSocket, environment: null, logger: { debug() {}, warn() {} } });
    client.on('state', (s) => {
      if (s.to === 'connected') void client.close();
    });
    client.connect();
    handshake(sockets[0]!);
    expect(client.state).toBe('closed');
    expect(sockets[0]?.closedWith?.code).toBe(1000);
  });
});
