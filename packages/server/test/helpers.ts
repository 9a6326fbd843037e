/**
 * Test helpers: a manual clock, a gateway on port 0 with automatic disposal, a WebSocket test client that
 * queues every frame so none is missed, and small HTTP API helpers.
 */
import { SignJWT } from 'jose';
import { pino } from 'pino';
import WebSocket from 'ws';
import type { Clock, TimerHandle } from '../src/util/clock.js';
import { createGateway, type Gateway } from '../src/gateway/gateway.js';
import { silentLogger } from '../src/util/logger.js';
import type { GatewayOptions } from '../src/gateway/options.js';
import { onCleanup } from './support/cleanup.js';

/** The transport the protocol suites run on: `ws` by default, `uws` with HERALD_TEST_TRANSPORT=uws. */
export const TEST_TRANSPORT: 'ws' | 'uws' = process.env['HERALD_TEST_TRANSPORT'] === 'uws' ? 'uws' : 'ws';

export const API_KEY = 'test_api_key_0123456789';
export const JWT_SECRET = 'test_jwt_secret_0123456789_0123456789_abcdef';

/** A clock that only moves when told to; `advance` fires due timers (intervals and timeouts) in time order. */
export class ManualClock implements Clock {
  private t: number;
  /** `ms` 0: a one-shot timeout, removed when it fires. */
  private timers = new Map<number, { fn: () => void; ms: number; next: number }>();
  private ids = 0;

  constructor(start = 1_800_000_000_000) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setInterval(fn: () => void, ms: number): TimerHandle {
    const id = ++this.ids;
    this.timers.set(id, { fn, ms: Math.max(1, ms), next: this.t + ms });
    return id as unknown as TimerHandle;
  }

  clearInterval(handle: TimerHandle): void {
    this.timers.delete(handle as unknown as number);
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.ids;
    this.timers.set(id, { fn, ms: 0, next: this.t + Math.max(0, ms) });
    return id as unknown as TimerHandle;
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers.delete(handle as unknown as number);
  }

  /** Timers waiting to fire. */
  get pending(): number {
    return this.timers.size;
  }

