// A small SVG line chart of messages per second (in, out, dropped) over the last minutes. Built with DOM
// calls only (the page's CSP allows no inline script or style attributes set from strings).
import { CHART_SECONDS, type ChartPoint } from './model.js';

const NS = 'http://www.w3.org/2000/svg';
const HEIGHT = 180;
/** The x axis spans the data, at least this many seconds (and at most CHART_SECONDS). */
const MIN_SPAN = 60;
const PAD = { left: 44, right: 10, top: 10, bottom: 22 };
const SERIES: ReadonlyArray<{ key: 'in' | 'out' | 'dropped'; cls: string }> = [
  { key: 'in', cls: 'line-in' },
  { key: 'out', cls: 'line-out' },
  { key: 'dropped', cls: 'line-dropped' },
];

function el<K extends keyof SVGElementTagNameMap>(name: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

/** A "nice" upper bound for the y axis: 1, 2 or 5 times a power of ten. */
function niceMax(v: number): number {
  if (v <= 1) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function label(v: number): string {
  return v >= 1000 ? `${(v / 1000).toFixed(v >= 10_000 ? 0 : 1)}k` : String(v);
}

function ago(seconds: number): string {
  return seconds % 60 === 0 ? `${seconds / 60} min ago` : `${seconds} s ago`;
}

/**
 * Redraws `svg` with `points` (oldest first): the x axis ends at the newest point and spans the data (one
 * minute at least, CHART_SECONDS at most); the drawing is as wide as the element, so text keeps its size.
 */
export function drawChart(svg: SVGSVGElement, points: readonly ChartPoint[]): void {
  const width = Math.max(320, Math.round(svg.clientWidth || 720));
  svg.setAttribute('viewBox', `0 0 ${width} ${HEIGHT}`);
  svg.replaceChildren();
  const w = width - PAD.left - PAD.right;
  const h = HEIGHT - PAD.top - PAD.bottom;
  const first = points.length > 0 ? (points[0] as ChartPoint).second : 0;
  const end = points.length > 0 ? (points[points.length - 1] as ChartPoint).second : 0;
  const span = Math.min(CHART_SECONDS, Math.max(MIN_SPAN, Math.ceil((end - first) / MIN_SPAN) * MIN_SPAN));
  const start = end - span;
  const max = niceMax(Math.max(0, ...points.map((p) => Math.max(p.in, p.out, p.dropped))));
  const x = (second: number): number => PAD.left + ((second - start) / span) * w;
  const y = (v: number): number => PAD.top + h - (v / max) * h;

  for (const frac of [0, 0.5, 1]) {
    const v = max * frac;
    svg.append(el('line', { x1: PAD.left, x2: PAD.left + w, y1: y(v), y2: y(v), class: 'grid' }));
    const t = el('text', { x: PAD.left - 6, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' });
    t.textContent = label(Math.round(v * 10) / 10);
    svg.append(t);
  }
  for (const [second, text] of [
    [start, ago(span)],
    [end, 'now'],
  ] as const) {
    const t = el('text', { x: x(second), y: HEIGHT - 6, class: 'axis', 'text-anchor': second === start ? 'start' : 'end' });
    t.textContent = text;
    svg.append(t);
  }
  for (const s of SERIES) {
    const visible = points.filter((p) => p.second > start);
    if (visible.length === 0) continue;
    const d = visible.map((p, i) => `${i === 0 ? 'M' : 'L'}${x(p.second).toFixed(1)},${y(p[s.key]).toFixed(1)}`).join(' ');
    svg.append(el('path', { d, class: `line ${s.cls}`, 'data-points': visible.length }));
  }
}
