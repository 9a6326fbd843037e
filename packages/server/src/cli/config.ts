import { readFileSync } from 'node:fs';
import type { GatewayOptions } from '../gateway/options.js';
import type { LogLevel } from '../util/logger.js';
import { isKubernetesServiceVariable, nearMisses } from './env-names.js';
import { defaultText, flagArgument } from './setting-text.js';
import { NODE_DEFAULTS, SETTINGS, type NodeSettings, type Setting } from './settings.js';

export { defaultText } from './setting-text.js';
export { LOG_FORMATS, NODE_DEFAULTS, SETTINGS } from './settings.js';
export type { LogFormat, NodeSettings, Setting, SettingType } from './settings.js';

/** A setting that could not be parsed; the message names it. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Parsed configuration: gateway options, process settings, and which keys were set explicitly. */
export interface Config {
  options: GatewayOptions;
  node: NodeSettings;
  explicit: Set<string>;
  /** The log level (also in `node`). */
  logLevel: LogLevel;
  /** What the environment looked like, to log once the logger exists (ignored and unknown variables). */
  notices: ConfigNotice[];
}

/** A line to log about the configuration: the CLI has no logger while it parses it. */
export interface ConfigNotice {
  level: 'debug' | 'info' | 'warn';
  msg: string;
  fields: Record<string, unknown>;
}

function parseValue(s: Setting, raw: string, source: string, readFile: (path: string) => string): unknown {
  switch (s.type) {
    case 'int': {
      if (!/^\d+$/.test(raw.trim())) throw new ConfigError(`${source}: expected a non-negative integer, got ${JSON.stringify(raw)}`);
      return Number(raw.trim());
    }
    case 'bool': {
      const v = raw.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(v)) return true;
      if (['0', 'false', 'no', 'off'].includes(v)) return false;
      throw new ConfigError(`${source}: expected true or false, got ${JSON.stringify(raw)}`);
    }
    case 'list':
      return splitList(raw);
    case 'files':
      return splitList(raw).map((path) => {
        try {
          return readFile(path);
        } catch (err) {
          throw new ConfigError(`${source}: cannot read ${path} (${err instanceof Error ? err.message : String(err)})`);
        }
      });
    case 'enum':
      if (!s.values?.includes(raw)) throw new ConfigError(`${source}: expected one of ${s.values?.join(', ')}, got ${JSON.stringify(raw)}`);
      return raw;
    case 'string':
      return raw;
    case 'json':
      return jsonArray(raw, source);
  }
}

/** A JSON array of objects (the `json` settings: Pusher apps). */
function jsonArray(raw: string | unknown[], source: string): Array<Record<string, unknown>> {
  let v: unknown = raw;
  if (typeof raw === 'string') {
    try {
      v = JSON.parse(raw);
    } catch {
      throw new ConfigError(`${source}: expected a JSON array of objects, got invalid JSON`);
    }
  }
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'object' && x !== null && !Array.isArray(x))) {
    throw new ConfigError(`${source}: expected a JSON array of objects`);
  }
  return v as Array<Record<string, unknown>>;
}

/**
 * The gateway options with the app of HERALD_PUSHER_APP_ID/KEY/SECRET (or their flags) added to `pusherApps`,
 * replacing an app with the same id from the file. The three go together; one alone is a ConfigError.
 */
export function withPusherApp(options: GatewayOptions, node: NodeSettings): GatewayOptions {
  const { pusherAppId: id, pusherAppKey: key, pusherAppSecret: secret } = node;
  if (id === undefined && key === undefined && secret === undefined) return options;
  if (id === undefined || key === undefined || secret === undefined) {
    throw new ConfigError('HERALD_PUSHER_APP_ID, HERALD_PUSHER_APP_KEY and HERALD_PUSHER_APP_SECRET (or their flags) go together: set all three');
  }
  return { ...options, pusherApps: [...(options.pusherApps ?? []).filter((a) => a.id !== id), { id, key, secret }] };
}

function splitList(raw: string): string[] {
  return raw
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0);
}

/**
 * Reads settings from the configuration file, environment variables, then flags (flags win). Unknown flags and invalid
 * values of known settings are errors that name the offender. Unknown `HERALD_*` variables are warnings (in
 * `notices`, with the settings they are close to), and the variables Kubernetes injects for a Service named
 * `herald` (`HERALD_SERVICE_HOST`, `HERALD_PORT=tcp://...`, `HERALD_PORT_8080_TCP_*`) are recognised and ignored.
 */
