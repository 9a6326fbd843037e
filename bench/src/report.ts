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

const k = (n: number | undefined, digits = 0): string => {
  if (n === undefined || !Number.isFinite(n)) return '-';
  if (Math.abs(n) >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (Math.abs(n) >= 1e4) return `${(n / 1e3).toFixed(0)}k`;
  return n.toFixed(digits);
};

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

function kindsOf(r: ScenarioResult): string[] {
  return Object.keys(r.kinds);
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
        `${k(med(r, kind, 'serverCpuAtSaturation'))}%`,
        `${k(med(r, kind, 'loadCpuAtSaturation'))}%`,
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
          `${k(med(r, kind, 'serverCpu'))}%`,
          `${k(med(r, kind, 'loadCpu'))}%`,
        ]),
      ),
    );
  }
  if (s['many-channels']) {
    const r = s['many-channels'];
    out.push(`\n### Many channels (${String(r.params['connections'])} connections, each on its own user channel; publishes to random users)\n`);
    out.push(ladderTable(r, 'messages/s', false));
  }
  if (s['idle-memory']) {
    const r = s['idle-memory'];
    out.push(`\n### Idle memory (${String(r.params['connections'])} subscribed connections; RSS after a full GC)\n`);
    out.push(
      table(
        ['server', 'KB per connection', 'JS heap KB per connection', 'RSS before (MiB)', 'RSS after (MiB)', 'vs ws', 'vs Socket.IO', 'vs uWS / vs memory'],
        kindsOf(r).map((kind) => {
          const v = med(r, kind, 'bytesPerConnection');
          return [
            label(kind),
            k((v ?? NaN) / 1024, 2),
            k((med(r, kind, 'heapPerConnection') ?? NaN) / 1024, 2),
            k((med(r, kind, 'rssBefore') ?? NaN) / 2 ** 20, 1),
            k((med(r, kind, 'rssAfter') ?? NaN) / 2 ** 20, 1),
            ...ratios(r, kind, 'bytesPerConnection'),
          ];
        }),
      ),
    );
  }
  if (s['connect-rate']) {
    const r = s['connect-rate'];
    out.push(`\n### Connect rate (${String(r.params['connections'])} connections, ${String(r.params['concurrency'])} at a time, JWT + subscribe)\n`);
    out.push(
      table(
        ['server', 'connections/s', 'p50 (ms)', 'p99 (ms)', 'server CPU', 'load CPU', 'vs ws', 'vs Socket.IO', 'vs uWS / vs memory'],
        kindsOf(r).map((kind) => [
          label(kind),
          k(med(r, kind, 'perSecond')),
          k(med(r, kind, 'p50'), 1),
          k(med(r, kind, 'p99'), 1),
          `${k(med(r, kind, 'serverCpu'))}%`,
          `${k(med(r, kind, 'loadCpu'))}%`,
          ...ratios(r, kind, 'perSecond'),
        ]),
      ),
    );
  }
  if (s['cluster']) {
    const r = s['cluster'];
    out.push(`\n### Cluster (Herald, Redis engine; ${String(r.params['subscribers'])} subscribers split over the nodes; every node on the server core)\n`);
    const one = med(r, 'one node', 'saturation');
    out.push(
      table(
        ['nodes', 'sustained deliveries/s', 'saturation deliveries/s', 'node 1 CPU', 'load CPU', 'redis CPU', 'vs one node'],
        kindsOf(r).map((name) => [
          name,
          k(med(r, name, 'sustained')),
          k(med(r, name, 'saturation')),
          `${k(med(r, name, 'serverCpuAtSaturation'))}%`,
          `${k(med(r, name, 'loadCpuAtSaturation'))}%`,
          `${k(med(r, name, 'redisCpuAtSaturation'))}%`,
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
      `${k(med(f, kind, 'serverCpuAtSaturation'))}%`,
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
    { title: 'Many channels: saturation (messages/s)', scenario: 'many-channels', key: 'saturation', scale: 1, unit: '' },
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
