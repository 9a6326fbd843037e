import { randomUUID } from 'node:crypto';
import { ConfigError } from '../config.js';
import { flagsHelp, type FlagSpec, gatewayUrl, parseFlags, required } from './args.js';

const SPECS: readonly FlagSpec[] = [
  { flag: '--url', env: 'HERALD_URL', description: 'The gateway, e.g. http://127.0.0.1:8080 (default http://127.0.0.1:8080).' },
  { flag: '--key', env: 'HERALD_API_KEY', description: 'The API key.' },
  { flag: '--channel', description: 'The channel to publish to (comma-separated for several).' },
  { flag: '--user', description: 'Publish to user:<id> (every connection of that user).' },
  { flag: '--client', description: 'Publish to one connection (fails with no_such_client when it is gone).' },
  { flag: '--type', description: 'The message type, e.g. notice.' },
  { flag: '--payload', description: 'The JSON payload (an object or array); "-" or omitted: read it from stdin.' },
  { flag: '--id', description: 'An idempotency key: the same id twice publishes once (default: a random one, so retries are safe).' },
  { flag: '--retries', description: 'Retries after an unknown outcome (504 engine_timeout, no answer) or a 503, with the same id (default 3).' },
];

export const PUBLISH_HELP = flagsHelp(
  'herald publish --channel C --type T --payload JSON [--url U] [--key K]',
  "Publishes one message through a running gateway's HTTP API and prints the answer (seq per channel).",
  SPECS,
);

/** What `herald publish` needs from its environment (injected for tests). */
export interface PublishIo {
  env: Readonly<Record<string, string | undefined>>;
  readStdin: () => Promise<string>;
  out: (text: string) => void;
  /** Waits between retries. @default setTimeout */
  sleep?: (ms: number) => Promise<void>;
}

/** Statuses after which the same publish (same id) is sent again: nothing accepted (503), or unknown (504). */
const RETRY_STATUSES: ReadonlySet<number> = new Set([502, 503, 504]);
const RETRY_BASE_MS = 250;

/** `herald publish`: resolves with the exit code (0 published, 1 refused by the gateway or unreachable). */
export async function publishCommand(argv: readonly string[], io: PublishIo): Promise<number> {
  const v = parseFlags(argv, SPECS, io.env, 'publish');
  const url = gatewayUrl(v, 'publish');
  const key = required(v, '--key', 'publish');
  const type = required(v, '--type', 'publish');
  const targets = ['--channel', '--user', '--client'].filter((f) => v.has(f));
  if (targets.length !== 1) throw new ConfigError('herald publish: give exactly one of --channel, --user, --client');
  const raw = v.get('--payload');
  const text = raw === undefined || raw === '-' ? await io.readStdin() : raw;
  let payload: unknown;
  try {
    payload = JSON.parse(text);
  } catch {
    throw new ConfigError('herald publish: --payload is not valid JSON');
  }
  const body: Record<string, unknown> = { type, payload };
  if (v.has('--channel')) {
    const channels = (v.get('--channel') as string).split(',').map((c) => c.trim());
    if (channels.length === 1) body['channel'] = channels[0];
    else body['channels'] = channels;
  } else if (v.has('--user')) body['channel'] = `user:${v.get('--user') as string}`;
  else body['client'] = v.get('--client');
  // Always an id: a retry after an unknown outcome must not publish twice.
  body['id'] = v.get('--id') ?? `cli-${randomUUID()}`;
  const retriesText = v.get('--retries') ?? '3';
  if (!/^\d+$/.test(retriesText) || Number(retriesText) > 20) throw new ConfigError('herald publish: --retries must be 0-20');
  const retries = Number(retriesText);
  const sleep = io.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));

  for (let attempt = 0; ; attempt++) {
    let res: Response | undefined;
    let failure = '';
    try {
      res = await fetch(`${url}/api/publish`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (err) {
      failure = `cannot reach ${url}: ${err instanceof Error ? err.message : String(err)}`;
    }
    const answer = res === undefined ? undefined : await res.text();
    const retry = res === undefined || RETRY_STATUSES.has(res.status);
    if (!retry || attempt >= retries) {
      if (res === undefined) io.out(`herald publish: ${failure} (id ${String(body['id'])}; publishing again with this id is safe)\n`);
      else io.out(`${answer ?? ''}\n`);
      return res?.ok ? 0 : 1;
    }
    await sleep(RETRY_BASE_MS * 2 ** attempt);
  }
}
