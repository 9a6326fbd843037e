// The dashboard's state: the latest snapshot of every node (each node publishes its own, once a second,
// to the admin channel) merged into cluster-wide numbers, and a per-second series for the chart. Pure: no
// DOM, so it is unit-tested in Node (packages/server/test/admin.test.ts).
import type { ChannelCount, NodeSnapshot, SeriesPoint } from '../src/observability/snapshot-types.js';

export type { ChannelCount, NodeSnapshot, SeriesPoint };

/** A node that sent nothing for this long (ms, browser clock) is left out: it stopped or lost its engine. */
export const NODE_TIMEOUT_MS = 5000;
/** Seconds of history the chart shows. */
export const CHART_SECONDS = 300;
/** Channels listed. */
export const CHANNEL_ROWS = 20;

/** One point of the chart: messages per second in (published) and out (delivered), all nodes together. */
export interface ChartPoint {
  /** Server time, whole seconds. */
  second: number;
  in: number;
  out: number;
  dropped: number;
}

/** What the page shows. */
export interface DashboardView {
  nodes: NodeSnapshot[];
  connections: number;
  /** Channels with subscribers (distinct across nodes when every node listed all of its channels; else the sum). */
  channels: number;
  subscriptions: number;
  rates: { in: number; out: number; dropped: number };
  totals: { published: number; delivered: number; dropped: number };
  /** Drops by reason since each node started, most first. */
  drops: Array<{ reason: string; count: number }>;
  channelList: ChannelCount[];
  chart: ChartPoint[];
  /** The webhook queue (cluster-wide: the largest any node measured) and this run's deliveries (every node's). */
  webhooks: { queued: number; held: number; dead: number; queueAge: number; sent: number; failed: number };
}

interface NodeEntry {
  snap: NodeSnapshot;
  /** Browser time it arrived. */
  seen: number;
}

/** Merges the snapshots of every node. */
export class DashboardModel {
  private readonly nodes = new Map<string, NodeEntry>();
  /** second -> node -> point. */
  private readonly points = new Map<number, Map<string, SeriesPoint>>();
  /** Snapshots taken in so far. */
  received = 0;

  /** A snapshot from the admin channel (or `GET /api/stats`), received at browser time `now`. */
  add(snap: NodeSnapshot, now: number): void {
    const known = this.nodes.get(snap.node);
    // Snapshots of one node arrive in order; a stale one (a replay after a reconnect) must not win.
    if (known && known.snap.time > snap.time) return;
    this.nodes.set(snap.node, { snap, seen: now });
    this.received += 1;
    if (snap.sample) this.addPoint(snap.node, snap.sample);
  }

  /** The per-second history one node keeps (`GET /api/stats?series=true`), to draw the chart at once. */
  seed(node: string, series: readonly SeriesPoint[]): void {
    for (const p of series) this.addPoint(node, p);
  }

  private addPoint(node: string, p: SeriesPoint): void {
    const second = Math.round(p.t / 1000);
    let byNode = this.points.get(second);
    if (!byNode) this.points.set(second, (byNode = new Map()));
    byNode.set(node, p);
    const newest = Math.max(...this.points.keys());
    for (const s of this.points.keys()) if (s <= newest - CHART_SECONDS) this.points.delete(s);
  }

  /** The view at browser time `now` (nodes silent for NODE_TIMEOUT_MS are left out). */
  view(now: number): DashboardView {
    const nodes = [...this.nodes.values()]
      .filter((e) => now - e.seen <= NODE_TIMEOUT_MS)
      .map((e) => e.snap)
      .sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
    const sum = (f: (s: NodeSnapshot) => number): number => nodes.reduce((n, s) => n + f(s), 0);
    const rate = (f: (s: NodeSnapshot) => number): number => Math.round(sum(f) * 100) / 100;

    const drops = new Map<string, number>();
    for (const s of nodes) for (const [reason, count] of Object.entries(s.dropped)) drops.set(reason, (drops.get(reason) ?? 0) + count);

    const channelCounts = new Map<string, number>();
    let complete = true;
    for (const s of nodes) {
      if (s.topChannels.length < s.channels) complete = false;
      for (const c of s.topChannels) channelCounts.set(c.channel, (channelCounts.get(c.channel) ?? 0) + c.subscribers);
    }
    const channelList = [...channelCounts]
      .map(([channel, subscribers]) => ({ channel, subscribers }))
      .sort((a, b) => b.subscribers - a.subscribers || (a.channel < b.channel ? -1 : 1))
      .slice(0, CHANNEL_ROWS);

    const chart: ChartPoint[] = [...this.points]
      .sort(([a], [b]) => a - b)
      .map(([second, byNode]) => {
        let pIn = 0;
        let pOut = 0;
        let pDropped = 0;
        for (const p of byNode.values()) {
          pIn += p.published;
          pOut += p.delivered;
          pDropped += p.dropped;
        }
        return { second, in: round(pIn), out: round(pOut), dropped: round(pDropped) };
      });

    return {
      nodes,
      connections: sum((s) => s.connections),
      channels: complete ? channelCounts.size : sum((s) => s.channels),
      subscriptions: sum((s) => s.subscriptions),
      // The latest one-second rates: what the chart's right edge shows.
      rates: { in: rate((s) => s.sample?.published ?? 0), out: rate((s) => s.sample?.delivered ?? 0), dropped: rate((s) => s.sample?.dropped ?? 0) },
      totals: { published: sum((s) => s.published), delivered: sum((s) => s.delivered), dropped: sum((s) => s.droppedTotal) },
      drops: [...drops].map(([reason, count]) => ({ reason, count })).sort((a, b) => b.count - a.count || (a.reason < b.reason ? -1 : 1)),
      channelList,
      chart,
      webhooks: {
        queued: Math.max(0, ...nodes.map((s) => s.webhooks?.queued ?? 0)),
        held: Math.max(0, ...nodes.map((s) => s.webhooks?.held ?? 0)),
        dead: Math.max(0, ...nodes.map((s) => s.webhooks?.dead ?? 0)),
        queueAge: Math.max(0, ...nodes.map((s) => s.webhooks?.queueAge ?? 0)),
        sent: sum((s) => s.webhooks?.sent ?? 0),
        failed: sum((s) => s.webhooks?.failed ?? 0),
      },
    };
  }
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
