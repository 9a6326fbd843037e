/**
 * The delivery core without a server: a hub on a memory engine, the native protocol, and connections on
 * fake sockets, wired through the same narrow ports the gateway uses (no HTTP, no transport, no sleeps
 * beyond an event-loop turn).
 */
import { JwtAuth } from '../../src/auth/jwt-auth.js';
import { Connection } from '../../src/delivery/connection.js';
import { Hub } from '../../src/delivery/hub.js';
import { Stats } from '../../src/delivery/stats.js';
import { createMemoryEngine } from '../../src/engine/memory/engine.js';
import type { Engine } from '../../src/engine/types.js';
import { createNativeProtocol, type NativeDeps } from '../../src/protocols/native/protocol.js';
import type { Socket } from '../../src/transport/types.js';
import { silentLogger } from '../../src/util/logger.js';
import { ManualClock } from '../helpers.js';

/** A socket that records what is written to it. */
export class FakeSocket implements Socket {
  readonly writes: Buffer[][] = [];
  bufferedAmount = 0;
  closedWith: { code: number; reason: string } | undefined;
  pings = 0;
  send(frames: readonly Buffer[]): void {
    this.writes.push([...frames]);
  }
  close(code: number, reason: string): void {
    this.closedWith = { code, reason };
  }
  ping(): void {
    this.pings += 1;
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
  native?: Partial<NativeDeps>;
  limits?: Partial<{ connectTimeout: number; clientRate: number; clientBurst: number; sendBufferLimit: number }>;
}

/** A hub, a native protocol and a way to open connections on fake sockets. */
export async function coreHarness(o: CoreOptions = {}) {
  const clock = new ManualClock();
  const engine = o.engine ?? createMemoryEngine({ clock });
  const stats = new Stats();
  const logger = silentLogger();
  const hub = new Hub(engine, logger, stats);
  await engine.start(hub);
  const native = createNativeProtocol({
    paths: ['/ws'],
    subscriptions: hub,
    auth: new JwtAuth({}),
    stats,
    clock,
    logger,
    allowAnonymous: true,
    maxSubscriptions: 100,
    maxInvalidFrames: 10,
    liveness: { pingInterval: 25_000, idleTimeout: 60_000 },
    ...o.native,
  });
  const limits = { connectTimeout: 10_000, clientRate: 50, clientBurst: 100, sendBufferLimit: 1_048_576, ...o.limits };
  /** Opens a connection on a fake socket (as the gateway's onSocket does). */
  const open = (id: string, socket = new FakeSocket()): { conn: Connection; socket: FakeSocket } => {
    const conn = new Connection(id, '127.0.0.1', socket, { host: hub, limits, stats, clock });
    conn.handler = native.open(conn, { path: '/ws', query: '', ip: '127.0.0.1', origin: undefined, headers: {} });
    hub.add(conn);
    return { conn, socket };
  };
  /** Sends a client frame. */
  const send = (conn: Connection, frame: object): void => conn.message(Buffer.from(JSON.stringify(frame)), false);
  return { clock, engine, stats, hub, open, send, close: () => engine.close() };
}

/** Lets the hub's flush (setImmediate) and pending promises run. */
export const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
