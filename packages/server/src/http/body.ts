import type { IncomingMessage } from 'node:http';
import { HeraldError } from '../util/errors.js';

/**
 * Reads a JSON request body. The content type must be `application/json` (415 otherwise); bodies over
 * `maxBytes` are refused with 413 before they are read whole. The bytes are decoded as UTF-8 with invalid
 * sequences replaced by U+FFFD (never rejected), so emoji and CJK text pass through unchanged.
 */
export async function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const type = (req.headers['content-type'] ?? '').split(';', 1)[0]?.trim().toLowerCase();
  if (type !== 'application/json') {
    throw new HeraldError('unsupported_media_type', 'the request body must be application/json', { field: 'content-type' });
  }
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge(maxBytes);
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req) {
      const buf = chunk as Buffer;
      size += buf.length;
      if (size > maxBytes) throw tooLarge(maxBytes);
      chunks.push(buf);
    }
  } catch (err) {
    if (err instanceof HeraldError) throw err;
    // The client went away mid-body: nobody is left to answer.
    throw new ClientAbortedError(err);
  }
  let text = Buffer.concat(chunks, size).toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new HeraldError('invalid_body', 'the request body is not valid JSON');
  }
}

/** The client closed the connection before its request body was complete. */
export class ClientAbortedError extends Error {
  constructor(cause: unknown) {
    super('client aborted the request', { cause });
    this.name = 'ClientAbortedError';
  }
}

function tooLarge(max: number): HeraldError {
  return new HeraldError('body_too_large', `the request body exceeds ${max} bytes`, { extra: { limit: max } });
}
