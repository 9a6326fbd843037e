import type { Stats } from '../delivery/stats.js';
import type { SeriesPoint } from './snapshot-types.js';

export type { ChannelCount, NodeSnapshot, SeriesPoint } from './snapshot-types.js';

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