  /** Moves time forward by `ms`, running every timer that falls due, in time order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let due: [number, { fn: () => void; ms: number; next: number }] | undefined;
      for (const entry of this.timers) if (entry[1].next <= end && (!due || entry[1].next < due[1].next)) due = entry;
      if (!due) break;
      const [id, timer] = due;
      this.t = timer.next;
      if (timer.ms === 0) this.timers.delete(id);
      else timer.next += timer.ms;
      timer.fn();
    }
    this.t = end;
  }
}

/** Registers cleanup run after the current test (reverse order); the client's test harness shares it. */
export { onCleanup };

export interface TestGateway {
  gateway: Gateway;
  clock: ManualClock;
  http: string;
  ws: string;
}

/** Starts a gateway on 127.0.0.1:0 with a manual clock, a test API key and JWT secret; closed after the test. */
export async function startGateway(opts: GatewayOptions = {}): Promise<TestGateway> {
  // A test may bring its own manual clock (one that starts at the real time, for signed requests).
  const clock = opts.clock instanceof ManualClock ? opts.clock : new ManualClock();
  const gateway = await createGateway({
    port: 0,
    apiKeys: [API_KEY],
    jwtSecrets: [JWT_SECRET],
    allowAnonymous: true,
    logger: silentLogger(),
    shutdownTimeout: 2000,
    // HERALD_TEST_TRANSPORT=uws runs the same protocol suites on the uWebSockets.js transport.
    transport: TEST_TRANSPORT,
    clock,
    ...opts,
  });
  onCleanup(() => gateway.close());
  const { port } = gateway.address();
  return { gateway, clock, http: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}/ws` };
}

const CONTROL = new Set(['connected', 'subscribed', 'unsubscribed', 'error', 'pong', 'published', 'acked']);

/**
 * Polls `check` until it returns a value other than undefined: for server-side state that has no event
 * to wait on (a connection count, a metric). Fails after `timeoutMs`.
 */
export async function eventually<T>(check: () => T | undefined | Promise<T | undefined>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A frame as the test client received it (parsed JSON). */
export type Frame = Record<string, unknown> & { type: string };

/** A WebSocket client for tests: frames are queued in arrival order; `next` waits for the next one. */
export class TestClient {
  readonly ws: WebSocket;
  readonly frames: Frame[] = [];
  /** Raw text of each WebSocket message (a batched message holds several frames). */
  readonly raw: string[] = [];
  private waiters: Array<() => void> = [];
  closeCode: number | undefined;
  closeReason: string | undefined;
  pings = 0;
  private readonly opened: Promise<void>;
  private readonly closedP: Promise<{ code: number; reason: string }>;

  constructor(url: string, options: WebSocket.ClientOptions = {}) {
    this.ws = new WebSocket(url, options);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    this.ws.on('error', () => undefined);
    this.ws.on('ping', () => {
      this.pings += 1;
      this.wake();
    });
    this.ws.on('message', (data, isBinary) => {
      const text = isBinary ? `<binary ${(data as Buffer).length}>` : (data as Buffer).toString('utf8');
      this.raw.push(text);
      for (const line of text.split('\n')) this.frames.push(JSON.parse(line) as Frame);
      this.wake();
    });
    this.closedP = new Promise((resolve) => {
      this.ws.once('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
        this.wake();
        resolve({ code, reason: reason.toString() });
      });
    });
    onCleanup(() => this.terminate());
  }

  static async open(url: string, options: WebSocket.ClientOptions = {}): Promise<TestClient> {
    const c = new TestClient(url, options);
    await c.opened;
    return c;
  }

  /** Opens a connection and completes the connect handshake; returns the client and its `connected` frame. */
  static async connect(url: string, connect: Record<string, unknown> = {}): Promise<{ client: TestClient; connected: Frame }> {
    const client = await TestClient.open(url);
    client.send({ type: 'connect', ...connect });
    const connected = await client.next();
    if (connected.type !== 'connected') throw new Error(`expected connected, got ${JSON.stringify(connected)}`);
    return { client, connected };
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const fn of w) fn();
  }

  private cursor = 0;

  /** Waits until `until` holds, re-checking on every frame or close. */
  async waitFor<T>(check: () => T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = check();
      if (v !== undefined) return v;
      if (this.closeCode !== undefined) throw new Error(`connection closed (${this.closeCode} ${this.closeReason}) while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; frames: ${JSON.stringify(this.frames.slice(-5))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** The next frame not yet consumed by `next`/`nextOf`. */
  next(timeoutMs?: number): Promise<Frame> {
    return this.waitFor(() => (this.cursor < this.frames.length ? this.frames[this.cursor++] : undefined), 'next frame', timeoutMs);
  }

  /** Skips to the next frame matching `pred` (skipped frames stay in `frames`). */
  nextWhere(pred: (f: Frame) => boolean, what = 'matching frame', timeoutMs?: number): Promise<Frame> {
    return this.waitFor(
      () => {
        while (this.cursor < this.frames.length) {
          const f = this.frames[this.cursor++] as Frame;
          if (pred(f)) return f;
        }
        return undefined;
      },
      what,
      timeoutMs,
    );
  }

  nextOf(type: string, timeoutMs?: number): Promise<Frame> {
    return this.nextWhere((f) => f.type === type, `a ${type} frame`, timeoutMs);
  }

  /** Messages (application frames) of `channel` received so far. */
  messages(channel: string): Frame[] {
    return this.frames.filter((f) => f.channel === channel && typeof f.seq === 'number' && !CONTROL.has(f.type));
  }

  /** Waits until `n` messages of `channel` arrived. */
  waitMessages(channel: string, n: number, timeoutMs?: number): Promise<Frame[]> {
    return this.waitFor(
      () => {
        const m = this.messages(channel);
        return m.length >= n ? m : undefined;
      },
      `${n} messages on ${channel}`,
      timeoutMs,
    );
  }

  /**
   * A protocol-level ping/pong round trip. The server neither counts it as liveness nor answers it in
   * the app protocol, so once it completes every frame sent before it has been processed by the server.
   */
  roundTrip(): Promise<void> {
    return new Promise((resolve) => {
      this.ws.once('pong', () => resolve());
      this.ws.ping();
    });
  }

  send(frame: unknown): void {
    this.ws.send(JSON.stringify(frame));
  }

  sendRaw(data: string | Buffer, binary = false): void {
    this.ws.send(data, { binary });
  }

  /** Resolves with the close code and reason. */
  closed(timeoutMs = 10_000): Promise<{ code: number; reason: string }> {
    return Promise.race([
      this.closedP,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no close within ${timeoutMs} ms`)), timeoutMs).unref()),
    ]);
  }

  terminate(): void {
    this.ws.terminate();
  }
}

/** Calls the HTTP API with the test key (or `key`), returning status, parsed body and headers. */
export async function api(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  init: { key?: string | null; headers?: Record<string, string>; raw?: string | Buffer } = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const headers: Record<string, string> = { ...init.headers };
  const key = init.key === undefined ? API_KEY : init.key;
  if (key !== null) headers['authorization'] = `Bearer ${key}`;
  let payload: string | Buffer | undefined = init.raw;
  if (body !== undefined) payload = JSON.stringify(body);
  if (payload !== undefined && headers['content-type'] === undefined) headers['content-type'] = 'application/json';
  const res = await fetch(base + path, { method, headers, ...(payload === undefined ? {} : { body: new Uint8Array(Buffer.from(payload)) }) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON: keep the text */
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

/** Publishes one message and returns the parsed response (throws on a non-200). */
export async function publish(base: string, body: Record<string, unknown>): Promise<any> {
  const r = await api(base, 'POST', '/api/publish', body);
  if (r.status !== 200) throw new Error(`publish failed: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** Signs a connection token with the test secret (HS256 unless `alg` says otherwise). */
export async function token(
  claims: Record<string, unknown>,
  opts: { secret?: string; alg?: string; expiresAt?: number; issuedAt?: number } = {},
): Promise<string> {
  let jwt = new SignJWT(claims).setProtectedHeader({ alg: opts.alg ?? 'HS256' });
  if (opts.issuedAt !== undefined) jwt = jwt.setIssuedAt(opts.issuedAt);
  if (opts.expiresAt !== undefined) jwt = jwt.setExpirationTime(opts.expiresAt);
  return jwt.sign(new TextEncoder().encode(opts.secret ?? JWT_SECRET));
}

/** Seconds since the epoch for a manual clock time. */
export const secondsOf = (ms: number): number => Math.floor(ms / 1000);

/** A pino logger that keeps every entry at `level` (warn) or above. */
export function capturingLogger(level: 'info' | 'warn' = 'warn'): { logger: NonNullable<GatewayOptions['logger']>; entries: Array<Record<string, unknown>> } {
  const entries: Array<Record<string, unknown>> = [];
  const logger = pino({ level }, { write: (line: string) => void entries.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, entries };
}
