import { defaultText, flagArgument } from './setting-text.js';
import { NODE_DEFAULTS, SETTINGS, type Setting } from './settings.js';

/**
 * Renders docs/configuration.md from the configuration schema (`SETTINGS` in settings.ts; defaults and flag
 * placeholders as setting-text.ts shows them). `scripts/gen-config-docs.mjs` writes the result to disk; a test checks that the committed
 * file equals this output, so the schema and the documentation cannot drift apart.
 *
 * The output is already in the shape Prettier gives Markdown (padded tables), so formatting the
 * repository never makes the committed file differ from a fresh render.
 */
export function renderConfigurationDoc(): string {
  const rows = SETTINGS.map((s) => [code(s.key), code(s.env), code(`${s.flag}${flagArgument(s)}`), defaultCell(s), escapeCell(description(s))]);
  const table = renderTable(['Setting', 'Environment variable', 'Flag', 'Default', 'Description'], rows);
  // The node's own settings (logging, workers, the Redis engine's connection) are not createGateway() options.
  const nodeOnly = SETTINGS.filter((s) => s.key in NODE_DEFAULTS)
    .map((s) => code(s.key))
    .join(', ');

  return `${[
    '# Configuration',
    '',
    '<!-- Generated from packages/server/src/cli/config.ts by scripts/gen-config-docs.mjs. Do not edit by hand: change SETTINGS, then run `npx tsc -b packages/server && node scripts/gen-config-docs.mjs`. -->',
    '',
    'Every setting of the `herald` command can be given as a command-line flag, as an environment variable, or in a',
    'JSON configuration file (`--config herald.json` or `HERALD_CONFIG`, keyed by the names in the first column).',
    'Precedence: **flags > environment variables > configuration file > defaults**. A flag takes its value as the',
    'next argument (`--port 9000`) or after `=` (`--port=9000`); a boolean flag given alone means `true`',
    '(`--allow-anonymous`).',
    '',
    '```sh',
    'HERALD_API_KEY=… HERALD_JWT_SECRET=… npx herald --port 9000 --log-level debug',
    'npx herald --help       # every flag with its environment variable and default',
    'npx herald --config herald.json   # {"port": 9000, "apiKeys": ["…"], "redisUrl": "redis://10.0.0.5:6379"}',
    '```',
    '',
    'Values:',
    '',
    '- integers are non-negative decimal numbers; durations are in milliseconds (`_MS`), sizes in bytes (`_BYTES`);',
    '- booleans accept `true`, `1`, `yes`, `on` and `false`, `0`, `no`, `off` (case-insensitive);',
    '- lists are comma-separated; spaces around items and empty items are ignored.',
    '',
    'An unknown flag is an error that names it, and so is an unknown key in the configuration file. An unknown',
    'environment variable starting with `HERALD_` is logged as a warning at start-up that names it and the settings it',
    'may have meant (`unknown environment variable HERALD_PROT ignored (did you mean HERALD_PORT?)`), then ignored:',
    "environments often hold other tools' `HERALD_` variables (`HERALD_URL` is tolerated without a warning). Read the",
    'start-up warnings after changing the environment.',
    'Invalid values stop the gateway before it listens, with exit code 2 and a message naming the setting. Besides',
    'the per-setting rules in the table: durations, limits and sizes must be greater than 0 and at most 2147483647',
    '(except `port`, where 0 picks a free port, and `historySize`, where 0 disables history); `idleTimeout` must be greater than',
    '`pingInterval`; WebSocket paths must start with `/` and must not be `/healthz`, `/readyz`, `/metrics`, `/admin` or under `/api/`',
    'or `/admin/`. `admin` needs an API key.',
    '',
    'The **Setting** column is the option name of `createGateway()` for embedding the gateway in a Node program',
    '(the settings of the node itself exist only for the `herald` command, and an embedding program passes an',
    `\`engine\` of its own instead of the Redis settings: ${nodeOnly}). Settings marked **Secret** are never logged or`,
    'printed.',
    '',
    '## Development mode',
    '',
    'When **neither** `HERALD_API_KEY` **nor** a way to verify tokens (`HERALD_JWT_SECRET`, JWT public keys or',
    '`HERALD_JWKS_URL`) is set (and `NODE_ENV` is not `production`), Herald starts in development mode (a variable set',
    'to an empty list, `HERALD_API_KEY=" , "`, is refused instead):',
    '',
    '- it generates an API key (`dev_…`) that exists only in this process and prints it once on stdout, outside',
    '  the logs, with the WebSocket URL and a `curl` example;',
    '- anonymous connections are allowed (`allowAnonymous` becomes `true`) unless `HERALD_ALLOW_ANONYMOUS` or',
    '  `--allow-anonymous` is set explicitly;',
    '- it derives a JWT secret from that key and prints it too, so tokens made with it work',
    '  (`herald token --user 42 --secret …`); the demo page mints tokens with it for its visitors on this machine (a',
    '  demo user who may join `presence:demo` and publish to `chat:demo`), and no other machine gets one.',
    '',
    'Setting only one of the two secrets leaves development mode off. With only a JWT secret the HTTP API has no',
    'key and answers 401 to every `/api/*` call; with only an API key, clients can connect only when anonymous',
    'connections are allowed.',
    '',
    '## Production rules',
    '',
    'With `NODE_ENV=production` the gateway refuses to start (exit code 2) when:',
    '',
    '- neither `HERALD_API_KEY` nor a key for connection tokens (`HERALD_JWT_SECRET`, `HERALD_JWT_PUBLIC_KEY_FILES` or',
    '  `HERALD_JWKS_URL`) is set (development mode is never entered in production);',
    '- `HERALD_API_KEY` is not set (backends could not publish);',
    '- none of `HERALD_JWT_SECRET`, `HERALD_JWT_PUBLIC_KEY_FILES` and `HERALD_JWKS_URL` is set and',
    '  `HERALD_ALLOW_ANONYMOUS` is not `true` (no client could connect).',
    '',
    'API keys must be at least 16 characters and JWT secrets at least 32 characters (HS256 needs 256 bits), in',
    'every mode. Several comma-separated values allow rotation: every configured key or secret is accepted.',
    '',
    '## Settings',
    '',
    table,
  ].join('\n')}\n`;
}

function description(s: Setting): string {
  let text = s.description;
  if (s.values !== undefined) text += ` One of ${s.values.map(code).join(', ')}.`;
  if (s.secret === true) text = `**Secret.** ${text}`;
  return text;
}

function defaultCell(s: Setting): string {
  const text = defaultText(s);
  if (s.defaultNote !== undefined || text === 'empty') return escapeCell(text);
  const n = Number(text);
  if (s.type === 'int' && Number.isFinite(n)) {
    if (s.env.endsWith('_MS')) return `${code(text)} (${duration(n)})`;
    if (s.env.endsWith('_BYTES')) return `${code(text)} (${bytes(n)})`;
  }
  return code(text);
}

function duration(ms: number): string {
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms >= 1000 && ms % 1000 === 0) return `${ms / 1000} s`;
  return `${ms} ms`;
}

function bytes(n: number): string {
  if (n >= 1_048_576 && n % 1_048_576 === 0) return `${n / 1_048_576} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} B`;
}

function code(text: string): string {
  return `\`${text}\``;
}

/** A pipe would end the table cell, even inside a code span. */
function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

/** A Markdown table with every column padded to its widest cell, as Prettier prints it. */
function renderTable(header: readonly string[], rows: readonly string[][]): string {
  const widths = header.map((h, i) => Math.max(3, h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
