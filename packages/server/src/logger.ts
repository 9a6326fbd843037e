import { pino, type Logger as PinoLogger } from 'pino';

/** The structured logger the gateway writes to (pino's interface). */
export type Logger = PinoLogger;

/** Log levels accepted by the configuration. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * Creates the JSON logger. Secrets never reach it: the gateway logs ids and codes, never tokens or keys,
 * and the paths below are redacted as a second line of defence.
 */
export function createLogger(level: LogLevel = 'info'): Logger {
  return pino({
    level,
    base: { service: 'herald' },
    redact: { paths: ['token', 'apiKey', 'jwtSecret', 'authorization', '*.authorization', '*.token'], censor: '[redacted]' },
  });
}

/** A logger that writes nothing (tests, embedding). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
