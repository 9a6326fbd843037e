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
 * - `setTargets(ports)`: several upstreams, as a load balancer: each new connection goes to the next one
 *   in round-robin order, and a target that refuses (a dead node) is skipped for the next one; only when
 *   every target refuses is the client's connection ended. `removeTarget(port)` takes one out.
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
  /** Upstream connections that were refused or failed before connecting, a target skipped for the next. */
  skipped = 0;
  private readonly pending = new Set<Socket>();
  private readonly waiters: Array<() => void> = [];
  private targets: number[];
  /** Index in `targets` of the next connection's first choice (round-robin). */
  private nextTarget = 0;

  private constructor(
    private readonly server: Server,
    target: number,
    private readonly targetHost: string,
  ) {
    this.targets = [target];
  }

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

  /** Where the next new connection is forwarded first (with several targets: the next in round-robin order). */
  get targetPort(): number {
    return this.targets[this.nextTarget % this.targets.length] as number;
  }

  /** Every target new connections are spread over. */
  get targetPorts(): readonly number[] {
    return [...this.targets];
  }

  /** Connection pairs currently open. */
  get active(): number {
    return this.pairs.size;
  }

  /** Open connection pairs whose upstream is `port`. */
  activeTo(port: number): number {
    let n = 0;
    for (const p of this.pairs) if (p.upstream.remotePort === port) n += 1;
    return n;
  }

  /** Forwards connections accepted from now on to `port` (existing pairs keep theirs). */
  setTarget(port: number): void {
    this.setTargets([port]);
  }

  /**
   * Spreads connections accepted from now on over `ports`, round-robin, skipping a target that refuses
   * (existing pairs keep their upstream).
   */
  setTargets(ports: readonly number[]): void {
    if (ports.length === 0) throw new Error('TcpProxy.setTargets: at least one target is required');
    this.targets = [...ports];
    this.nextTarget = 0;
  }

  /** Stops sending new connections to `port` (a load balancer's health check failing); returns whether it was a target. */
  removeTarget(port: number): boolean {
    const rest = this.targets.filter((p) => p !== port);
    if (rest.length === this.targets.length || rest.length === 0) return false;
    this.setTargets(rest);
    return true;
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
    // Round-robin: this connection tries the targets starting at the next one, each at most once.
    const order = this.targets.map((_, i) => this.targets[(this.nextTarget + i) % this.targets.length] as number);
    this.nextTarget = (this.nextTarget + 1) % this.targets.length;
    this.dial(client, order);
  }

  /** Connects `client` to the first of `order` that accepts; the client's connection ends when none does. */
  private dial(client: Socket, order: readonly number[]): void {
    const [port, ...rest] = order;
    if (port === undefined) {
      // Every target down (a restarting gateway): the client sees its connection end, as with a refused dial.
      if (this.pending.delete(client)) {
        this.upstreamFailures += 1;
        client.destroy();
      }
      return;
    }
    const upstream = createConnection({ port, host: this.targetHost, allowHalfOpen: true });
    let connected = false;
    upstream.on('error', () => {
      if (connected || !this.pending.has(client)) return;
      // This target refused (or failed before connecting): try the next one.
      upstream.destroy();
      if (rest.length > 0) this.skipped += 1;
      this.dial(client, rest);
    });
    upstream.once('connect', () => {
      connected = true;
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
