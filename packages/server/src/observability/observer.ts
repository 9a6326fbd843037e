import { CloseCode } from '@herald/protocol';
import type { EventIds, StatsObserver } from '../delivery/stats.js';
import type { LogLimiter } from '../util/log-limiter.js';

/** Close codes that are part of normal operation: logged at debug, not info. */
const ROUTINE_CLOSES: ReadonlySet<number> = new Set([CloseCode.Normal, CloseCode.GoingAway, CloseCode.ServiceRestart, 1005]);
/** Drop reasons that are routine (a push to a user who is not connected): debug, not info. */
const ROUTINE_DROPS: ReadonlySet<string> = new Set(['user_offline']);

/** Keeps the ids that are set (pino would print `undefined` fields as missing anyway; this keeps lines short). */
function defined(ids: EventIds | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (ids) for (const [k, v] of Object.entries(ids)) if (v !== undefined) out[k] = v;
  return out;
}

/**
 * Logs every counted event once, with its reason and ids, through the rate limiter (one bucket per close
 * code, drop reason, auth failure reason and engine operation):
 * - `connection closed` {client, user, code, reason, by}: info when the server closed it for a problem,
 *   debug for routine closes and for closes by the peer;
 * - `message dropped` {reason, client | channel | user, requestId, count}: info (debug for `user_offline`;
 *   `ingest_*` drops are logged by the ingest, with the stream entry id);
 * - `authentication failed` {reason, client | requestId | path}: info;
 * - `engine operation failed` {operation, ...}: warn.
 */
export function createLogObserver(limiter: LogLimiter): StatsObserver {
  return {
    closed(code, ids) {
      const level = ids['by'] === 'server' && !ROUTINE_CLOSES.has(code) ? 'info' : 'debug';
      limiter.log(level, `close:${code}`, { ...defined(ids), code }, 'connection closed');
    },
    dropped(reason, n, ids) {
      // The ingest logs its dead letters itself, with the stream entry id ("redis ingest: message dead-lettered").
      if (reason.startsWith('ingest_')) return;
      const level = ROUTINE_DROPS.has(reason) ? 'debug' : 'info';
      // A push to an offline user is routine and frequent: nothing is built when its level is off.
      if (!limiter.enabled(level)) return;
      const fields = { reason, ...defined(ids), ...(n === 1 ? {} : { count: n }) };
      limiter.log(level, `drop:${reason}`, fields, 'message dropped');
    },
    authFailed(reason, ids) {
      limiter.log('info', `auth:${reason}`, { reason, ...defined(ids) }, 'authentication failed');
    },
    limited(limit, ids) {
      limiter.log('info', `limit:${limit}`, { limit, ...defined(ids) }, 'limit reached');
    },
    engineError(operation, ids) {
      limiter.log('warn', `engine:${operation}`, { operation, ...defined(ids) }, 'engine operation failed');
    },
  };
}
