/** Tables with ratios for the terminal and docs, and the SVG chart, from the results JSON. */
import type { Kind } from './kinds.js';
import { LABELS } from './kinds.js';
import { PUSHER_KINDS } from './pusher-kinds.js';
import type { ScenarioResult } from './scenarios.js';

export interface Results {
  date: string;
  machine: Record<string, string | number>;
  command: string;
  scenarios: Record<string, ScenarioResult>;
}

/** The many-channels results, one per publish shape (bench/src/publisher.ts SHAPES). */
const MANY = ['many-channels', 'many-channels-single', 'many-channels-single-new'];
const SHAPE_SHORT: Record<string, string> = {
  'many-channels': 'batched (100 per request)',
  'many-channels-single': 'one per request, keep-alive',
  'many-channels-single-new': 'one per request, new connection each',
};

const k = (n: number | undefined, digits = 0): string => {
  if (n === undefined || !Number.isFinite(n)) return '-';
  if (Math.abs(n) >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  // 12.5k, not 13k: the many-channels ladders have steps 2.5k apart.
  if (Math.abs(n) >= 1e4) return `${Number((n / 1e3).toFixed(Math.abs(n) < 1e5 ? 1 : 0))}k`;
  return n.toFixed(digits);
};

const pct = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? '-' : `${n.toFixed(0)}%`);

const ratio = (a: number | undefined, b: number | undefined): string => (a && b && Number.isFinite(a) && Number.isFinite(b) ? `${(a / b).toFixed(2)}x` : '-');

function med(r: ScenarioResult | undefined, kind: string, key: string): number | undefined {
  return (r?.kinds as Record<string, { median: Record<string, number> }> | undefined)?.[kind]?.median[key];
}

function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

/** Ratio columns: vs the ws baseline, vs Socket.IO, and for the uWS transport vs raw uWS. */
function ratios(r: ScenarioResult, kind: string, key: string): string[] {
  const v = med(r, kind, key);
  return [
    ratio(v, med(r, 'ws', key)),
    ratio(v, med(r, 'socket.io', key)),
    kind === 'herald-uws'
      ? ratio(v, med(r, 'uws', key))
      : kind === 'herald-redis'
        ? ratio(v, med(r, 'herald', key))
        : kind.startsWith('herald-pusher')
          ? ratio(v, med(r, 'soketi', key))
          : '',
  ];
}

/** Rows in this order (each peer beside its kin); kinds not listed keep their order, after these. */
const ORDER = ['herald', 'herald-redis', 'herald-uws', 'ws', 'socket.io', 'socket.io-redis', 'uws'];

function kindsOf(r: ScenarioResult): string[] {
  const rank = (kind: string): number => (ORDER.includes(kind) ? ORDER.indexOf(kind) : ORDER.length);
  return Object.keys(r.kinds).sort((a, b) => rank(a) - rank(b));
}

