/**
 * The plain HTTP request and response the gateway's routes run on, whatever serves the port: Node's
 * `http.Server` (the `ws` transport, `ws/http.ts`) or uWebSockets.js natively (`uws/http.ts`). The shape is
 * the part of Node's `IncomingMessage`/`ServerResponse` the routes use, plus `body()`.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { HeraldError } from '../util/errors.js';

/** A request, read whole before the handler runs (except its body). */
export interface HttpRequest {
  /** Upper case (`GET`, `POST`). */
  readonly method: string;
  /** The request target as sent: path and `?query`. */
  readonly url: string;
  /** Lower-case names, as Node gives them. */
  readonly headers: IncomingHttpHeaders;
  /** The TCP peer's address. */
  readonly remoteAddress: string | undefined;
  /** `1.1` or `1.0`. */
  readonly httpVersion: string;
  /**
   * The whole body, at most `maxBytes`: rejects with a `body_too_large` HeraldError (413) beyond it, as soon as
   * it is known, and with `ClientAbortedError` when the client goes away first. Call it once.
   */
  body(maxBytes: number): Promise<Buffer>;
}

/** Header values as `writeHead` takes them. */
export type HttpHeaders = Record<string, string | number>;

/** The answer to a request. Every method is a no-op once the client is gone. */
export interface HttpResponse {
  /** The status written by `writeHead` (200 until then). */
  readonly statusCode: number;
  readonly headersSent: boolean;
  /** A header for the answer (merged under the ones `writeHead` is given). */
  setHeader(name: string, value: string): void;
  writeHead(status: number, headers?: HttpHeaders): this;
  /** Sends the answer (writeHead first), with `body` unless the request was HEAD. */
  end(body?: string | Buffer): void;
  /** Drops the connection without an answer. */
  destroy(): void;
  /** Called once when the answer has been handed over, or the connection is gone. */
  onClose(cb: () => void): void;
}

/** What a transport calls for every plain HTTP request (not a WebSocket upgrade). */
export type HttpRequestHandler = (req: HttpRequest, res: HttpResponse) => void;

/** The client closed the connection before its request body was complete. */
export class ClientAbortedError extends Error {
  constructor(cause?: unknown) {
    super('client aborted the request', { cause });
    this.name = 'ClientAbortedError';
  }
}

/**
 * The most bytes a body refused as too large may declare and still be read and dropped after the answer, the
 * connection kept: closing it under a client still sending makes the kernel reset it, and the client then reports a
 * send failure instead of the answer (curl: "Send failure: Broken pipe"). Node's server reads and drops a body nobody
 * read once the answer is sent.
 */
export const DRAIN_MAX = 16 * 1024 * 1024;

/** Whether the answer to `req`'s body refused as too large closes the connection: its length unknown or over DRAIN_MAX. */
export function closesAfterRefusedBody(req: HttpRequest): boolean {
  return !(Number(req.headers['content-length'] ?? Infinity) <= DRAIN_MAX);
}

/** The 413 of a body over `max` bytes. */
export function bodyTooLarge(max: number): HeraldError {
  return new HeraldError('body_too_large', `the request body exceeds ${max} bytes`, { extra: { limit: max } });
}
