import type { PusherApp } from './apps.js';
import { md5Hex, safeEqual, sign } from './signatures.js';

/** Largest difference between `auth_timestamp` and the server's time (Pusher's 600 s). */
export const MAX_CLOCK_SKEW_S = 600;

/** Why a request signature was refused; undefined when it is valid. */
export type SignatureProblem = string | undefined;

/**
 * The string an HTTP API request signs: `METHOD\nPATH\nquery`, where query is every parameter but
 * `auth_signature`, keys lowercased, sorted by key (byte order), joined as `k=v` with `&`, values decoded (not
 * URL-escaped). That is what the Node SDK (raw values) and the PHP SDK (Guzzle escapes the URL, the signature
 * is of the raw values) both produce.
 */
export function stringToSign(method: string, path: string, params: URLSearchParams): string {
  const pairs: Array<[string, string]> = [];
  for (const [k, v] of params) if (k !== 'auth_signature') pairs.push([k.toLowerCase(), v]);
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return `${method}\n${path}\n${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`;
}

/**
 * Verifies a signed request of `app` (docs/pusher.md): `auth_key` is the app's key, `auth_version` 1.0,
 * `auth_timestamp` within 600 s of `nowMs`, `body_md5` the MD5 of the raw body when there is one, and
 * `auth_signature` the HMAC-SHA256 of `stringToSign`, compared in constant time.
 */
export function verifyRequest(app: PusherApp, method: string, path: string, params: URLSearchParams, body: Buffer, nowMs: number): SignatureProblem {
  const signature = params.get('auth_signature');
  if (signature === null) return 'auth_signature is missing';
  if (params.get('auth_key') !== app.key) return 'auth_key is not the key of this app';
  if (params.get('auth_version') !== '1.0') return 'auth_version must be 1.0';
  const ts = params.get('auth_timestamp');
  if (ts === null || !/^\d{1,12}$/.test(ts)) return 'auth_timestamp is missing or not a number';
  const skew = Math.abs(nowMs / 1000 - Number(ts));
  if (skew > MAX_CLOCK_SKEW_S) return `Timestamp expired: Given timestamp (${ts}) not within ${MAX_CLOCK_SKEW_S}s of server time (${Math.floor(nowMs / 1000)})`;
  if (body.length > 0 && params.get('body_md5') !== md5Hex(body)) return 'body_md5 does not match the body';
  if (!safeEqual(signature, sign(app.secret, stringToSign(method, path, params)))) return 'Invalid signature';
  return undefined;
}
