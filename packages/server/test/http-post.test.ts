import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { postText } from '../src/util/http-post.js';
import { systemClock } from '../src/util/clock.js';
import { eventually, ManualClock } from './helpers.js';
import { listenUntilCleanup } from './support/cleanup.js';

/** A local receiver: `answer` handles each request; the ports of the sockets requests came on, in order. */
async function receiver(answer: (req: IncomingMessage, res: ServerResponse, body: string) => void): Promise<{ url: string; sockets: number[] }> {
  const sockets: number[] = [];
  const server = createServer((req, res) => {
    sockets.push(req.socket.remotePort ?? 0);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => answer(req, res, Buffer.concat(chunks).toString('utf8')));
  });
  return { url: `http://127.0.0.1:${await listenUntilCleanup(server)}/hook`, sockets };
}

const post = { headers: { 'content-type': 'application/json' }, body: '{"a":"é😀"}', timeoutMs: 10_000, maxBytes: 1000 };

describe('postText: the POST of webhooks and the publish hook (undici, not fetch)', () => {
  it('sends the body and headers, reads the answer, and reuses its connection for the next request', async () => {
    const r = await receiver((req, res, body) =>
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`${req.method} ${req.headers['content-type']} ${body}`),
    );
    expect(await postText(systemClock, r.url, post)).toEqual({ status: 200, text: 'POST application/json {"a":"é😀"}' });
    // The connection goes back to undici's pool once the answer is read, a turn after the promise settles.
    await new Promise((resolve) => setImmediate(resolve));
    expect((await postText(systemClock, r.url, post)).status).toBe(200);
    await new Promise((resolve) => setImmediate(resolve));
    expect((await postText(systemClock, r.url, post)).status).toBe(200);
    expect(r.sockets).toHaveLength(3);
    expect(new Set(r.sockets).size).toBe(1);
  });

  it('does not follow a redirect, and says nothing of an answer longer than it reads', async () => {
    const r = await receiver((req, res) => {
      if (req.url === '/hook') res.writeHead(307, { location: '/elsewhere' }).end();
      else res.writeHead(200).end('x'.repeat(5000));
    });
    expect(await postText(systemClock, r.url, post)).toEqual({ status: 307, text: '' });
    expect(await postText(systemClock, r.url.replace('/hook', '/big'), post)).toEqual({ status: 200, text: undefined });
    expect(r.sockets).toHaveLength(2);
  });

  it('gives up after its timeout on the injected clock, with a clear reason', async () => {
    const clock = new ManualClock();
    let arrived = false;
    const r = await receiver(() => {
      arrived = true; // never answered
    });
    const pending = postText(clock, r.url, { ...post, timeoutMs: 5000 });
    await eventually(() => (arrived ? true : undefined), 'the request at the receiver');
    clock.advance(5000);
    await expect(pending).rejects.toThrow('no answer within 5000 ms');
  });

  it('rejects when nobody listens', async () => {
    const r = await receiver(() => undefined);
    const url = r.url.replace(/:\d+\//, ':1/');
    await expect(postText(systemClock, url, post)).rejects.toThrow();
  });
});
