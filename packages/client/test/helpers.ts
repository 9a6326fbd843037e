// Test doubles: a manual clock, a scriptable WebSocket, page lifecycle hooks and a recording logger.
// Nothing here sleeps; time moves only when a test calls clock.advance().
import { HeraldClient, type Clock, type Environment, type HeraldClientOptions, type Logger, type StateChange } from '../src/index.js';
import type { HeraldError } from '../src/errors.js';
import type { Message } from '../src/types.js';

/** A clock whose time only moves in `advance()`; timers fire in due order. */
export class FakeClock implements Clock {
  private t = 0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    if (typeof handle === 'number') this.timers.delete(handle);
  }

  /** Number of pending timers. */
  get pending(): number {
    return this.timers.size;
  }

  /** Moves time forward by `ms`, firing every timer that falls due (including ones scheduled meanwhile). */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.timers) if (entry[1].at <= end && (!next || entry[1].at < next[1].at)) next = entry;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
}

interface MessageEventLike {
  data: unknown;
}
interface CloseEventLike {
  code: number;
  reason: string;
}

/** A WebSocket the test drives by hand. Nothing happens unless the test says so. */
export class FakeSocket {
  readyState = 0;
  readonly sent: string[] = [];
  closedWith: { code: number | undefined; reason: string | undefined } | undefined;
  onopen: ((ev: object) => void) | null = null;
  onmessage: ((ev: MessageEventLike) => void) | null = null;
  onclose: ((ev: CloseEventLike) => void) | null = null;
  onerror: ((ev: object) => void) | null = null;

  constructor(readonly url: string) {}

  send(data: string): void {
    if (this.readyState !== 1) throw new Error('InvalidStateError: not open');
    this.sent.push(data);
  }

  close(code?: number, reason?: string): void {
    this.closedWith = { code, reason };
    this.readyState = 2;
  }

  // ---- driven by tests ----

  /** The server accepted the WebSocket upgrade. */
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  /** A frame from the server: plain objects and arrays are JSON-encoded, anything else (strings, binary) is passed as is. */
  receive(data: unknown): void {
    const plain = Array.isArray(data) || (typeof data === 'object' && data !== null && Object.getPrototypeOf(data) === Object.prototype);
    this.onmessage?.({ data: plain ? JSON.stringify(data) : data });
  }

  /** Several frames in one `\n`-batched WebSocket message. */
  receiveBatch(frames: object[]): void {
    this.onmessage?.({ data: frames.map((f) => JSON.stringify(f)).join('\n') });
  }

  /** The socket closed (by the server or the network). */
  serverClose(code: number, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }

  /** Every frame the client sent, parsed. */
  frames(): Array<Record<string, unknown>> {
    return this.sent.map((s) => JSON.parse(s) as Record<string, unknown>);
  }

  /** Frames of one type. */
  framesOf(type: string): Array<Record<string, unknown>> {
    return this.frames().filter((f) => f['type'] === type);
  }

  /** The last frame sent. */
  last(): Record<string, unknown> | undefined {
    return this.frames().at(-1);
  }
}

/** A WebSocket class whose instances the test can reach. */
export function fakeWebSocket(): { WebSocket: new (url: string) => FakeSocket; sockets: FakeSocket[] } {
  const sockets: FakeSocket[] = [];
  class WebSocket extends FakeSocket {
    constructor(url: string) {
      super(url);
      sockets.push(this);
    }
  }
  return { WebSocket, sockets };
}

/** Page lifecycle hooks the test fires by hand. */
export class FakeEnvironment implements Environment {
  online = new Set<() => void>();
  visible = new Set<() => void>();

  onOnline(fn: () => void): () => void {
    this.online.add(fn);
    return () => this.online.delete(fn);
  }

  onVisible(fn: () => void): () => void {
    this.visible.add(fn);
    return () => this.visible.delete(fn);
  }

  goOnline(): void {
    for (const fn of [...this.online]) fn();
  }

  becomeVisible(): void {
    for (const fn of [...this.visible]) fn();
  }
}

/** A logger that remembers what it was told. */
export class RecordingLogger implements Logger {
  readonly warnings: Array<{ message: string; data: unknown }> = [];
  readonly debugs: Array<{ message: string; data: unknown }> = [];
  debug(message: string, data?: unknown): void {
    this.debugs.push({ message, data });
  }
  warn(message: string, data?: unknown): void {
    this.warnings.push({ message, data });
  }
}

/** A client wired to fakes, with every event it emits recorded. */
export function setup(options: Partial<HeraldClientOptions> = {}) {
  const clock = new FakeClock();
  const env = new FakeEnvironment();
  const logger = new RecordingLogger();
  const { WebSocket, sockets } = fakeWebSocket();
  const client = new HeraldClient({
    url: 'ws://herald.test/ws',
    WebSocket,
    clock,
    logger,
    environment: env,
    random: () => 0.5,
    ...options,
  });
  const states: StateChange[] = [];
  const errors: HeraldError[] = [];
  const messages: Message[] = [];
  client.on('state', (s) => states.push(s));
  client.on('error', (e) => errors.push(e));
  client.on('message', (m) => messages.push(m));
  /** The current (latest) socket. */
  const socket = (): FakeSocket => {
    const s = sockets.at(-1);
    if (!s) throw new Error('no socket yet');
    return s;
  };
  return { client, clock, env, logger, sockets, socket, states, errors, messages };
}

/** A subscription result. */
export const result = (seq: number, epoch = 'e1', recovered = true) => ({ seq, epoch, recovered });

/** A `connected` frame. */
export function connectedFrame(subs: Record<string, { seq: number; epoch: string; recovered: boolean }> = {}, user: string | null = '42', ping = 25_000) {
  return { type: 'connected', client: 'c1', user, ping, subs };
}

/** An application message. */
export const msg = (channel: string, seq: number, payload: object = { n: seq }, type = 'update') => ({ type, channel, payload, seq });

/** Opens the current socket and answers the connect frame. */
export function handshake(socket: FakeSocket, subs: Record<string, { seq: number; epoch: string; recovered: boolean }> = {}, user: string | null = '42'): void {
  socket.open();
  socket.receive(connectedFrame(subs, user));
}

/** Lets pending promise callbacks run (getToken). */
export const flush = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};
