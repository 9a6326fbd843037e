import { STATUS_CODES, type IncomingHttpHeaders } from 'node:http';
import { handshakeProblem, rejectionResponse, type Rejection } from '../admission.js';
import {
  bodyTooLarge,
  ClientAbortedError,
  closesAfterRefusedBody,
  type HttpHeaders,
  type HttpRequest,
  type HttpRequestHandler,
  type HttpResponse,
} from '../http.js';
import type { UwsRequest, UwsResponse } from './module.js';

/** Headers uWebSockets.js writes itself (`content-length`, `date`) or that say how the connection goes (`connection`). */
const OWN_HEADERS = new Set(['content-length', 'connection', 'date', 'transfer-encoding', 'keep-alive']);

/**
 * A `Connection` header of an answer: `close` is uWebSockets.js's to write (it closes after the answer: true);
 * another value (`Upgrade` beside a 426) is written as given, as Node's server does.
 */
function connectionHeader(res: UwsResponse, name: string, value: string): boolean {
  if (value.toLowerCase() === 'close') return true;
  res.writeHeader(name, value);
  return false;
}

/** Bodies larger than this go out with `tryEnd`/`onWritable` (backpressure) instead of one `end`. */
const LARGE_BODY = 64 * 1024;

const statusLines = new Map<number, string>();
function statusLine(status: number): string {
  let line = statusLines.get(status);
  if (line === undefined) {
    line = `${status} ${STATUS_CODES[status] ?? ''}`;
    statusLines.set(status, line);
  }
  return line;
}

const METHODS: Record<string, string> = { get: 'GET', post: 'POST', head: 'HEAD', delete: 'DELETE', put: 'PUT', options: 'OPTIONS', patch: 'PATCH' };

/**
 * Request headers of which Node's `IncomingMessage` keeps the first when one is repeated (an `Authorization` or
 * `Host` added after the first does not count); it joins the others (`Cookie` with "; ", the rest with ", ").
 */
const FIRST_WINS = new Set([
  'age',
  'authorization',
  'content-type',
  'etag',
  'expires',
  'from',
  'host',
  'if-modified-since',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'referer',
  'retry-after',
  'server',
  'user-agent',
]);

/** The headers `readHeader` fills: set around the synchronous `req.forEach` call (no closure per request). */
let reading: IncomingHttpHeaders | undefined;
/** Reads one request header as Node does (see FIRST_WINS); a repeated `Content-Length` is kept joined, to be refused. */
function readHeader(k: string, v: string): void {
  const headers = reading as IncomingHttpHeaders;
  const prev = headers[k];
  if (prev === undefined) headers[k] = v;
  else if (!FIRST_WINS.has(k)) headers[k] = `${String(prev)}${k === 'cookie' ? '; ' : ', '}${v}`;
}

/** A request's headers, read as Node reads them (see readHeader); only while `req` is valid (in its handler). */
export function readHeaders(req: UwsRequest): IncomingHttpHeaders {
  const headers: IncomingHttpHeaders = {};
  reading = headers;
  req.forEach(readHeader);
  reading = undefined;
  return headers;
}

/**
 * Whether uWebSockets.js framed a request by a `Content-Length` that Node's parser refuses: repeated, or not a
 * number. uWebSockets.js reads the body by the first one and the bytes after it as the next request: request
 * smuggling, behind a proxy that reads the other one.
 */
function badLength(x: UwsExchange): boolean {
  const length = x.headers['content-length'];
  return length !== undefined && !/^\d+$/.test(length);
}

/** An upgrade request that is not a valid WebSocket handshake (a valid one goes to the upgrade handler, not here). */
function badUpgrade(x: UwsExchange): Rejection | undefined {
  return x.headers.upgrade !== undefined && /\bupgrade\b/i.test(String(x.headers.connection)) ? handshakeProblem(x.method, x.headers) : undefined;
}

/** The exchange (and body) `corkedEnd` writes: set around the synchronous `res.cork` call. */
let corking: UwsExchange | undefined;
let corkingBody: string | Buffer | undefined;
function corkedEnd(): void {
  corking?.write(corkingBody);
}

