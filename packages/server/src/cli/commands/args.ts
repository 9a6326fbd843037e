import { ConfigError } from '../config.js';
import { hasCredentials, isHttpUrl } from '../../util/url.js';

/** A subcommand's flag: its name, whether it takes a value, and the environment variable it defaults to. */
export interface FlagSpec {
  flag: string;
  env?: string;
  boolean?: boolean;
  description: string;
}

/**
 * Parses `--flag value`, `--flag=value` and boolean `--flag` for a subcommand; unknown flags are errors that
 * name them. Environment defaults fill what the flags leave out.
 */
export function parseFlags(
  argv: readonly string[],
  specs: readonly FlagSpec[],
  env: Readonly<Record<string, string | undefined>>,
  command: string,
): Map<string, string> {
  const byFlag = new Map(specs.map((s) => [s.flag, s]));
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const spec = byFlag.get(flag);
    if (!spec) throw new ConfigError(`herald ${command}: unknown option ${flag} (see herald ${command} --help)`);
    const value = eq > 0 ? arg.slice(eq + 1) : spec.boolean ? 'true' : argv[++i];
    if (value === undefined) throw new ConfigError(`herald ${command}: ${flag} needs a value`);
    out.set(flag, value);
  }
  for (const s of specs) {
    const fromEnv = s.env === undefined ? undefined : env[s.env];
    if (!out.has(s.flag) && fromEnv !== undefined && fromEnv !== '') out.set(s.flag, fromEnv);
  }
  return out;
}

/** `--help` text of a subcommand. */
export function flagsHelp(usage: string, summary: string, specs: readonly FlagSpec[]): string {
  const lines = specs.map((s) => `  ${`${s.flag}${s.boolean ? '' : ' <value>'}`.padEnd(24)} ${s.description}${s.env ? ` [${s.env}]` : ''}`);
  return [`Usage: ${usage}`, '', summary, '', 'Options:', ...lines, `  ${'--help'.padEnd(24)} Show this help.`].join('\n');
}

/** The value of a required flag. */
export function required(values: Map<string, string>, flag: string, command: string): string {
  const v = values.get(flag);
  if (v === undefined || v === '') throw new ConfigError(`herald ${command}: ${flag} is required`);
  return v;
}

/**
 * The gateway URL of a subcommand (`--url`, `HERALD_URL`), without a trailing slash: an http(s) URL without a user
 * or password (fetch refuses those, and the password would show in every error printed; the key is `--key`).
 */
export function gatewayUrl(values: Map<string, string>, command: string): string {
  const url = (values.get('--url') ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  if (!isHttpUrl(url)) throw new ConfigError(`herald ${command}: --url must be an http(s) URL`);
  if (hasCredentials(url)) throw new ConfigError(`herald ${command}: --url must not carry a user or password (the API key goes in --key)`);
  return url;
}
