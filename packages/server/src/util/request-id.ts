import { randomId } from './random-id.js';

/**
 * The id of an HTTP request, for its `X-Request-Id` answer header and its log lines: the request's own
 * `X-Request-Id` when it is 1-100 characters of `[A-Za-z0-9_.:-]`, otherwise 128 random bits as 22 characters of
 * base64url (docs/protocol.md). Not `randomUUID()`: its string is built from 20 pieces, about 600 bytes of garbage
 * on the path of every publish.
 */
export function requestIdOf(header: string | string[] | undefined): string {
  return typeof header === 'string' && /^[\w.:-]{1,100}$/.test(header) ? header : randomId(16);
}
