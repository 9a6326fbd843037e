// The shapes of the stats the gateway reports (GET /api/stats, the admin channel). No imports: the
// dashboard (packages/server/admin) type-checks against this file too.

/** A channel and its subscriber count on this node. */
export interface ChannelCount {
  channel: string;
  subscribers: number;
}

/** Message rates at one moment: per second over the interval before `t`. */
export interface SeriesPoint {
  /** Milliseconds since the epoch (the gateway's clock). */
  t: number;
  connections: number;
  /** Messages published per second (one per channel per publish). */
  published: number;
  /** Frames delivered to local connections per second. */
  delivered: number;
  /** Messages dropped per second, every reason. */
  dropped: number;
}

/**
 * What one node reports about itself: `GET /api/stats` and the admin channel's `stats` messages. Counts
 * are since the gateway started; `rates` are per second.
 */
export interface NodeSnapshot {
  node: string;
  engine: string;
  version: string;
  /** When it was taken (ms since the epoch). */
  time: number;
  /** Seconds since the gateway started. */
  uptime: number;
  /** With `--workers N`: how many worker processes answered; the counts below are their sums. */
  workers?: number;
  connections: number;
  /** Open connections by wire protocol (native, pusher). */
  protocols: Record<string, number>;
  /** Channels with at least one subscriber on this node. */
  channels: number;
  subscriptions: number;
  published: number;
  delivered: number;
  /** Dropped messages by reason. */
  dropped: Record<string, number>;
  droppedTotal: number;
  connectionsOpened: number;
  connectionsClosed: number;
  recovered: number;
  notRecovered: number;
  ingested: number;
  ingestDeadLetters: number;
  /** Per second, averaged over the last `rateWindow` seconds (0 until the gateway has run a second). */
  rates: { published: number; delivered: number; dropped: number };
  rateWindow: number;
  /** The latest one-second point (what a chart adds), null in the first second. */
  sample: SeriesPoint | null;
  /** The channels with the most subscribers on this node, most first (at most 20). */
  topChannels: ChannelCount[];
  /**
   * Webhooks of every protocol (one queue): jobs waiting cluster-wide (`queued`), events held back (`held`), dead
   * letters kept (`dead`) and the age in seconds of the oldest waiting one, as last measured; this node's attempts
   * since it started. Absent from nodes of versions before the webhooks, `held` from those before the hold-backs
   * moved into the queue (a dashboard may see them during a rolling upgrade).
   */
  webhooks?: { queued: number; held?: number; dead: number; queueAge: number; sent: number; failed: number; retried: number; deadLettered: number };
}
