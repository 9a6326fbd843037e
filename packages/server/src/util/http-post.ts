import { request } from 'undici';
import type { Clock } from './clock.js';

/** What a POST got back: the status, and the body text unless it was longer than asked for (undefined). */
export interface PostAnswer {
  status: number;
  text: string | undefined;
}

/**
 * POSTs `body` to `url` (webhooks, the publish hook) with undici's `request` on its keep-alive pool, within
 * `timeoutMs` on `clock`, redirects not followed. Reads the answer to its end (so that the connection is reused)
 * unless it is longer than `maxBytes`: then it is dropped with its connection and `text` is undefined. Rejects when
 * the request fails, or with "no answer within <timeoutMs> ms".
 *
 * Not `fetch`: each `fetch` builds a graph of web streams, a Request, a Response and AbortSignals that lives past a
 * young-generation collection, so a few hundred requests a second promoted about 8 MB/s into the old generation and
 * made a full garbage collection every 8-9 s, each stalling the event loop 20-60 ms (docs/benchmarks.md).
 */
export async function postText(
  clock: Clock,
  url: string,
  o: { headers: Record<string, string>; body: string; timeoutMs: number; maxBytes: number },
): Promise<PostAnswer> {
  const abort = new AbortController();
  const timer = clock.setTimeout(() => abort.abort(), o.timeoutMs);
  try {
    const res = await request(url, { method: 'POST', headers: o.headers, body: o.body, signal: abort.signal });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > o.maxBytes) {
        // Longer than wanted: dropped (the connection with it), not read to its end.
        res.body.destroy();
        return { status: res.statusCode, text: undefined };
      }
      chunks.push(chunk);
    }
    return { status: res.statusCode, text: Buffer.concat(chunks, size).toString('utf8') };
  } catch (err) {
    if (abort.signal.aborted) throw new Error(`no answer within ${o.timeoutMs} ms`, { cause: err });
    throw err;
  } finally {
    clock.clearTimeout(timer);
  }
}