export function markdown(res: Results): string {
  const out: string[] = [];
  const runs = new Map<string, string[]>();
  for (const r of Object.values(res.scenarios)) {
    const run = String(r.params['run'] ?? `${res.command} (${res.date.slice(0, 16).replace('T', ' ')} UTC)`);
    runs.set(run, [...(runs.get(run) ?? []), r.scenario]);
  }
  const from = [...runs].map(([run, names]) => `${names.join(', ')} from \`${run.replace(' (', '` (')}`).join('; ');
  out.push(`${String(res.machine['cpus'])}, Node ${String(res.machine['node'])}. ${from}.\n`);
  const s = res.scenarios;
  const label = (kind: string): string => LABELS[kind as Kind] ?? kind;
  // A publish ladder (fan-out, many channels): rates in `unit`, and for fan-out the CPU efficiency too.
  const ladderTable = (r: ScenarioResult, unit: string, perCpu: boolean): string =>
    table(
      [
        'server',
        `sustained ${unit}`,
        `saturation ${unit}`,
        'server CPU at saturation',
        perCpu ? 'load generator CPU at saturation' : 'load CPU',
        ...(perCpu ? ['deliveries per server CPU-second'] : []),
        'p99 at sustained (ms)',
        'saturation vs ws',
        'vs Socket.IO',
        'vs uWS / vs memory',
      ],
      kindsOf(r).map((kind) => [
        label(kind),
        k(med(r, kind, 'sustained')),
        k(med(r, kind, 'saturation')),
        pct(med(r, kind, 'serverCpuAtSaturation')),
        pct(med(r, kind, 'loadCpuAtSaturation')),
        ...(perCpu ? [k(med(r, kind, 'perServerCpuSecond'))] : []),
        k(med(r, kind, 'sustainedP99'), 1),
        ...ratios(r, kind, 'saturation'),
      ]),
    );
  if (s['fanout']) {
    const r = s['fanout'];
    out.push(`### Fan-out (${String(r.params['subscribers'])} subscribers on one channel, medians of ${r.kinds.herald?.reps.length ?? '?'} runs)\n`);
    out.push(ladderTable(r, 'deliveries/s', true));
  }
  const pusher = pusherTable(res);
  if (pusher) out.push(pusher);
  if (s['latency']) {
    const r = s['latency'];
    out.push(`\n### Latency at half the sustained fan-out rate (probe clients, publish to receive)\n`);
    out.push(
      table(
        ['server', 'deliveries/s', 'p50 (ms)', 'p99 (ms)', 'max (ms)', 'server CPU', 'load CPU'],
        kindsOf(r).map((kind) => [
          label(kind),
          k(med(r, kind, 'rate')),
          k(med(r, kind, 'p50'), 1),
          k(med(r, kind, 'p99'), 1),
          k(med(r, kind, 'max'), 1),
          pct(med(r, kind, 'serverCpu')),
          pct(med(r, kind, 'loadCpu')),
        ]),
      ),
    );
  }
  const shapes = MANY.filter((name) => s[name]);
  for (const name of shapes) {
    const r = s[name] as ScenarioResult;
    const shape = String(r.params['shapeLabel'] ?? 'batched: up to 100 messages per HTTP request, keep-alive');
    const conns = r.params['httpConnections'] === undefined ? '' : `, ${String(r.params['httpConnections'])} HTTP connections at most`;
    out.push(
      `\n### Many channels, ${shape} (${String(r.params['connections'])} connections, each on its own user channel; publishes to random users${conns}; medians of ${Object.values(r.kinds)[0]?.reps.length ?? '?'} runs)\n`,
    );
    if (r.params['shape'] === undefined) {
      // A result from before the shapes (no per-request CPU, no half-rate latency).
      out.push(ladderTable(r, 'messages/s', false));
      continue;
    }
    out.push(
      table(
        [
          'server',
          'sustained msg/s',
          'saturation msg/s',
          'server CPU at sustained',
          'server CPU at saturation',
          'server CPU per request (µs, at sustained)',
          'p99 at sustained (ms)',
          'p99 at half the sustained rate (ms)',
          'vs ws',
          'vs Socket.IO',
          'vs Socket.IO + Redis adapter',
          'vs Herald memory, ws transport',
          'vs bare uWS',
        ],
        kindsOf(r).map((kind) => {
          const v = med(r, kind, 'saturation');
          const half = med(r, kind, 'halfRate');
          return [
            label(kind),
            k(med(r, kind, 'sustained')),
            k(v),
            pct(med(r, kind, 'serverCpuAtSustained')),
            pct(med(r, kind, 'serverCpuAtSaturation')),
            k(med(r, kind, 'usPerRequest')),
            k(med(r, kind, 'sustainedP99'), 1),
            `${k(med(r, kind, 'halfP99'), 1)}${half === undefined ? '' : ` (at ${k(half)}/s)`}`,
            ratio(v, med(r, 'ws', 'saturation')),
            ratio(v, med(r, 'socket.io', 'saturation')),
            kind === 'herald-redis' ? ratio(v, med(r, 'socket.io-redis', 'saturation')) : '',
            kind === 'herald-redis' || kind === 'herald-uws' ? ratio(v, med(r, 'herald', 'saturation')) : '',
            kind === 'herald-uws' ? ratio(v, med(r, 'uws', 'saturation')) : '',
          ];
        }),
      ),
    );
  }
  if (shapes.length > 1) {
    const all = [...new Set(shapes.flatMap((name) => kindsOf(s[name] as ScenarioResult)))];
    const batched = s['many-channels'];
    out.push(`\n### Many channels, the publish shapes side by side (saturation msg/s; ratio to the same server batched)\n`);
    out.push(
      table(
        ['server', ...shapes.map((name) => SHAPE_SHORT[name] ?? name)],
        all.map((kind) => [
          label(kind),
          ...shapes.map((name) => {
            const v = med(s[name], kind, 'saturation');
            return name === 'many-channels' || !batched ? k(v) : `${k(v)} (${ratio(v, med(batched, kind, 'saturation'))})`;
          }),
        ]),
      ),
    );
  }
  if (s['idle-memory']) {
    const r = s['idle-memory'];
    out.push(
      `\n### Idle memory (${String(r.params['connections'])} subscribed connections; RSS after a full GC, and as an operator reads it 3 s after the last subscribe)\n`,
    );
    out.push(
      table(
        [
          'server',
          'KB per connection',
          'KB per connection, 3 s after the last subscribe',
          'JS heap KB per connection',
          'RSS before (MiB)',
          'RSS after (MiB)',
          'vs ws',
          'vs Socket.IO',
          'vs uWS / vs memory',
          '3 s after: vs ws',
        ],
        kindsOf(r).map((kind) => {
          const v = med(r, kind, 'bytesPerConnection');
          const early = med(r, kind, 'earlyBytesPerConnection');
          return [
            label(kind),
            k((v ?? NaN) / 1024, 2),
            k((early ?? NaN) / 1024, 2),
            k((med(r, kind, 'heapPerConnection') ?? NaN) / 1024, 2),
            k((med(r, kind, 'rssBefore') ?? NaN) / 2 ** 20, 1),
            k((med(r, kind, 'rssAfter') ?? NaN) / 2 ** 20, 1),
            ...ratios(r, kind, 'bytesPerConnection'),
            ratio(early, med(r, 'ws', 'earlyBytesPerConnection')),
          ];
        }),
      ),
    );
  }
  if (s['connect-rate']) {
    const r = s['connect-rate'];
    // Runs before 2026-12-07 timed one round, the first after 100 warm-up connections (now the `first round` column).
    const rounds = r.params['rounds'] !== undefined;
    out.push(
      `\n### Connect rate (${String(r.params['connections'])} connections, ${String(r.params['concurrency'])} at a time, JWT + subscribe${rounds ? '; the second of two timed rounds, the process warm' : ''})\n`,
    );
    out.push(
      table(
        [
          'server',
          'connections/s',
          ...(rounds ? ['first round, cold (connections/s)'] : []),
          'p50 (ms)',
          'p99 (ms)',
          'server CPU',
          'load CPU',
          'vs ws',
          'vs Socket.IO',
          'vs uWS / vs memory',
        ],
        kindsOf(r).map((kind) => [
          label(kind),
          k(med(r, kind, 'perSecond')),
          ...(rounds ? [k(med(r, kind, 'firstRoundPerSecond'))] : []),
          k(med(r, kind, 'p50'), 1),
          k(med(r, kind, 'p99'), 1),
          pct(med(r, kind, 'serverCpu')),
          pct(med(r, kind, 'loadCpu')),
          ...ratios(r, kind, 'perSecond'),
        ]),
      ),
    );
  }
  if (s['cluster']) {
    const r = s['cluster'];
    out.push(
      `\n### Cluster (Herald, Redis engine; fan-out, ${String(r.params['subscribers'])} subscribers split over the nodes; the load generator on a core of its own)\n`,
    );
    const one = med(r, 'one node', 'saturation');
    out.push(
      table(
        ['nodes', 'cores', 'sustained deliveries/s', 'saturation deliveries/s', 'node 1 CPU', 'load CPU', 'redis CPU', 'vs one node'],
        kindsOf(r).map((name) => [
          name,
          k(med(r, name, 'cores') ?? 1),
          k(med(r, name, 'sustained')),
          k(med(r, name, 'saturation')),
          pct(med(r, name, 'serverCpuAtSaturation')),
          pct(med(r, name, 'loadCpuAtSaturation')),
          pct(med(r, name, 'redisCpuAtSaturation')),
          ratio(med(r, name, 'saturation'), one),
        ]),
      ),
    );
  }
  return out.join('\n');
}

/**
 * Issue 12's comparison in one table: Herald's Pusher side (each transport) against Soketi on fan-out
 * saturation and idle memory per connection, with the ratio Herald/Soketi (target: at least 3x the fan-out
 * saturation, at most 1x the memory).
 */
function pusherTable(res: Results): string | undefined {
  const f = res.scenarios['fanout'];
  const m = res.scenarios['idle-memory'];
  const kinds = PUSHER_KINDS.filter((kind) => f?.kinds[kind] !== undefined || m?.kinds[kind] !== undefined);
  if (kinds.length === 0) return undefined;
  const kb = (v: number | undefined): number | undefined => (v === undefined ? undefined : v / 1024);
  const rows = kinds.map((kind) => {
    const sat = med(f, kind, 'saturation');
    const mem = med(m, kind, 'bytesPerConnection');
    return [
      LABELS[kind],
      k(sat),
      k(med(f, kind, 'sustained')),
      pct(med(f, kind, 'serverCpuAtSaturation')),
      k(med(f, kind, 'perServerCpuSecond')),
      kind === 'soketi' ? ratio(sat, sat) : ratio(sat, med(f, 'soketi', 'saturation')),
      k(kb(mem), 2),
      kind === 'soketi' ? ratio(mem, mem) : ratio(mem, med(m, 'soketi', 'bytesPerConnection')),
    ];
  });
  return [
    `\n### Pusher protocol: Herald vs Soketi (Pusher 7 clients, publishes through the signed Pusher HTTP API, one event per request)\n`,
    table(
      [
        'server',
        'fan-out saturation deliveries/s',
        'sustained deliveries/s',
        'server CPU at saturation',
        'deliveries per server CPU-second',
        'saturation vs Soketi (target >= 3x)',
        'idle KB per connection',
        'memory vs Soketi (target <= 1x)',
      ],
      rows,
    ),
  ].join('\n');
}

const COLORS: Record<string, string> = {
  herald: '#2f6fdf',
  'herald-redis': '#6a9cf0',
  'herald-uws': '#1b3f8f',
  ws: '#9a9a9a',
  'socket.io': '#d9822b',
  uws: '#555555',
  'socket.io-redis': '#f0b27a',
  'herald-pusher': '#2fa36b',
  'herald-pusher-uws': '#1d6b45',
  soketi: '#b04fc4',
};

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
}

/** A bar chart per metric (fan-out saturation and sustained, many channels, idle memory, connect rate). */
export function svg(res: Results): string {
  const panels: Array<{ title: string; scenario: string; key: string; scale: number; unit: string; lowerIsBetter?: boolean }> = [
    { title: 'Fan-out saturation (deliveries/s)', scenario: 'fanout', key: 'saturation', scale: 1, unit: '' },
    { title: 'Fan-out sustained, all delivered, p99 < 100 ms (deliveries/s)', scenario: 'fanout', key: 'sustained', scale: 1, unit: '' },
    { title: 'Many channels, batched: saturation (messages/s)', scenario: 'many-channels', key: 'saturation', scale: 1, unit: '' },
    {
      title: 'Many channels, one message per request, keep-alive: saturation (messages/s)',
      scenario: 'many-channels-single',
      key: 'saturation',
      scale: 1,
      unit: '',
    },
    {
      title: 'Many channels, one message per request, new connection each: saturation (messages/s)',
      scenario: 'many-channels-single-new',
      key: 'saturation',
      scale: 1,
      unit: '',
    },
    { title: 'Connect rate with a JWT (connections/s)', scenario: 'connect-rate', key: 'perSecond', scale: 1, unit: '' },
    {
      title: 'Idle memory per subscribed connection (KB, lower is better)',
      scenario: 'idle-memory',
      key: 'bytesPerConnection',
      scale: 1 / 1024,
      unit: ' KB',
      lowerIsBetter: true,
    },
  ];
  const W = 760;
  const barH = 16;
  const labelW = 270;
  let y = 50;
  const parts: string[] = [];
  for (const p of panels) {
    const r = res.scenarios[p.scenario];
    if (!r) continue;
    const entries = Object.entries(r.kinds)
      .map(([kind, v]) => [kind, (v?.median[p.key] ?? NaN) * p.scale] as const)
      .filter(([, v]) => Number.isFinite(v));
    if (entries.length === 0) continue;
    const max = Math.max(...entries.map(([, v]) => v));
    parts.push(`<text x="10" y="${y}" font-size="14" font-weight="bold">${esc(p.title)}</text>`);
    y += 10;
    for (const [kind, v] of entries) {
      const w = max > 0 ? ((W - labelW - 90) * v) / max : 0;
      parts.push(`<text x="10" y="${y + 12}" font-size="12">${esc(LABELS[kind as Kind] ?? kind)}</text>`);
      parts.push(`<rect x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${COLORS[kind] ?? '#888'}"/>`);
      const text = p.unit ? `${v.toFixed(2)}${p.unit}` : k(v);
      parts.push(`<text x="${(labelW + w + 6).toFixed(1)}" y="${y + 12}" font-size="12">${esc(text)}</text>`);
      y += barH + 4;
    }
    y += 26;
  }
  const head = `<text x="10" y="24" font-size="16" font-weight="bold">Herald benchmarks (${esc(String(res.machine['cpus']))}, server and load generator pinned to one core each; ${esc(res.date.slice(0, 10))})</text>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n${head}\n${parts.join('\n')}\n</svg>\n`;
}
