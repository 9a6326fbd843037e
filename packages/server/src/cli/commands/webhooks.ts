import { flagsHelp, type FlagSpec, gatewayUrl, parseFlags, required } from './args.js';

const SPECS: readonly FlagSpec[] = [
  { flag: '--url', env: 'HERALD_URL', description: 'The gateway, e.g. http://127.0.0.1:8080 (default http://127.0.0.1:8080).' },
  { flag: '--key', env: 'HERALD_API_KEY', description: 'The API key.' },
  { flag: '--id', description: 'Replay only this dead letter (its id, as `herald webhooks list` shows); default: all of them.' },
];

export const WEBHOOKS_HELP = flagsHelp(
  'herald webhooks replay|list [--url U] [--key K] [--id ID]',
  'replay: queues the webhook dead letters again, as fresh deliveries (POST /api/webhooks/replay).\nlist: shows the queue and the dead letters (GET /api/webhooks).',
  SPECS,
);

/** `herald webhooks replay|list`: resolves with the exit code. */
export async function webhooksCommand(
  argv: readonly string[],
  io: { env: Readonly<Record<string, string | undefined>>; out: (t: string) => void },
): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb !== 'replay' && verb !== 'list') {
    io.out(`herald webhooks: expected replay or list\n\n${WEBHOOKS_HELP}\n`);
    return 2;
  }
  const v = parseFlags(rest, SPECS, io.env, 'webhooks');
  const url = gatewayUrl(v, 'webhooks');
  const key = required(v, '--key', 'webhooks');
  const id = v.get('--id');
  try {
    const res = await fetch(`${url}/api/webhooks${verb === 'replay' ? '/replay' : ''}`, {
      method: verb === 'replay' ? 'POST' : 'GET',
      headers: { authorization: `Bearer ${key}`, ...(verb === 'replay' ? { 'content-type': 'application/json' } : {}) },
      ...(verb === 'replay' ? { body: JSON.stringify(id === undefined ? {} : { ids: [id] }) } : {}),
      signal: AbortSignal.timeout(30_000),
    });
    const body = (await res.json()) as {
      replayed?: number;
      queued?: number;
      dead?: number;
      deadLetters?: unknown[];
      error?: { code: string; message: string };
    };
    if (!res.ok) throw new Error(`${res.status} ${body.error?.code ?? ''} ${body.error?.message ?? ''}`.trim());
    if (verb === 'replay') io.out(`replayed ${body.replayed ?? 0} dead letter(s)\n`);
    else io.out(`${JSON.stringify(body, null, 2)}\n`);
    return 0;
  } catch (err) {
    io.out(`herald webhooks ${verb}: ${url}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
