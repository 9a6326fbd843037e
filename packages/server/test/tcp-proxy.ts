/**
 * A fault-injecting TCP proxy for integration tests: listens on 127.0.0.1:0 and forwards every accepted
 * connection to a target port, so a test can cut, freeze or refuse the path between a client (the Node
 * SDK, a browser) and the gateway without touching either.
 *
 * - `dropAll()`: destroys every current connection pair (both sides see the connection end; FIN or RST).
 * - `freeze()`: the current pairs stop forwarding in both directions WITHOUT closing anything: data, FIN
 *   and errors from either side are held back (a silent death: no FIN, no RST, no bytes). Connections
 *   accepted afterwards forward normally. `unfreeze()` delivers what was held back, in order.
 * - `mode = 'reject'`: new connections are reset at once (existing pairs carry on).
 * - `setTarget(port)`: where new connections go (existing pairs keep their upstream).
 */
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export type ProxyMode = 'forward' | 'reject';

/** One side's traffic held back while its pair is frozen. */
interface Held {
  chunks: Buffer[];
  ended: boolean;
  closed: boolean;
}

class Pair {
  frozen = false;
  private readonly held = new Map<Socket, Held>();
  private done = false;

  constructor(
    readonly client: Socket,
    readonly upstream: Socket,
    private readonly onDone: (pair: Pair) => void,
  ) {
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      this.held.set(from, { chunks: [], ended: false, closed: false });
      from.setNoDelay(true);
      from.on('data', (chunk: Buffer) => {
        if (this.frozen) this.heldOf(from).chunks.push(chunk);
        else if (!to.destroyed) to.write(chunk);
      });
      // allowHalfOpen: a FIN from one side is passed on as a FIN to the other (unless frozen).
      from.on('end', () => {
        if (this.frozen) this.heldOf(from).ended = true;
        else to.end();
      });
      from.on('error', () => undefined);
      from.on('close', () => {
        if (this.frozen) this.heldOf(from).closed = true;
        else this.destroy();
      });
    }
  }

  private heldOf(s: Socket): Held {
    return this.held.get(s) as Held;
  }

  /** Delivers what was held back and passes on ends and closes that happened while frozen. */
  unfreeze(): void {
    if (!this.frozen) return;
    this.frozen = false;
    let closed = false;
    for (const [from, to] of [
      [this.client, this.upstream],
      [this.upstream, this.client],
    ] as const) {
      const h = this.heldOf(from);
      for (const chunk of h.chunks.splice(0)) if (!to.destroyed) to.write(chunk);
      if (h.ended) to.end();
      if (h.closed) closed = true;
    }
    if (closed) this.destroy();
  }

  /** Closes both sides: a FIN (`destroy`), or a TCP RST when `reset`. */
  destroy(reset = false): void {
    for (const s of [this.client, this.upstream]) {
      if (reset && !s.destroyed) s.resetAndDestroy();
      else s.destroy();
    }
    if (!this.done) {
      this.done = true;
      this.onDone(this);
    }
  }
}

export class TcpProxy {
  /** Connections accepted and forwarded (not counting rejected ones). */
  accepted = 0;
  /** Connections refused in `reject` mode. */
  rejected = 0;
  /** Connections whose upstream could not be reached (the client's socket was destroyed). */
  upstreamFailures = 0;
  /** `reject`: new connections are reset at once; `forward`: the default. */
  mode: ProxyMode = 'forward';
  private readonly pairs = new Set<Pair>();
  private readonly pending = new Set<Socket>();
  private readonly waiters: Array<() => void> = [];

  private constructor(
    private readonly server: Server,
    private target: number,
    private readonly targetHost: string,
  ) {}

  /** Starts a proxy on 127.0.0.1:0 forwarding to `targetHost:targetPort`. */
  static async start(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
    const proxy = new TcpProxy(server, targetPort, targetHost);
    server.on('connection', (socket: Socket) => proxy.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return proxy;
  }

  /** The port the proxy listens on. */
  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Where new connections are forwarded. */
  get targetPort(): number {
    return this.target;
  }

  /** Connection pairs currently open. */
  get active(): number {
    return this.pairs.size;
  }

  /** Forwards connections accepted from now on to `port` (existing pairs keep theirs). */
  setTarget(port: number): void {
    this.target = port;
  }

  /**
   * Destroys every current connection pair, both sides at once; returns how many there were. Each side
   * gets a FIN, or a TCP RST with `{ reset: true }`. Either way no WebSocket close frame is sent.
   */
  dropAll(options: { reset?: boolean } = {}): number {
    const n = this.pairs.size;
    for (const s of this.pending) s.destroy();
    this.pending.clear();
    for (const p of [...this.pairs]) p.destroy(options.reset === true);
    return n;
  }

  /** Stops forwarding on every current pair, in both directions, without closing anything; returns how many. */
  freeze(): number {
    for (const p of this.pairs) p.frozen = true;
    return this.pairs.size;
  }

  /** Resumes the frozen pairs, delivering what they held back. */
  unfreeze(): void {
    for (const p of [...this.pairs]) p.unfreeze();
  }

  /** Resolves once `accepted` reaches `n` (the proxy's own event, not a poll). */
  async waitAccepted(n: number, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.accepted < n) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`proxy: timed out waiting for ${n} accepted connections (have ${this.accepted})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Stops listening and destroys every connection. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.dropAll();
    await closed;
  }

  private accept(client: Socket): void {
    client.on('error', () => undefined);
    if (this.mode === 'reject') {
      this.rejected += 1;
      client.resetAndDestroy();
      return;
    }
    this.pending.add(client);
    const upstream = createConnection({ port: this.target, host: this.targetHost, allowHalfOpen: true });
    upstream.on('error', () => {
      // Target down (a restarting gateway): the client sees its connection end, as with a refused dial.
      if (this.pending.delete(client)) {
        this.upstreamFailures += 1;
        client.destroy();
      }
    });
    upstream.once('connect', () => {
      if (!this.pending.delete(client) || client.destroyed) {
        upstream.destroy();
        return;
      }
      const pair = new Pair(client, upstream, (p) => this.pairs.delete(p));
      this.pairs.add(pair);
      this.accepted += 1;
      client.resume();
      const w = this.waiters.splice(0);
      for (const fn of w) fn();
    });
  }
}
