/**
 * Human-readable log lines for a terminal: pino's JSON turned into `12:00:01.234 INFO  message key=value`,
 * written synchronously (nothing is lost when the process exits right after a line, as the CLI does on a
 * fatal error). The JSON format stays the default for anything that is not a terminal.
 */

/** Where formatted lines go (process.stdout, or a test's collector). */
export interface LineSink {
  write(text: string): unknown;
}

const LEVELS: Readonly<Record<number, { name: string; color: string }>> = {
  10: { name: 'TRACE', color: '\x1b[90m' },
  20: { name: 'DEBUG', color: '\x1b[36m' },
  30: { name: 'INFO', color: '\x1b[32m' },
  40: { name: 'WARN', color: '\x1b[33m' },
  50: { name: 'ERROR', color: '\x1b[31m' },
  60: { name: 'FATAL', color: '\x1b[41m' },
};
const RESET = '\x1b[0m';
const DIM = '\x1b[2m';
/** pino's fields that the line shows in its own way, or that say nothing on a terminal. */
const OMITTED = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'service']);

function value(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? String(v);
}

function clock(t: unknown): string {
  const d = new Date(typeof t === 'number' ? t : Date.now());
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** Formats one pino JSON line; a line that is not JSON is passed through as it is. */
export function formatLogLine(line: string, color: boolean): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.endsWith('\n') ? line : `${line}\n`;
  }
  const level = LEVELS[typeof rec['level'] === 'number' ? rec['level'] : 30] ?? { name: 'LOG', color: '' };
  const fields = Object.entries(rec)
    .filter(([k]) => !OMITTED.has(k))
    .map(([k, v]) => `${k}=${value(v)}`)
    .join(' ');
  const name = level.name.padEnd(5);
  const head = color ? `${DIM}${clock(rec['time'])}${RESET} ${level.color}${name}${RESET}` : `${clock(rec['time'])} ${name}`;
  const msg = typeof rec['msg'] === 'string' ? rec['msg'] : '';
  const tail = fields === '' ? '' : color ? ` ${DIM}${fields}${RESET}` : ` ${fields}`;
  return `${head} ${msg}${tail}\n`;
}

/** A pino destination that writes formatted lines to `sink` (colored when `color`). */
export function prettyDestination(sink: LineSink, color: boolean): { write(line: string): void } {
  return {
    write(line: string): void {
      sink.write(formatLogLine(line, color));
    },
  };
}
