/**
 * Signed Pusher HTTP API requests as the SDKs make them (raw query values sorted by key, HMAC-SHA256 of
 * `METHOD\nPATH\nquery`, `body_md5`), with knobs to break each part on purpose.
 */
import { createHash } from 'node:crypto';
import { APP, hmac } from './pusher-helpers.js';

export interface SignOptions {
  app?: { key: string; secret: string };
  /** Seconds since the epoch (default: now). */
  timestamp?: number;
  /** More query parameters (signed). */
  query?: Record<string, string>;
  /** Replace the signature. */
  signature?: string;
  /** Replace body_md5. */
  bodyMd5?: string;
  /** Send this raw body instead of JSON.stringify(body). */
  raw?: string;
}

/** The signed query string of a request. */
export function signQuery(method: string, path: string, body: string, o: SignOptions = {}): string {
  const app = o.app ?? APP;
  const params: Record<string, string> = {
    auth_key: app.key,
    auth_timestamp: String(o.timestamp ?? Math.floor(Date.now() / 1000)),
    auth_version: '1.0',
    ...o.query,
  };
  if (body.length > 0) params['body_md5'] = o.bodyMd5 ?? createHash('md5').update(body).digest('hex');
  const sorted = Object.keys(params)
    .sort()
    .map((k) => `${k}=${params[k] as string}`)
    .join('&');
  const signature = o.signature ?? hmac(app.secret, `${method}\n${path}\n${sorted}`);
  const encoded = Object.keys(params)
    .sort()
    .map((k) => `${k}=${encodeURIComponent(params[k] as string)}`)
    .join('&');
  return `${encoded}&auth_signature=${signature}`;
}

/** Sends a signed request; returns the status and the parsed body. */
export async function signedRequest(base: string, method: string, path: string, body?: unknown, o: SignOptions = {}): Promise<{ status: number; body: any }> {
  const text = o.raw ?? (body === undefined ? '' : JSON.stringify(body));
  const res = await fetch(`${base}${path}?${signQuery(method, path, text, o)}`, {
    method,
    headers: text.length > 0 ? { 'content-type': 'application/json' } : {},
    ...(text.length > 0 ? { body: text } : {}),
  });
  const t = await res.text();
  let parsed: unknown = t;
  try {
    parsed = JSON.parse(t);
  } catch {
    /* keep the text */
  }
  return { status: res.status, body: parsed };
}
