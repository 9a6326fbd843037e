import { flagsHelp, parseFlags, required, type FlagSpec } from './args.js';

const SPECS: readonly FlagSpec[] = [
  { flag: '--url', env: 'HERALD_URL', description: 'The gateway, e.g. http://127.0.0.1:8080 (default http://127.0.0.1:8080).' },
  { flag: '--key', env: 'HERALD_API_KEY', description: 'The API key.' },
  { flag: '--interval', description: 'Sampling interval for rates, in ms (default 1000).' },
  { flag: '--json', boolean: true, description: 'Print JSON instead of a table.' },
];

export const STATS_HELP = flagsHelp(
  'herald stats [--url U] [--key K] [--interval MS] [--json]',
  'Shows connections, channels and message rates of a running gateway (two samples of GET /api/stats).',
  SPECS,
);

/** What `GET /api/stats` answers. */
export interface StatsSnapshot {
  node: string;
  engine: string;
  connections: number;
  channels: number;
  published: number;
  delivered: number;
  dropped: Record<string, number>;
}

/** `herald stats`: resolves with the exit code. */
export async function statsCommand(
  argv: readonly string[],
  io: { env: Readonly<Record<string, string | undefined>>; out: (t: string) => void },
): Promise<number> {
  const v = parseFlags(argv, SPECS, io.env, 'stats');
  const url = (v.get('--url') ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  const key = required(v, '--key', 'stats');
  const interval = Math.max(100, Number(v.get('--interval') ?? 1000) || 1000);
  const sample = async (): Promise<StatsSnapshot> => {
    const res = await fetch(`${url}/api/stats`, { headers: { authorization: `Bearer ${key}` }, signal: AbortSignal.timeout(10_000) });
    const body = (await res.json()) as StatsSnapshot & { error?: { code: string; message: string } };
    if (!res.ok) throw new Error(`${res.status} ${body.error?.code ?? ''} ${body.error?.message ?? ''}`.trim());
    return body;
  };
  let a: StatsSnapshot;
  let b: StatsSnapshot;
  try {
    a = await sample();
    await new Promise((r) => setTimeout(r, interval));
    b = await sample();
  } catch (err) {
    io.out(`herald stats: ${url}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  const seconds = interval / 1000;
  const rates = { publishedPerSecond: (b.published - a.published) / seconds, deliveredPerSecond: (b.delivered - a.delivered) / seconds };
  if (v.has('--json')) {
    io.out(`${JSON.stringify({ ...b, ...rates })}\n`);
    return 0;
  }
  const drops = Object.entries(b.dropped)
    .map(([k, n]) => `${k}=${n}`)
    .join(' ');
  io.out(
    [
      `node         ${b.node} (${b.engine} engine)`,
      `connections  ${b.connections}`,
      `channels     ${b.channels}`,
      `published    ${b.published} total, ${rates.publishedPerSecond.toFixed(1)}/s`,
      `delivered    ${b.delivered} total, ${rates.deliveredPerSecond.toFixed(1)}/s`,
      `dropped      ${drops || 'none'}`,
      '',
    ].join('\n'),
  );
  return 0;
}