type Waiter = { max: number; resolve: (b: Buffer) => void; reject: (e: Error) => void };

/**
 * One plain HTTP request served natively by uWebSockets.js: the request (read whole from `req` while it is
 * valid: the handler's synchronous part) and its response in one object. The body is collected from
 * `onData` as it arrives (copied: uWebSockets.js reuses the memory), at most `maxBody` bytes before a route
 * asks for it with a limit. The answer is written corked (one syscall), large bodies with backpressure. After
 * `onAborted` (the client went away), the uWS response is never touched again: every method is a no-op.
 */
export class UwsExchange implements HttpRequest, HttpResponse {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  /** uWebSockets.js answers HTTP/1.0 with 505 itself. */
  readonly httpVersion = '1.1';
  private address: string | undefined;
  statusCode = 200;
  headersSent = false;
  private aborted = false;
  private ended = false;
  private head: HttpHeaders | undefined;
  /** Headers set before `writeHead`, by lower-case name. */
  private pending: Record<string, string> | undefined;
  private closeCbs: (() => void) | Array<() => void> | undefined;
  private chunks: Buffer[] = [];
  private size = 0;
  private complete: boolean;
  private overflow = false;
  private waiter: Waiter | undefined;

  constructor(
    private readonly res: UwsResponse,
    req: UwsRequest,
    private readonly maxBody: number,
  ) {
    const m = req.getMethod();
    this.method = METHODS[m] ?? m.toUpperCase();
    const query = req.getQuery();
    this.url = query ? `${req.getUrl()}?${query}` : req.getUrl();
    this.headers = readHeaders(req);
    const headers = this.headers;
    const length = headers['content-length'];
    this.complete = headers['transfer-encoding'] === undefined && (length === undefined || length === '0');
    res.onAborted(() => this.abort());
    if (!this.complete) res.onData((chunk, isLast) => this.data(chunk, isLast));
  }

  /** Read from uWebSockets.js when first asked (few routes do), while the response is still valid. */
  get remoteAddress(): string | undefined {
    if (this.address === undefined && !this.aborted && !this.ended) this.address = Buffer.from(this.res.getRemoteAddressAsText()).toString();
    return this.address;
  }

  body(maxBytes: number): Promise<Buffer> {
    if (this.aborted) return Promise.reject(new ClientAbortedError());
    if (this.overflow || this.size > maxBytes) return Promise.reject(bodyTooLarge(maxBytes));
    if (this.complete) return Promise.resolve(this.whole());
    return new Promise((resolve, reject) => {
      this.waiter = { max: maxBytes, resolve, reject };
    });
  }

