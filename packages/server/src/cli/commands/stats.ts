import type { NodeSnapshot } from '../../observability/snapshot-types.js';
import { flagsHelp, type FlagSpec, gatewayUrl, parseFlags, required } from './args.js';

const SPECS: readonly FlagSpec[] = [
  { flag: '--url', env: 'HERALD_URL', description: 'The gateway, e.g. http://127.0.0.1:8080 (default http://127.0.0.1:8080).' },
  { flag: '--key', env: 'HERALD_API_KEY', description: 'The API key.' },
  { flag: '--json', boolean: true, description: 'Print the JSON of GET /api/stats instead of a table.' },
];

export const STATS_HELP = flagsHelp(
  'herald stats [--url U] [--key K] [--json]',
  'Shows connections, channels and message rates of a running gateway (GET /api/stats).',
  SPECS,
);

/** `herald stats`: resolves with the exit code. */
export async function statsCommand(
  argv: readonly string[],
  io: { env: Readonly<Record<string, string | undefined>>; out: (t: string) => void },
): Promise<number> {
  const v = parseFlags(argv, SPECS, io.env, 'stats');
  const url = gatewayUrl(v, 'stats');
  const key = required(v, '--key', 'stats');
  let s: NodeSnapshot;
  try {
    const res = await fetch(`${url}/api/stats`, { headers: { authorization: `Bearer ${key}` }, signal: AbortSignal.timeout(10_000) });
    const body = (await res.json()) as NodeSnapshot & { error?: { code: string; message: string } };
    if (!res.ok) throw new Error(`${res.status} ${body.error?.code ?? ''} ${body.error?.message ?? ''}`.trim());
    s = body;
  } catch (err) {
    io.out(`herald stats: ${url}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  if (v.has('--json')) {
    io.out(`${JSON.stringify(s)}\n`);
    return 0;
  }
  // The gateway averages its rates over its own window; nothing to sample here.
  const drops = Object.entries(s.dropped)
    .map(([k, n]) => `${k}=${n}`)
    .join(' ');
  io.out(
    [
      `node         ${s.node} (${s.engine} engine)`,
      `connections  ${s.connections}`,
      `channels     ${s.channels}`,
      `published    ${s.published} total, ${s.rates.published.toFixed(1)}/s`,
      `delivered    ${s.delivered} total, ${s.rates.delivered.toFixed(1)}/s`,
      `dropped      ${drops || 'none'}`,
      '',
    ].join('\n'),
  );
  return 0;
}
