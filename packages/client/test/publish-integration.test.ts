// client.publish() in Node against a real gateway, through a fault-injecting TCP proxy: a publish whose answer is
// lost with the connection (the gateway had it, waiting for its publish hook, when the proxy dropped the
// connection) is sent again after the reconnect and published exactly once; a token without the grant is refused.
// Every wait is on an event; nothing sleeps.
import { createServer, type ServerResponse } from 'node:http';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { api, listenUntilCleanup, poll, proxyTo, sdkApp, Signal, startGateway } from './support/harness.js';

const SECRET = 'publish_integration_secret_0123456789_0123';
const HOOK_SECRET = `whsec_${Buffer.from('publish-integration-hook-secret').toString('base64')}`;

const sign = (claims: Record<string, unknown>): Promise<string> =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(SECRET));

describe('client.publish against the real gateway', () => {
  it('publishes exactly once when the connection is lost before the answer, and rejects what the token does not grant', async () => {
    // A publish hook that holds its first request until told to answer, and accepts the others at once.
    const signal = new Signal();
    const held: ServerResponse[] = [];
    let requests = 0;
    const hook = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        requests += 1;
        if (requests === 1) held.push(res);
        else res.writeHead(204).end();
        signal.notify();
      });
    });
    const hookPort = await listenUntilCleanup(hook);
    const gw = await startGateway({
      jwtSecrets: [SECRET],
      publishHookUrl: `http://127.0.0.1:${hookPort}/hook`,
      publishHookSecret: HOOK_SECRET,
      publishHookTimeout: 20_000,
    });
    const proxy = await proxyTo(gw.port);
    const reader = sdkApp(gw.ws, 'chat', {}, { name: 'reader', signal });
    const writer = sdkApp(`ws://127.0.0.1:${proxy.port}/ws`, 'other', { token: await sign({ sub: 'ann', publish: ['chat'] }) }, { name: 'writer', signal });
    await signal.until(() => reader.connects === 1 && writer.connects === 1, 'both connected');

    const sent = writer.client.publish('chat', 'said', { text: 'once' });
    await signal.until(() => requests === 1, 'the publish at the hook');
    // The gateway has the publish; the connection that would carry its answer goes away.
    expect(proxy.dropAll()).toBe(1);
    await signal.until(() => writer.connects === 2, 'the writer reconnected');
    held[0]?.writeHead(204).end();
    const result = await sent;
    expect(result).toMatchObject({ channel: 'chat', seq: 1 });
    // Both copies have been through the gateway (one published, the other answered as its duplicate).
    const outcomes = gw.gateway.stats.clientPublishes;
    await poll(async () => ((outcomes.get('published') ?? 0) + (outcomes.get('duplicate') ?? 0) === 2 ? true : undefined), 'both copies handled');
    expect([outcomes.get('published'), outcomes.get('duplicate')]).toEqual([1, 1]);
    await signal.until(() => reader.seqs.length >= 1, 'the message at the reader');
    expect((await api(gw.http, 'GET', '/api/channels/chat')).body.seq).toBe(1);
    expect(reader.seqs).toEqual([1]);

    await expect(writer.client.publish('news', 'said', {})).rejects.toMatchObject({ code: 'HERALD_ERR_CLIENT_SERVER_ERROR', serverCode: 'forbidden' });
  }, 60_000);
});
