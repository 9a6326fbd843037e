import { ERROR_CODE_INFO, type ErrorCode } from '@herald/protocol';
import type { Clock } from '../util/clock.js';
import { clientAddress, type AddressSet, type ForwardedHeader } from '../util/ip.js';
import { requestIdOf } from '../util/request-id.js';
import type { ConnectionLimits, LimitReason } from './limits.js';
import type { Admission, Rejection, UpgradeInfo } from './types.js';

export type { Admission, Rejection } from './types.js';

/** The `allowedOrigins` entry that allows any `Origin`. */
export const ANY_ORIGIN = '*';
/** The `allowedOrigins` entry that allows pages of the gateway's own origin (the `Origin` host equals `Host`). */
export const SAME_ORIGIN = 'same-origin';

/** What admission checks, in this order. */
export interface AdmissionRules {
  /** True once a graceful shutdown started: every upgrade gets 503. */
  shuttingDown(): boolean;
  /** Whether a path is a WebSocket endpoint (of any protocol). */
  isEndpoint(path: string): boolean;
  /** The endpoints, listed in the body of a 404. */
  endpoints: readonly string[];
  /**
   * Allowed `Origin` headers: empty allows any, `*` allows any, `same-origin` allows the gateway's own origin
   * (and requests without `Origin`, which browsers always send); other entries are exact origins.
   */
  allowedOrigins: readonly string[];
  /** TCP peers whose forwarding headers name the client and the host they asked for. */
  trustedProxies: AddressSet;
  /**
   * The forwarding header the trusted proxies write: `x-forwarded-for` (with `X-Forwarded-Host`) or RFC 7239
   * `forwarded` (`for=` and `host=`). The other is never read: a proxy passes it through as the client wrote it.
   */
  forwardedHeader: ForwardedHeader;
  /** The connection limits (global, per address, connect rate). */
  limits: ConnectionLimits;
  clock: Clock;
  /** Counts a connection refused by a limit. */
  refused(reason: LimitReason): void;
}

/** A rejection with the catalogue's status for `code`. */
export function reject(code: ErrorCode, message: string, extra?: Record<string, unknown>, headers?: Record<string, string>): Rejection {
  const r: Rejection = { status: ERROR_CODE_INFO[code].status ?? 500, code, message };
  if (extra) r.extra = extra;
  if (headers) r.headers = headers;
  return r;
}

const LIMIT_ERRORS: Readonly<Record<LimitReason, { code: ErrorCode; message: string }>> = {
  max_connections: { code: 'too_many_connections', message: 'the gateway has reached its connection limit; try again later' },
  max_connections_per_ip: { code: 'too_many_connections_per_ip', message: 'too many connections from this address' },
  connect_rate: { code: 'connect_rate_limited', message: 'connecting too fast from this address' },
};

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/**
 * The host a client asked for: from a trusted proxy, what its forwarding header says (`X-Forwarded-Host`, or the
 * `host=` of RFC 7239 `Forwarded`), else `Host`.
 */
function requestedHost(info: UpgradeInfo, peerTrusted: boolean, name: ForwardedHeader): string | undefined {
  if (peerTrusted) {
    // The rightmost entry: what the proxy nearest to Herald wrote (one that appends leaves the client's on the left).
    if (name === 'forwarded') {
      const forwarded = first(info.headers['forwarded']);
      const hosts = forwarded === undefined ? [] : [...forwarded.matchAll(/(?:^|[;,\s])host="?([^";,\s]+)"?/gi)];
      const host = hosts.at(-1)?.[1];
      if (host) return host.toLowerCase();
    } else {
      const xfh = first(info.headers['x-forwarded-host'])?.split(',').at(-1)?.trim();
      if (xfh) return xfh.toLowerCase();
    }
  }
  return first(info.headers.host)?.toLowerCase();
}

/** Whether `origin` (scheme://host[:port]) names the same host and port as `host`. */
function sameOrigin(origin: string, host: string | undefined): boolean {
  if (host === undefined) return false;
  try {
    const u = new URL(origin);
    // URL drops a scheme's default port; Host may carry it (`example.com:443`).
    const port = u.port || (u.protocol === 'https:' ? '443' : u.protocol === 'http:' ? '80' : '');
    return u.host.toLowerCase() === host || `${u.hostname}:${port}`.toLowerCase() === host;
  } catch {
    return false;
  }
}

/**
 * The one admission check every transport runs in its upgrade handler, before the WebSocket handshake:
 * shutdown, path, origin, then the connection limits (global 503, per address 429, connect rate 429, each
 * with `Retry-After`). Both transports answer a rejection with the same status and JSON body. It also
 * resolves the client's address behind a trusted proxy, and counts the WebSockets the transports open.
 */
