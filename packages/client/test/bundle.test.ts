// Runs the minified IIFE bundle (the one a <script> tag loads), built in memory with the same options as
// scripts/build.mjs. Its private members are mangled, so this proves the shipped code still works.
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';
import { BUDGET_BYTES, esmOptions, iifeOptions } from '../scripts/bundle-options.mjs';
import type * as Api from '../src/browser.js';
import { FakeClock, connectedFrame, fakeWebSocket, msg, result } from './helpers.js';

let code = '';
let Herald: typeof Api;

beforeAll(async () => {
  const out = await build({ ...iifeOptions, write: false, sourcemap: false });
  code = out.outputFiles[0]?.text ?? '';
  // Evaluated as a classic script would be: `var Herald = ...` then read back.
  Herald = new Function(`${code}\nreturn Herald;`)() as typeof Api;
});

describe('dist/herald.min.js', () => {
  it('stays within its min+gzip budget', () => {
    expect(BUDGET_BYTES).toBe(12 * 1024 + 256 + 64);
    expect(gzipSync(code, { level: 9 }).length).toBeLessThanOrEqual(BUDGET_BYTES);
  });

  it('exposes Herald.HeraldClient and Herald.createClient', () => {
    expect(typeof Herald.HeraldClient).toBe('function');
    expect(typeof Herald.createClient).toBe('function');
    expect(Herald.CloseCode.TokenExpired).toBe(4401);
    expect(Herald.ClientErrorCode.BinaryFrame).toBe('HERALD_ERR_CLIENT_BINARY_FRAME');
  });

  it('connects, delivers in order, recovers a gap and resubscribes with since after a reconnect', () => {
    const clock = new FakeClock();
    const { WebSocket, sockets } = fakeWebSocket();
    const client = Herald.createClient({ url: 'ws://x', token: 'T', WebSocket, clock, environment: null, random: () => 0.5 });
    const seen: number[] = [];
    const states: string[] = [];
    client.on('state', (s) => states.push(s.to));
    const sub = client.subscribe('news', (m) => seen.push(m.seq));
    client.connect();
    const s1 = sockets[0]!;
    s1.open();
    expect(s1.frames()[0]).toEqual({ type: 'connect', token: 'T', subs: { news: {} }, batch: true });
    s1.receiveBatch([connectedFrame({ news: result(0) }), msg('news', 1), msg('news', 1), msg('news', 3)]);
    expect(seen).toEqual([1]);
    expect(s1.last()).toMatchObject({ type: 'subscribe', channel: 'news', since: 1, epoch: 'e1' });
    s1.receiveBatch([{ type: 'subscribed', channel: 'news', ...result(3), id: s1.last()?.['id'] }, msg('news', 2), msg('news', 3)]);
    expect(seen).toEqual([1, 2, 3]);
    expect(sub.position).toEqual({ seq: 3, epoch: 'e1' });
    clock.advance(50_000); // two unanswered pings: dead two intervals after the last frame
    expect(s1.closedWith?.code).toBe(4002);
    clock.advance(500);
    const s2 = sockets[1]!;
    s2.open();
    expect(s2.frames()[0]).toMatchObject({ subs: { news: { since: 3, epoch: 'e1' } } });
    s2.receive(connectedFrame({ news: result(3) }));
    expect(states).toEqual(['connecting', 'connected', 'disconnected', 'connecting', 'connected']);
    void client.close();
    expect(client.state).toBe('closed');
  });

  it('reports a binary frame as an error event', () => {
    const { WebSocket, sockets } = fakeWebSocket();
    const client = Herald.createClient({ url: 'ws://x', WebSocket, clock: new FakeClock(), environment: null, logger: { debug() {}, warn() {} } });
    const codes: string[] = [];
    client.on('error', (e) => codes.push(e.code));
    client.connect();
    sockets[0]!.open();
    sockets[0]!.onmessage?.({ data: new ArrayBuffer(2) });
    expect(codes).toEqual(['HERALD_ERR_CLIENT_BINARY_FRAME']);
  });
});

describe('dist/index.js', () => {
  it('is one ESM file with the protocol inlined: no runtime dependency', async () => {
    const out = await build({ ...esmOptions, write: false, sourcemap: false });
    const text = out.outputFiles[0]?.text ?? '';
    expect(text).not.toMatch(/from\s+["']/);
    expect(text).not.toContain('@herald/protocol');
    expect(text).toMatch(/export\s*\{[^}]*HeraldClient/);
  });
});
