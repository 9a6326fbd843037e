import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Pusher's signatures: `hex(HMAC-SHA256(secret, text))`, compared in constant time. Channel authorizations are
 * `<key>:<signature of "socket_id:channel[:channel_data]">`, sign-ins `<key>:<signature of "socket_id::user::user_data">`,
 * HTTP API requests a signature of `METHOD\nPATH\nsorted query` (docs/pusher.md).
 */
export function sign(secret: string, text: string): string {
  return createHmac('sha256', secret).update(text, 'utf8').digest('hex');
}

/** Compares two strings in constant time (for equal lengths; different lengths still cost one comparison). */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  if (x.length !== y.length) {
    timingSafeEqual(x, x);
    return false;
  }
  return timingSafeEqual(x, y);
}

/** Whether `auth` is `<key>:<signature of text>`. */
export function verifyAuth(auth: unknown, key: string, secret: string, text: string): boolean {
  if (typeof auth !== 'string') return false;
  const colon = auth.indexOf(':');
  const ok = safeEqual(auth.slice(colon + 1), sign(secret, text));
  return ok && colon > 0 && auth.slice(0, colon) === key;
}

/** The string a channel authorization signs. */
export function channelAuthText(socketId: string, channel: string, channelData?: string): string {
  return channelData === undefined ? `${socketId}:${channel}` : `${socketId}:${channel}:${channelData}`;
}

/** The string a user sign-in signs. */
export function userAuthText(socketId: string, userData: string): string {
  return `${socketId}::user::${userData}`;
}

/** Hex MD5 of a request body (`body_md5`). */
export function md5Hex(body: Buffer): string {
  return createHash('md5').update(body).digest('hex');
}
