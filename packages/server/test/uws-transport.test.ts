/**
 * What only the uWebSockets.js transport has. The protocol suites themselves run on it too, with
 * HERALD_TEST_TRANSPORT=uws (scripts/test.sh does both runs); this file keeps the checks they cannot make:
 * that `transport: 'uws'` really serves the port with uWebSockets.js, how far past `maxFrameSize` a frame
 * still gets its 1009, and the 1012 on shutdown. uWebSockets.js is an optional package for users; this
 * repository installs it (the bench workspace's devDependency), so a missing package fails this suite
 * instead of skipping it.
 */
import { createRequire } from 'node:module';
import { beforeAll, describe, expect, it } from 'vitest';
import type { GatewayOptions } from '../src/gateway/options.js';
import { startGateway as startAnyGateway, TestClient } from './helpers.js';
import { get, openRaw } from './support/sockets.js';

/** A test gateway on the uWebSockets.js transport. */
const startGateway = (opts: GatewayOptions = {}): ReturnType<typeof startAnyGateway> => startAnyGateway({ ...opts, transport: 'uws' });

describe('uWebSockets.js transport', () => {
  beforeAll(() => {
    // Installed here by the bench workspace (npm:uwebsockets@3.0.6); never skip silently.
    expect(() => createRequire(import.meta.url).resolve('uWebSockets.js')).not.toThrow();
  });

  it('runs the gateway on uWebSockets.js', async () => {
    const gw = await startGateway();
    const r = await fetch(`${gw.http}/healthz`);
    // uWebSockets.js names itself in every response it writes.
    expect(r.headers.get('uwebsockets')).not.toBeNull();
  });

  it('closes with 1009 on a frame up to 64 KiB over maxFrameSize; uWebSockets.js drops a larger one (1006)', async () => {
    // uWebSockets.js refuses a frame over its own limit from the header, without a close frame, so the
    // transport gives it maxFrameSize + 64 KiB and closes with 1009 itself below that (docs/protocol.md); it
    // buffers an unfinished message up to that limit, so it is also what one connection can make it hold.
    const gw = await startGateway({ maxFrameSize: 1024 });
    const within = await TestClient.connect(gw.ws);
    within.client.sendRaw('x'.repeat(1024 + 64 * 1024));
    expect((await within.client.closed()).code).toBe(1009);
    const beyond = await TestClient.connect(gw.ws);
    beyond.client.sendRaw('x'.repeat(1024 + 64 * 1024 + 1));
    expect((await beyond.client.closed()).code).toBe(1006);
  });

  it('closes every client with 1012 on shutdown and releases the port', async () => {
    const gw = await startGateway();
    const { client } = await TestClient.connect(gw.ws);
    await gw.gateway.close();
    expect((await client.closed()).code).toBe(1012);
    await expect(fetch(`${gw.http}/healthz`)).rejects.toThrow();
  });

  it('closes idle and slowloris connections itself (its fixed 10 s HTTP idle timeout), fully, while /healthz answers', async () => {
    // requestTimeout cannot change this: uWebSockets.js compiles its HTTP idle timeout in (10 s, checked every 4 s).
    const gw = await startGateway();
    const port = gw.gateway.address().port;
    const idle = await openRaw(port, 50, { localAddress: '127.0.0.2' });
    const slow = await openRaw(port, 20, { localAddress: '127.0.0.2', send: 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ' });
    const started = Date.now();
    expect((await get(`${gw.http}/healthz`)).status).toBe(200);
    // `gone` needs a real close: a half-closed socket would take the bytes written after its FIN.
    await Promise.all([...idle, ...slow].map((s) => s.gone));
    expect(Date.now() - started).toBeLessThan(25_000);
  }, 40_000);
});
