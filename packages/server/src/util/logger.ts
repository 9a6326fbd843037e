import { pino } from 'pino';
import { prettyDestination } from './pretty-log.js';

/** One logging method: structured fields first, then the message (pino's argument order). */
export type LogFn = {
  (fields: object, msg?: string): void;
  (msg: string): void;
};

/**
 * The structured logger the gateway writes to: the small part of pino's interface the code uses, so that
 * anything with these methods can be injected (pino satisfies it as is).
 */
export interface Logger {
  error: LogFn;
  warn: LogFn;
  info: LogFn;
  debug: LogFn;
  /** Whether lines at `level` are written (to skip building fields nobody reads). */
  isLevelEnabled(level: string): boolean;
}

/** Log levels accepted by the configuration. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Fields never written, whatever an object logged holds: a second line of defence behind logging ids only. */
const REDACT = [
  'token',
  'apiKey',
  'jwtSecret',
  'secret',
  'authorization',
  '*.authorization',
  '*.token',
  '*.secret',
  // ioredis puts the failed command on its errors: for AUTH its arguments are the user and the password.
  '*.command.args',
  '*.lastNodeError.command.args',
];

/** How `createLogger` writes. */
export interface LoggerFormat {
  /** Human-readable lines instead of JSON (for a terminal). @default false */
  pretty?: boolean;
  /** ANSI colors in pretty lines. @default false */
  color?: boolean;
  /** Fields every line carries besides `service` (a worker's number under `--workers`). */
  fields?: Record<string, string | number>;
}

/**
 * Creates the gateway's logger (pino): JSON lines on stdout, or human-readable lines with `pretty`. Secrets
 * never reach it: the gateway logs ids and codes, never tokens or keys, and the paths above are redacted as well.
 */
export function createLogger(level: LogLevel = 'info', format: LoggerFormat = {}): Logger {
  const options = { level, base: { service: 'herald', ...format.fields }, redact: { paths: REDACT, censor: '[redacted]' } };
  if (!format.pretty) return pino(options);
  return pino(options, prettyDestination(process.stdout, format.color === true));
}

const noop = (): void => undefined;

/** A logger that writes nothing (tests, embedding). */
export function silentLogger(): Logger {
  return { error: noop, warn: noop, info: noop, debug: noop, isLevelEnabled: () => false };
}
