import { ERROR_CODE_INFO, type ErrorCode } from '@herald/protocol';
import type { Admit, Rejection } from './types.js';

export type { Admit, Rejection } from './types.js';

/** What admission checks, in this order. */
export interface AdmissionRules {
  /** True once a graceful shutdown started: every upgrade gets 503. */
  shuttingDown(): boolean;
  /** Whether a path is a WebSocket endpoint (of any protocol). */
  isEndpoint(path: string): boolean;
  /** The endpoints, listed in the body of a 404. */
  endpoints: readonly string[];
  /** Allowed `Origin` headers; empty allows any. */
  allowedOrigins: readonly string[];
}

/** A rejection with the catalogue's status for `code`. */
export function reject(code: ErrorCode, message: string, extra?: Record<string, unknown>, headers?: Record<string, string>): Rejection {
  const r: Rejection = { status: ERROR_CODE_INFO[code].status ?? 500, code, message };
  if (extra) r.extra = extra;
  if (headers) r.headers = headers;
  return r;
}

/**
 * The one admission check every transport runs in its upgrade handler, before the WebSocket handshake:
 * shutdown, path, origin. Both transports answer a rejection with the same status and JSON body.
 */
export function createAdmission(rules: AdmissionRules): Admit {
  const origins = new Set(rules.allowedOrigins);
  return (info) => {
    if (rules.shuttingDown()) return reject('shutting_down', 'the gateway is shutting down');
    if (!rules.isEndpoint(info.path)) {
      return reject('not_found', `no WebSocket endpoint at ${info.path.slice(0, 100)}`, { paths: [...rules.endpoints] });
    }
    if (origins.size > 0 && (info.origin === undefined || !origins.has(info.origin))) return reject('forbidden', 'origin not allowed');
    return undefined;
  };
}

const REASONS: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** The status line (`403 Forbidden`), headers and JSON body of a rejection. */
export function rejectionResponse(r: Rejection): { status: string; headers: Record<string, string>; body: string } {
  const body = JSON.stringify({ error: { code: r.code, message: r.message, ...r.extra } });
  return {
    status: `${r.status} ${REASONS[r.status] ?? 'Error'}`,
    headers: { 'content-type': 'application/json', ...r.headers },
    body,
  };
}
