/**
 * The delivery core without a server: a hub on a memory engine, the native protocol, and connections on
 * fake sockets, wired through the same narrow ports the gateway uses (no HTTP, no transport, no sleeps
 * beyond event-loop turns). Also a bare connection on a recording host and a stub protocol handler, for
 * what a connection does on its own.
 */
import type { Identity } from '../../src/auth/types.js';
import type { Auth } from '../../src/auth/types.js';
import { JwtAuth } from '../../src/auth/jwt-auth.js';
import { Connection, type ConnectionHost, type ConnectionLimits } from '../../src/delivery/connection.js';
import type { PacerTimers } from '../../src/delivery/flush-pacer.js';
import { Publisher } from '../../src/delivery/publisher.js';
import { Hub } from '../../src/delivery/hub.js';
import { InboxDelivery } from '../../src/delivery/inbox.js';
import type { CloseReason, Liveness, MessageCodec, ProtocolHandler } from '../../src/delivery/protocol.js';
import { Stats } from '../../src/delivery/stats.js';
import { createMemoryEngine } from '../../src/engine/memory/engine.js';
import type { Engine, Recovery } from '../../src/engine/types.js';
import { nativeCodec } from '../../src/protocols/native/codec.js';
import { createNativeProtocol, type NativeProtocolDeps } from '../../src/protocols/native/protocol.js';
import type { Socket } from '../../src/transport/types.js';
import { silentLogger } from '../../src/util/logger.js';
import { JWT_SECRET, ManualClock } from '../helpers.js';

/** A socket that records what is written to it, and in which order things happened. */
export class FakeSocket implements Socket {
  readonly writes: Buffer[][] = [];
  /** `send`, `close:<code>` and `ping`, in call order. */
  readonly events: string[] = [];
  bufferedAmount = 0;
  closedWith: { code: number; reason: string } | undefined;
  pings = 0;
  send(frames: readonly Buffer[]): void {
    this.writes.push([...frames]);
    this.events.push('send');
  }
  close(code: number, reason: string): void {
    this.closedWith = { code, reason };
    this.events.push(`close:${code}`);
  }
  ping(): void {
    this.pings += 1;
    this.events.push('ping');
  }
  /** Every frame written so far, parsed (batched lines split). */
  frames(): Array<Record<string, unknown>> {
    return this.writes.flat().flatMap((b) =>
      b
        .toString()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    );
  }
}

/** Options of the core harness. */
export interface CoreOptions {
  engine?: Engine;
  /** @default JwtAuth with the test JWT secret (helpers' `token` signs for it) */
  auth?: Auth;
  native?: Partial<NativeProtocolDeps>;
  limits?: Partial<ConnectionLimits>;
}

/**
 * Flush pacing for tests: every flush runs in the next setImmediate, whatever the previous one took (with
 * real timers a slow flush on a busy machine would push the next one to a timeout that `turn` does not wait for).
 */
const immediatePacer: PacerTimers = { now: () => 0, immediate: (fn) => void setImmediate(fn), after: (fn) => void setImmediate(fn) };

/** A hub, a native protocol and a way to open connections on fake sockets. */
export async function coreHarness(o: CoreOptions = {}) {
  const clock = new ManualClock();
  const engine = o.engine ?? createMemoryEngine({ clock });
  const stats = new Stats();
  const logger = silentLogger();
  const inbox = new InboxDelivery(engine, stats, logger, () => clock.now());
  const hub = new Hub(engine, logger, stats, { timers: immediatePacer, inbox });
  await engine.start(hub);
  const native = createNativeProtocol({
    paths: ['/ws'],
    subscriptions: hub,
    inbox,
    auth: o.auth ?? new JwtAuth({ secrets: [JWT_SECRET] }),
    stats,
    clock,
    logger,
    allowAnonymous: true,
    maxSubscriptions: 100,
    maxInvalidFrames: 10,
    liveness: { pingInterval: 25_000, idleTimeout: 60_000 },
    members: engine.members,
    broker: engine.broker,
    presenceMaxMembers: 100,
    publisher: new Publisher(engine, stats, hub),
    clientPublish: { rate: 10, userRate: 20, maxPayloadBytes: 16_384, hook: undefined, hookFailure: 'deny' },
    ...o.native,
  });
  const limits: ConnectionLimits = { connectTimeout: 10_000, clientRate: 50, clientBurst: 100, sendBufferLimit: 1_048_576, ...o.limits };
  /** Opens a connection on a fake socket (as the gateway's onSocket does). */
  const open = (id: string, socket = new FakeSocket()): { conn: Connection; socket: FakeSocket } => {
    const conn = new Connection(id, '127.0.0.1', socket, { host: hub, limits, stats, clock });
    conn.handler = native.open(conn, { path: '/ws', query: '', ip: '127.0.0.1', origin: undefined, headers: {} });
    hub.add(conn);
    return { conn, socket };
  };
  /** Sends a client frame. */
  const send = (conn: Connection, frame: object): void => conn.message(Buffer.from(JSON.stringify(frame)), false);
  /** Opens a connection, sends `connect` and waits until `connected` was written. */
  const connect = async (
    id: string,
    frame: Record<string, unknown> = {},
  ): Promise<{ conn: Connection; socket: FakeSocket; connected: Record<string, unknown> }> => {
    const { conn, socket } = open(id);
    send(conn, { type: 'connect', ...frame });
    const connected = await until(() => socket.frames().find((f) => f.type === 'connected'), `${id} connected`);
    return { conn, socket, connected };
  };
  return { clock, engine, stats, hub, open, send, connect, close: () => engine.close() };
}

