import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { bodyTooLarge, ClientAbortedError, type HttpHeaders, type HttpRequest, type HttpRequestHandler, type HttpResponse } from '../http.js';

/** Reads a Node request's body whole, at most `max` bytes (see HttpRequest.body). */
function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (c: Buffer): void => {
      size += c.length;
      if (size > max) {
        done();
        // The rest is read and dropped; the answer closes the connection.
        req.resume();
        reject(bodyTooLarge(max));
        return;
      }
      chunks.push(c);
    };
    const onEnd = (): void => {
      done();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    };
    const onError = (err: Error): void => {
      done();
      reject(new ClientAbortedError(err));
    };
    const onClose = (): void => {
      done();
      reject(new ClientAbortedError());
    };
    if (req.readableEnded) {
      resolve(Buffer.alloc(0));
      return;
    }
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

/**
 * Node's request and response behind HttpRequest/HttpResponse: one object, the Node objects used as they are.
 * Headers set before `writeHead` are kept here and passed to Node's `writeHead` in one object (Node validates
 * and stores each header set with `setHeader` once more when `writeHead` follows).
 */
class NodeExchange implements HttpRequest, HttpResponse {
  private pending: HttpHeaders | undefined;

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
  ) {}

  get method(): string {
    return this.req.method ?? 'GET';
  }
  get url(): string {
    return this.req.url ?? '/';
  }
  get headers(): IncomingHttpHeaders {
    return this.req.headers;
  }
  get remoteAddress(): string | undefined {
    return this.req.socket.remoteAddress;
  }
  get httpVersion(): string {
    return this.req.httpVersion;
  }
  body(maxBytes: number): Promise<Buffer> {
    return readBody(this.req, maxBytes);
  }
  get statusCode(): number {
    return this.res.statusCode;
  }
  get headersSent(): boolean {
    return this.res.headersSent;
  }
  setHeader(name: string, value: string): void {
    if (this.res.headersSent) return;
    (this.pending ??= {})[name.toLowerCase()] = value;
  }
  writeHead(status: number, headers?: HttpHeaders): this {
    const pending = this.pending;
    if (pending === undefined) {
      this.res.writeHead(status, headers);
      return this;
    }
    this.pending = undefined;
    if (headers !== undefined) for (const k of Object.keys(headers)) pending[k.toLowerCase()] = headers[k] as string | number;
    this.res.writeHead(status, pending);
    return this;
  }
  end(body?: string | Buffer): void {
    const pending = this.pending;
    if (pending !== undefined) {
      // Answered without writeHead: Node writes the status and these headers.
      this.pending = undefined;
      for (const k of Object.keys(pending)) this.res.setHeader(k, String(pending[k]));
    }
    this.res.end(body);
  }
  destroy(): void {
    this.res.destroy();
  }
  onClose(cb: () => void): void {
    // 'close' is emitted once: no once() wrapper needed.
    this.res.on('close', cb);
  }
}

/** The `request` listener of Node's `http.Server` for a gateway handler. */
export function nodeHttp(handler: HttpRequestHandler): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const x = new NodeExchange(req, res);
    handler(x, x);
  };
}
