import type { WebSocket as WsWebSocket } from 'ws';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { ClientErrorCode, HeraldClient, createClient, type HeraldClientOptions, type WebSocketConstructor } from '../src/index.js';
import { fakeWebSocket } from './helpers.js';

const { WebSocket } = fakeWebSocket();

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

describe('options', () => {
  it.each<[string, Partial<HeraldClientOptions>]>([
    ['missing url', { url: '' }],
    ['url not a string', { url: 42 as never }],
    ['empty token', { token: '' }],
    ['getToken not a function', { getToken: 'x' as never }],
    ['negative pingInterval', { pingInterval: -1 }],
    ['NaN connectTimeout', { connectTimeout: Number.NaN }],
    ['minDelay above maxDelay', { minDelay: 5000, maxDelay: 1000 }],
    ['random not a function', { random: 1 as never }],
    ['backoff not a function', { backoff: {} as never }],
    ['shared not a boolean', { shared: 'yes' as never }],
    ['empty sharedKey', { sharedKey: '' }],
    ['leaderTimeout under 100 ms', { leaderTimeout: 50 }],
  ])('rejects %s at construction with HERALD_ERR_CLIENT_INVALID_OPTION', (_name, bad) => {
    expect(codeOf(() => new HeraldClient({ url: 'ws://x', WebSocket, environment: null, ...bad }))).toBe(ClientErrorCode.InvalidOption);
  });

  it('asks for a WebSocket implementation where there is no global one (Node 20)', () => {
    expect((globalThis as { WebSocket?: unknown }).WebSocket).toBeUndefined();
    expect(codeOf(() => new HeraldClient({ url: 'ws://x' }))).toBe(ClientErrorCode.InvalidOption);
  });

  it('uses globalThis.WebSocket by default', () => {
    const g = globalThis as { WebSocket?: unknown };
    const { WebSocket: Global, sockets } = fakeWebSocket();
    g.WebSocket = Global;
    try {
      const client = new HeraldClient({ url: 'ws://default', environment: null });
      client.connect();
      expect(sockets.map((s) => s.url)).toEqual(['ws://default']);
    } finally {
      delete g.WebSocket;
    }
  });

  it('lowers the default minDelay to a smaller maxDelay instead of refusing it', () => {
    const client = new HeraldClient({ url: 'ws://x', WebSocket, environment: null, maxDelay: 500 });
    expect(client.state).toBe('disconnected');
    expect(codeOf(() => new HeraldClient({ url: 'ws://x', WebSocket, environment: null, maxDelay: 500, minDelay: 600 }))).toBe(ClientErrorCode.InvalidOption);
  });

  it('accepts explicitly undefined optional options', () => {
    const client = new HeraldClient({ url: 'ws://x', WebSocket, token: undefined, getToken: undefined, pingInterval: undefined, environment: undefined });
    expect(client.state).toBe('disconnected');
  });

  it('createClient is the factory form of new HeraldClient', () => {
    const client = createClient({ url: 'ws://x', WebSocket, environment: null });
    expect(client).toBeInstanceOf(HeraldClient);
    expect(client.state).toBe('disconnected');
  });

  it('the ws package and the DOM WebSocket both fit the WebSocket option (checked by tsc)', () => {
    expectTypeOf<typeof WsWebSocket>().toExtend<WebSocketConstructor>();
    expectTypeOf<typeof globalThis.WebSocket>().toExtend<WebSocketConstructor>();
    // At run time: a client built with the fake constructor has exactly the surface the client needs.
    const s = new WebSocket('ws://x');
    expect(typeof s.send).toBe('function');
    expect(typeof s.close).toBe('function');
    expect(s.readyState).toBe(0);
  });
});
