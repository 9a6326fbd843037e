import type { ChannelName } from '@herald/protocol';
import type { Connection } from '../connection.js';
import type { Stats } from '../stats.js';
import type { ChannelCount, SeriesPoint } from './snapshot-types.js';

export type { ChannelCount, NodeSnapshot, SeriesPoint } from './snapshot-types.js';

/**
 * Channels with subscribers on this node and their counts, most subscribers first (then by name), from
 * the connections' subscriptions: O(subscriptions), run on demand (an API call, a dashboard tick), never
 * per message.
 */
export function listChannels(
  connections: Iterable<Connection>,
  opts: { prefix?: string | undefined; limit: number },
): { total: number; channels: ChannelCount[] } {
  const counts = new Map<ChannelName, number>();
  const prefix = opts.prefix ?? '';
  for (const conn of connections) {
    if (conn.state !== 'open') continue;
    for (const channel of conn.subs.keys()) {
      if (prefix !== '' && !channel.startsWith(prefix)) continue;
      counts.set(channel, (counts.get(channel) ?? 0) + 1);
    }
  }
  const all = [...counts].map(([channel, subscribers]) => ({ channel, subscribers }));
  all.sort((a, b) => b.subscribers - a.subscribers || (a.channel < b.channel ? -1 : a.channel > b.channel ? 1 : 0));
  return { total: all.length, channels: all.slice(0, opts.limit) };
}

/** Subscriptions held by open connections. */
export function countSubscriptions(connections: Iterable<Connection>): number {
  let n = 0;
  for (const conn of connections) if (conn.state === 'open') n += conn.subs.size;
  return n;
}

interface Totals {
  t: number;
  connections: number;
  published: number;
  delivered: number;
  dropped: number;
}

/**
 * The last minutes of message rates: `tick()` (once a second, from the gateway's timer) reads the plain
 * counters and keeps one point per tick in a ring of `size` points.
 */
export class RateSeries {
  private readonly totals: Totals[] = [];

  constructor(
    private readonly stats: Stats,
    private readonly connections: () => number,
    private readonly size = 300,
  ) {}

  tick(now: number): void {
    const s = this.stats;
    this.totals.push({ t: now, connections: this.connections(), published: s.published, delivered: s.delivered, dropped: s.droppedTotal });
    // One more total than points: a point is the difference of two totals.
    if (this.totals.length > this.size + 1) this.totals.shift();
  }

  /** Per-second points, oldest first (at most `size`). */
  points(): SeriesPoint[] {
    const out: SeriesPoint[] = [];
    for (let i = 1; i < this.totals.length; i++) out.push(point(this.totals[i - 1] as Totals, this.totals[i] as Totals));
    return out;
  }

  /** The newest point, or null before two ticks. */
  latest(): SeriesPoint | null {
    const n = this.totals.length;
    return n < 2 ? null : point(this.totals[n - 2] as Totals, this.totals[n - 1] as Totals);
  }

  /** Average rates over the last `seconds` (fewer when younger), and the window actually used. */
  average(seconds: number): { published: number; delivered: number; dropped: number; window: number } {
    const n = this.totals.length;
    if (n < 2) return { published: 0, delivered: 0, dropped: 0, window: 0 };
    const last = this.totals[n - 1] as Totals;
    let first = this.totals[0] as Totals;
    for (let i = n - 2; i >= 0; i--) {
      first = this.totals[i] as Totals;
      if (last.t - first.t >= seconds * 1000) break;
    }
    const p = point(first, last);
    return { published: p.published, delivered: p.delivered, dropped: p.dropped, window: (last.t - first.t) / 1000 };
  }
}

function point(a: Totals, b: Totals): SeriesPoint {
  const dt = Math.max(1, b.t - a.t) / 1000;
  const rate = (x: number): number => Math.round((x / dt) * 100) / 100;
  return {
    t: b.t,
    connections: b.connections,
    published: rate(b.published - a.published),
    delivered: rate(b.delivered - a.delivered),
    dropped: rate(b.dropped - a.dropped),
  };
}