export function parseConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  readFile: (path: string) => string = (p) => readFileSync(p, 'utf8'),
): Config {
  const values = new Map<string, unknown>();
  const byEnv = new Map(SETTINGS.map((s) => [s.env, s]));
  const byFlag = new Map(SETTINGS.map((s) => [s.flag, s]));
  const byKey = new Map(SETTINGS.map((s) => [s.key as string, s]));
  // HERALD_URL is the gateway's address for clients (CLI publish, the PHP examples); HERALD_DEV_API_KEY is how a
  // primary hands its development key to its workers. Neither configures the server.
  const notSettings = new Set(['HERALD_URL', 'HERALD_DEV_API_KEY']);
  const knownEnv = [...byEnv.keys(), ...notSettings];
  const fromEnv = new Map<string, unknown>();
  const notices: ConfigNotice[] = [];
  const kubernetes: string[] = [];
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('HERALD_') || raw === undefined || notSettings.has(name)) continue;
    if (isKubernetesServiceVariable(name, raw)) {
      kubernetes.push(name);
      continue;
    }
    const s = byEnv.get(name);
    if (!s) {
      // A typo must not pass unnoticed, but an unrelated variable that happens to start with HERALD_ must not
      // stop the process either: warn, naming the settings it may have meant.
      const near = nearMisses(name, knownEnv);
      notices.push({
        level: 'warn',
        msg: `unknown environment variable ${name} ignored${near.length > 0 ? ` (did you mean ${near.join(' or ')}?)` : ''}; see docs/configuration.md`,
        fields: { variable: name, nearMisses: near },
      });
      continue;
    }
    fromEnv.set(s.key, parseValue(s, raw, name, readFile));
  }
  if (kubernetes.length > 0) {
    notices.push({
      level: 'info',
      msg: 'ignored the service variables Kubernetes sets for a Service named herald',
      fields: { variables: kubernetes.sort() },
    });
  }
  const fromFlags = new Map<string, unknown>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const s = byFlag.get(flag);
    if (!s) throw new ConfigError(`unknown option ${flag} (see herald --help)`);
    let raw: string | undefined;
    if (eq > 0) raw = arg.slice(eq + 1);
    else if (s.type === 'bool' && (argv[i + 1] === undefined || (argv[i + 1] as string).startsWith('--'))) raw = 'true';
    else raw = argv[++i];
    if (raw === undefined) throw new ConfigError(`${flag}: a value is required`);
    fromFlags.set(s.key, parseValue(s, raw, flag, readFile));
  }
  // Precedence: flags, then environment variables, then the configuration file, then defaults.
  const file = (fromFlags.get('config') ?? fromEnv.get('config')) as string | undefined;
  if (file !== undefined) {
    for (const [k, v] of readConfigFile(file, readFile, byKey)) values.set(k, v);
  }
  for (const [k, v] of fromEnv) values.set(k, v);
  for (const [k, v] of fromFlags) values.set(k, v);
  const options: Record<string, unknown> = {};
  const node: Record<string, unknown> = { ...NODE_DEFAULTS };
  for (const [k, v] of values) {
    if (k in NODE_DEFAULTS) node[k] = v;
    else options[k] = v;
  }
  const n = node as unknown as NodeSettings;
  return { options: options as GatewayOptions, node: n, logLevel: n.logLevel, explicit: new Set(values.keys()), notices };
}

/** Reads a JSON configuration file: an object keyed by setting names, with JSON values of the setting's type. */
function readConfigFile(path: string, readFile: (path: string) => string, byKey: ReadonlyMap<string, Setting>): Map<string, unknown> {
  let text: string;
  try {
    text = readFile(path);
  } catch (err) {
    throw new ConfigError(`${path}: cannot read the configuration file (${err instanceof Error ? err.message : String(err)})`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    // Not the parser's message: it quotes the text around the error, which may be a secret.
    const at = err instanceof Error ? /position (\d+)/.exec(err.message)?.[1] : undefined;
    throw new ConfigError(`${path}: not valid JSON${at === undefined ? '' : ` (at character ${at})`}`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new ConfigError(`${path}: must be a JSON object of settings`);
  const out = new Map<string, unknown>();
  for (const [key, value] of Object.entries(data)) {
    const s = byKey.get(key);
    if (!s || key === 'config') throw new ConfigError(`${path}: unknown setting "${key}" (see docs/configuration.md)`);
    const where = `${path}: ${key}`;
    // JSON values are taken as they are typed; strings go through the same parser as the environment.
    if (typeof value === 'string') out.set(key, parseValue(s, value, where, readFile));
    else if (s.type === 'int' && typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) out.set(key, value);
    else if (s.type === 'bool' && typeof value === 'boolean') out.set(key, value);
    else if (s.type === 'list' && Array.isArray(value) && value.every((v): v is string => typeof v === 'string')) out.set(key, value);
    else if (s.type === 'json' && Array.isArray(value)) out.set(key, jsonArray(value, where));
    else if (s.type === 'files' && Array.isArray(value) && value.every((v): v is string => typeof v === 'string'))
      out.set(key, parseValue(s, value.join(','), where, readFile));
    else
      throw new ConfigError(
        `${where}: expected ${s.type === 'json' ? 'an array of objects' : s.type === 'list' || s.type === 'files' ? 'an array of strings' : s.type === 'int' ? 'a non-negative integer' : s.type === 'bool' ? 'true or false' : 'a string'}`,
      );
  }
  return out;
}

/** `--help` text generated from the schema. */
export function helpText(): string {
  const lines = SETTINGS.map(
    (s) =>
      `  ${`${s.flag}${flagArgument(s)}`.padEnd(30)} ${s.description}${s.values === undefined ? '' : ` One of ${s.values.join(', ')}.`} [${s.env}; default: ${defaultText(s)}]`,
  );
  return [
    'Usage: herald [serve] [options]',
    '',
    'Starts the Herald gateway. Every option can also be set with its environment variable or in a JSON file',
    '(--config); flags win over the environment, which wins over the file.',
    'With no API key and no JWT secret it starts in development mode (a generated API key is printed once,',
    'anonymous clients allowed). NODE_ENV=production refuses to start without secrets.',
    '',
    'Options:',
    ...lines,
    `  ${'--help'.padEnd(30)} Show this help.`,
    `  ${'--version'.padEnd(30)} Show the version.`,
  ].join('\n');
}