/** Lets the hub's flush (setImmediate) and pending promises run. */
export const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * Runs event-loop turns until `check` returns a value (promises settle, the hub flushes); for the few steps
 * that leave the loop (WebCrypto verifying a token) it keeps turning, up to `timeoutMs` of real time.
 */
export async function until<T>(check: () => T | undefined, what: string, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await turn();
  }
}

/** A promise with its resolve function. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * `engine` whose `history.recover` waits for `release()` once called: `read` 'before' reads history after the
 * release (what was published meanwhile is in the result), 'after' reads it at the call (it is not).
 * `started` resolves when a recovery is being held.
 */
export function holdRecover(engine: Engine, read: 'before' | 'after') {
  const gate = deferred();
  const started = deferred();
  const history = {
    position: engine.history.position.bind(engine.history),
    read: engine.history.read.bind(engine.history),
    async recover(channel: string, since: number, epoch?: string): Promise<Recovery> {
      started.resolve();
      if (read === 'before') {
        await gate.promise;
        return engine.history.recover(channel, since, epoch);
      }
      const r = await engine.history.recover(channel, since, epoch);
      await gate.promise;
      return r;
    },
  };
  const held: Engine = {
    name: engine.name,
    broker: engine.broker,
    presence: engine.presence,
    inbox: engine.inbox,
    outbox: engine.outbox,
    members: engine.members,
    history,
    start: (h) => engine.start(h),
    check: () => engine.check(),
    close: () => engine.close(),
  };
  return { engine: held, release: () => gate.resolve(), started: started.promise };
}

/** A ConnectionHost that records what the connection asks of it. */
export class RecordingHost implements ConnectionHost {
  dirty = 0;
  removed = 0;
  markDirty(): void {
    this.dirty += 1;
  }
  remove(): void {
    this.removed += 1;
  }
}

/** A protocol handler that records the frames it gets and closes with the codes it is given. */
export class StubHandler implements ProtocolHandler {
  readonly codec: MessageCodec = nativeCodec;
  readonly liveness: Liveness = { pingInterval: 10_000, idleTimeout: 25_000 };
  readonly received: string[] = [];
  readonly asked: CloseReason[] = [];
  pinged = 0;
  closedCalls = 0;
  constructor(private readonly codes: Partial<Record<CloseReason, number>> = {}) {}
  message(data: Buffer): void {
    this.received.push(data.toString());
  }
  closeCode(reason: CloseReason, requested?: number): number {
    this.asked.push(reason);
    return requested ?? this.codes[reason] ?? 4999;
  }
  ping(): void {
    this.pinged += 1;
  }
  closed(): void {
    this.closedCalls += 1;
  }
}

/** One connection on its own: a fake socket, a recording host, a stub handler and a manual clock. */
export function bareConnection(o: { limits?: Partial<ConnectionLimits>; codes?: Partial<Record<CloseReason, number>>; identity?: Identity } = {}) {
  const clock = new ManualClock();
  const socket = new FakeSocket();
  const host = new RecordingHost();
  const stats = new Stats();
  const handler = new StubHandler(o.codes);
  const limits: ConnectionLimits = { connectTimeout: 10_000, clientRate: 50, clientBurst: 100, sendBufferLimit: 1_048_576, ...o.limits };
  const conn = new Connection('c1', '127.0.0.1', socket, { host, limits, stats, clock });
  conn.handler = handler;
  if (o.identity) conn.authenticate(o.identity);
  return { conn, socket, host, stats, handler, clock };
}
