/**
 * The process's file-descriptor limit and the connection budget derived from it: every socket is a file
 * descriptor, and a process out of them cannot accept a health check, reach Redis or open a file.
 */
import { readFileSync } from 'node:fs';

/**
 * The limit assumed where `/proc/self/limits` cannot be read (not Linux): a conservative figure that common
 * systems allow (macOS and most Linux distributions give a process at least this many once Node has raised
 * its soft limit to the hard one, which it does at start-up).
 */
export const FALLBACK_FD_LIMIT = 4096;

/** Descriptors kept out of the connection budget: the listening socket, Redis, log files, DNS, libuv, health checks. */
export const RESERVED_FDS = 256;

/** The soft "Max open files" limit of this process from `/proc/self/limits`; undefined when unknown or unlimited. */
export function readFdLimit(read: (path: string) => string = (p) => readFileSync(p, 'utf8')): number | undefined {
  let text: string;
  try {
    text = read('/proc/self/limits');
  } catch {
    return undefined;
  }
  const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(text);
  if (!m || m[1] === 'unlimited') return undefined;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/** How a file-descriptor limit is shared out. */
export interface ConnectionBudget {
  /** The limit the budget was computed from. */
  fdLimit: number;
  /** WebSocket connections (`maxConnections`): 80% of what is left after the reserve. */
  maxConnections: number;
  /** Sockets that are not (yet) WebSockets: HTTP requests and handshakes in progress (the other 20%). */
  maxPendingConnections: number;
}

/**
 * Splits `fdLimit` (default: this process's, else `FALLBACK_FD_LIMIT`) into WebSocket connections and
 * other sockets, after keeping `RESERVED_FDS` free, so that a flood of either kind leaves descriptors for the
 * HTTP API, Redis and health checks.
 */
export function connectionBudget(fdLimit: number = readFdLimit() ?? FALLBACK_FD_LIMIT): ConnectionBudget {
  const usable = Math.max(64, fdLimit - RESERVED_FDS);
  const maxConnections = Math.max(1, Math.floor(usable * 0.8));
  return { fdLimit, maxConnections, maxPendingConnections: Math.max(1, usable - maxConnections) };
}
