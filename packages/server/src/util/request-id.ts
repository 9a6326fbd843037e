import { randomUUID } from 'node:crypto';

/**
 * The id of an HTTP request, for its `X-Request-Id` answer header and its log lines: the request's own
 * `X-Request-Id` when it is 1-100 characters of `[A-Za-z0-9_.:-]`, otherwise a new UUID (docs/protocol.md).
 */
export function requestIdOf(header: string | string[] | undefined): string {
  return typeof header === 'string' && /^[\w.:-]{1,100}$/.test(header) ? header : randomUUID();
}
