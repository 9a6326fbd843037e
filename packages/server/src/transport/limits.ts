/**
 * WebSocket connection limits: how many are open in all and per client address, and how fast one address
 * may open new ones (a token bucket per address). Admission asks `check` before a handshake; the transport
 * calls `opened` when a socket is accepted (the authoritative count) and `closed` when it goes.
 */
import { TokenBucket } from '../util/token-bucket.js';

/** Why a connection was refused by a limit (the `reason` label of `herald_connections_refused_total`). */
export type LimitReason = 'max_connections' | 'max_connections_per_ip' | 'connect_rate';

/** Every limit reason, for metrics exported at 0. */
export const LIMIT_REASONS: readonly LimitReason[] = ['max_connections', 'max_connections_per_ip', 'connect_rate'];

/** The limits. */
export interface ConnectionLimitOptions {
  /** Open WebSocket connections in all. */
  maxConnections: number;
  /** Open WebSocket connections per client address. */
  maxConnectionsPerIp: number;
  /** New connections per second per client address, sustained. */
  connectRate: number;
  /** New connections per client address in a burst. */
  connectBurst: number;
  /** Most addresses whose rate state is kept when they hold no connection (oldest forgotten first). @default 65536 */
  maxTrackedAddresses?: number;
}

/** A refusal: which limit, and in how many seconds trying again makes sense (`Retry-After`). */
export interface LimitRefusal {
  reason: LimitReason;
  retryAfter: number;
}

/** Per address: open connections and the connect-rate bucket. */
interface AddressState {
  open: number;
  bucket: TokenBucket;
}

/** How long a client is told to wait when a connection-count limit is hit: connections come and go. */
const COUNT_RETRY_AFTER_S = 5;

/**
 * The state behind the connection limits. Per-address state is a bounded map: an address holding
 * connections stays (there are at most `maxConnections` of those); one that only has a rate bucket is
 * forgotten once its bucket is full again (`sweep`) or, past `maxTrackedAddresses`, oldest first, which
 * at worst forgives some rate to a flood of many addresses (the global limit still holds).
 */
export class ConnectionLimits {
  private readonly byIp = new Map<string, AddressState>();
  private readonly maxTracked: number;
  private total = 0;

  constructor(private readonly o: ConnectionLimitOptions) {
    this.maxTracked = o.maxTrackedAddresses ?? 65_536;
  }

  /** Open connections counted. */
  get open(): number {
    return this.total;
  }

  /** Addresses with state. */
  get tracked(): number {
    return this.byIp.size;
  }

  private state(ip: string, now: number): AddressState {
    let s = this.byIp.get(ip);
    if (s) {
      // Most recently used last: eviction below takes the oldest first.
      this.byIp.delete(ip);
      this.byIp.set(ip, s);
      return s;
    }
    s = { open: 0, bucket: new TokenBucket(this.o.connectRate, this.o.connectBurst, now) };
    this.byIp.set(ip, s);
    if (this.byIp.size > this.maxTracked) this.evict();
    return s;
  }

  private evict(): void {
    for (const [ip, s] of this.byIp) {
      if (this.byIp.size <= this.maxTracked) return;
      if (s.open === 0) this.byIp.delete(ip);
    }
  }

  /**
   * Decides a new connection from `ip` before its handshake; takes a connect-rate token when it passes.
   * `ip` undefined: the client is unknown (a trusted proxy that named nobody), only the global limit applies.
   */
  check(ip: string | undefined, now: number): LimitRefusal | undefined {
    if (this.total >= this.o.maxConnections) return { reason: 'max_connections', retryAfter: COUNT_RETRY_AFTER_S };
    if (ip === undefined) return undefined;
    const s = this.state(ip, now);
    if (s.open >= this.o.maxConnectionsPerIp) return { reason: 'max_connections_per_ip', retryAfter: COUNT_RETRY_AFTER_S };
    if (!s.bucket.take(now)) return { reason: 'connect_rate', retryAfter: Math.max(1, Math.ceil(s.bucket.wait(now) / 1000)) };
    return undefined;
  }

  /**
   * Counts an accepted connection. Refuses it (returns the limit) when the counts are already at a limit:
   * a transport whose handshake completes later than admission could let a burst pass `check` together.
   */
  opened(ip: string | undefined, now: number): LimitReason | undefined {
    if (this.total >= this.o.maxConnections) return 'max_connections';
    if (ip !== undefined) {
      const s = this.state(ip, now);
      if (s.open >= this.o.maxConnectionsPerIp) return 'max_connections_per_ip';
      s.open += 1;
    }
    this.total += 1;
    return undefined;
  }

  /** An accepted connection closed (`ip` as it was given to `opened`). */
  closed(ip: string | undefined): void {
    if (ip === undefined) {
      if (this.total > 0) this.total -= 1;
      return;
    }
    const s = this.byIp.get(ip);
    if (!s || s.open === 0) return;
    s.open -= 1;
    this.total -= 1;
  }

  /** Forgets addresses that hold no connection and whose bucket is full (they would start afresh anyway). */
  sweep(now: number): void {
    for (const [ip, s] of this.byIp) if (s.open === 0 && s.bucket.full(now)) this.byIp.delete(ip);
  }
}