export function createAdmission(rules: AdmissionRules): Admission {
  const anyOrigin = rules.allowedOrigins.length === 0 || rules.allowedOrigins.includes(ANY_ORIGIN);
  const allowSame = rules.allowedOrigins.includes(SAME_ORIGIN);
  const origins = new Set(rules.allowedOrigins.filter((o) => o !== SAME_ORIGIN));

  const originAllowed = (info: UpgradeInfo, peerTrusted: boolean): boolean => {
    if (anyOrigin) return true;
    if (info.origin !== undefined && origins.has(info.origin)) return true;
    // Only browsers send Origin, and cross-site WebSocket hijacking needs a browser: a client without one
    // (a backend, a mobile app) is not what the same-origin rule protects against.
    if (allowSame) return info.origin === undefined || sameOrigin(info.origin, requestedHost(info, peerTrusted, rules.forwardedHeader));
    return false;
  };

  /**
   * The address the per-address limits count: the client's, or none when the client is itself a trusted proxy
   * (one that named no client; a reverse proxy on this machine, by default): it carries everyone, and limiting
   * it as one client would limit them all together. The global limit still applies.
   */
  const limitKey = (client: string): string | undefined => (!rules.trustedProxies.empty && rules.trustedProxies.matches(client) ? undefined : client);

  const check = (info: UpgradeInfo): Rejection | undefined => {
    if (rules.shuttingDown()) return reject('shutting_down', 'the gateway is shutting down');
    if (!rules.isEndpoint(info.path)) {
      return reject('not_found', `no WebSocket endpoint at ${info.path.slice(0, 100)}`, { paths: [...rules.endpoints] });
    }
    const peer = info.ip;
    const peerTrusted = !rules.trustedProxies.empty && rules.trustedProxies.matches(peer);
    info.ip = clientAddress(peer, info.headers, rules.trustedProxies, rules.forwardedHeader);
    if (!originAllowed(info, peerTrusted)) return reject('forbidden', 'origin not allowed');
    const refusal = rules.limits.check(limitKey(info.ip), rules.clock.now());
    if (refusal === undefined) return undefined;
    rules.refused(refusal.reason);
    const { code, message } = LIMIT_ERRORS[refusal.reason];
    return reject(code, message, { retryAfter: refusal.retryAfter }, { 'retry-after': String(refusal.retryAfter) });
  };

  return {
    admit(info) {
      const refused = check(info);
      // Every HTTP answer carries X-Request-Id (docs/protocol.md), a refused upgrade too.
      if (refused) refused.headers = { ...refused.headers, 'x-request-id': requestIdOf(info.headers['x-request-id']) };
      return refused;
    },
    opened(info) {
      const reason = rules.limits.opened(limitKey(info.ip), rules.clock.now());
      if (reason === undefined) return true;
      rules.refused(reason);
      return false;
    },
    closed(ip) {
      rules.limits.closed(limitKey(ip));
    },
  };
}

/**
 * Why an upgrade request is not a WebSocket handshake (RFC 6455 4.2.1: a GET with `Upgrade: websocket`, a
 * `Sec-WebSocket-Key` of 16 bytes in base64, version 13), as a rejection with the JSON body of every other one; undefined
 * when it is one. For a transport whose library would otherwise answer in plain text, uncounted.
 */
export function handshakeProblem(method: string | undefined, headers: UpgradeInfo['headers']): Rejection | undefined {
  let r: Rejection | undefined;
  if (method !== 'GET') r = reject('invalid_handshake', 'a WebSocket handshake is a GET request');
  else if (first(headers.upgrade)?.toLowerCase() !== 'websocket') r = reject('invalid_handshake', 'the Upgrade header must be websocket');
  else if (!/^[+/0-9A-Za-z]{22}==$/.test(first(headers['sec-websocket-key'])?.trim() ?? '')) {
    r = reject('invalid_handshake', 'missing or invalid Sec-WebSocket-Key header');
  } else if (!['13', '8'].includes(first(headers['sec-websocket-version'])?.trim() ?? '')) {
    // 8 (a draft's) as `ws` itself accepts it.
    r = reject('invalid_handshake', 'unsupported Sec-WebSocket-Version (the gateway speaks 13)', undefined, { 'sec-websocket-version': '13' });
  }
  if (r) r.headers = { ...r.headers, 'x-request-id': requestIdOf(headers['x-request-id']) };
  return r;
}

const REASONS: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** The status line (`403 Forbidden`), headers and JSON body of a rejection. */
export function rejectionResponse(r: Rejection): { status: string; headers: Record<string, string>; body: string } {
  const body = JSON.stringify({ error: { code: r.code, message: r.message, ...r.extra } });
  return {
    status: `${r.status} ${REASONS[r.status] ?? 'Error'}`,
    headers: { 'content-type': 'application/json; charset=utf-8', ...r.headers },
    body,
  };
}