  private whole(): Buffer {
    const { chunks } = this;
    const b = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, this.size);
    this.chunks = [];
    return b;
  }

  private data(chunk: ArrayBuffer, isLast: boolean): void {
    if (this.overflow) return;
    this.size += chunk.byteLength;
    const w = this.waiter;
    if (this.size > (w ? w.max : this.maxBody) || this.ended) {
      // Too large, or answered already: the rest is not kept (the answer closes the connection).
      this.overflow = true;
      this.chunks = [];
      if (w) {
        this.waiter = undefined;
        w.reject(bodyTooLarge(w.max));
      }
      return;
    }
    this.chunks.push(Buffer.from(new Uint8Array(chunk)));
    if (!isLast) return;
    this.complete = true;
    if (w) {
      this.waiter = undefined;
      w.resolve(this.whole());
    }
  }

  private abort(): void {
    this.aborted = true;
    this.chunks = [];
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      w.reject(new ClientAbortedError());
    }
    this.runClose();
  }

  /** Runs the close callbacks (once). */
  runClose(): void {
    const cbs = this.closeCbs;
    this.closeCbs = undefined;
    if (cbs === undefined) return;
    if (typeof cbs === 'function') cbs();
    else for (const cb of cbs) cb();
  }

  onClose(cb: () => void): void {
    if (this.aborted || this.ended) {
      cb();
      return;
    }
    const cbs = this.closeCbs;
    this.closeCbs = cbs === undefined ? cb : typeof cbs === 'function' ? [cbs, cb] : (cbs.push(cb), cbs);
  }

  setHeader(name: string, value: string): void {
    if (!this.headersSent) (this.pending ??= {})[name.toLowerCase()] = value;
  }

  writeHead(status: number, headers?: HttpHeaders): this {
    if (this.headersSent) return this;
    this.statusCode = status;
    this.head = headers;
    this.headersSent = true;
    return this;
  }

  end(body?: string | Buffer): void {
    if (this.aborted || this.ended) return;
    this.ended = true;
    // A body still arriving is not kept from here on.
    this.chunks = [];
    // Corked: status, headers and body leave in one write. The callback is one function for every exchange.
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- one cork callback for every answer, no closure each
    corking = this;
    corkingBody = body;
    this.res.cork(corkedEnd);
    corking = undefined;
    corkingBody = undefined;
    this.runClose();
  }

  /** Writes the answer (inside `cork`). */
  write(body: string | Buffer | undefined): void {
    const { res, head, pending } = this;
    res.writeStatus(statusLine(this.statusCode));
    // A body not read whole: uWebSockets.js reads the rest (dropped in `data`) and frames the next request after it
    // when its length was declared, up to DRAIN_MAX; otherwise the connection closes (see closesAfterRefusedBody).
    let close = !this.complete && closesAfterRefusedBody(this);
    if (pending !== undefined) {
      for (const k of Object.keys(pending)) {
        if (head !== undefined && head[k] !== undefined) continue;
        const v = pending[k] as string;
        if (!OWN_HEADERS.has(k)) res.writeHeader(k, v);
        else if (k === 'connection') close = connectionHeader(res, k, v) || close;
      }
    }
    if (head !== undefined) {
      for (const k of Object.keys(head)) {
        const v = String(head[k]);
        const lower = k.toLowerCase();
        if (!OWN_HEADERS.has(lower)) res.writeHeader(k, v);
        else if (lower === 'connection') close = connectionHeader(res, k, v) || close;
      }
    }
    // HEAD: uWebSockets.js (20.x) takes a response ended with endWithoutBody(n > 0) for one still owing n bytes of
    // body: the connection then answers nothing more and never times out (one socket held per HEAD request). So
    // a HEAD answer says `Content-Length: 0`, whatever the GET's would be.
    if (this.method === 'HEAD') res.endWithoutBody(0, close);
    else if (body !== undefined && body.length > LARGE_BODY && !close) this.endLarge(typeof body === 'string' ? Buffer.from(body) : body);
    else res.end(body ?? '', close);
  }

  /** Writes a large body as the socket takes it (`onWritable`), keeping only what is not sent yet. */
  private endLarge(body: Buffer): void {
    const res = this.res;
    const start = res.getWriteOffset();
    const [ok, done] = res.tryEnd(body, body.length);
    if (ok || done) return;
    res.onWritable((offset) => {
      if (this.aborted) return true;
      const [ok2] = res.tryEnd(body.subarray(offset - start), body.length);
      return ok2;
    });
  }

  destroy(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.chunks = [];
    if (!this.ended) this.res.close();
    this.runClose();
  }
}

/** The handler for `app.any('/*')`: every plain HTTP request, served natively. */
export function nativeHttp(handler: HttpRequestHandler, maxBody: number, onRefused: () => void = () => undefined): (res: UwsResponse, req: UwsRequest) => void {
  return (res, req) => {
    const x = new UwsExchange(res, req, maxBody);
    if (badLength(x)) {
      // Dropped without an answer: uWebSockets.js would read on after an answer (even one that closes the
      // connection), and closing at once discards what was written. Node's parser answers 400 here.
      onRefused();
      x.destroy();
      return;
    }
    const refused = badUpgrade(x);
    if (refused === undefined) {
      handler(x, x);
      return;
    }
    onRefused();
    const { headers, body } = rejectionResponse(refused);
    x.writeHead(refused.status, { ...headers, connection: 'close' });
    x.end(body);
  };
}
