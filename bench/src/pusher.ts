/**
 * The Pusher side of the bench: a raw Pusher protocol 7 client handshake (connection_established, subscribe,
 * subscription_succeeded), its keep-alive, and the request signing of the Pusher HTTP API (`POST
 * /apps/{id}/events`), the same for Herald and Soketi.
 */
import { createHash, createHmac } from 'node:crypto';
import { PUSHER_APP } from './pusher-kinds.js';
import type { RawWs } from './raw-ws.js';

/**
 * A client pings every PING_MS (with jitter), as pusher-js does when its connection has been quiet: counting
 * clients do not read frames, so they cannot answer a server's `pusher:ping`, and Herald closes a Pusher
 * connection that sent nothing for activity_timeout + 30 s (150 s). Soketi answers the ping too, so both
 * servers get the same traffic (one small frame each way per client per minute; the pong is counted as a
 * delivery, which changes nothing measurable).
 */
const PING_MS = 60_000;
const PING = '{"event":"pusher:ping","data":{}}';

/**
 * Drives the Pusher handshake of `c`: wait for `pusher:connection_established`, subscribe to `channel`, and
 * call `done` once `pusher_internal:subscription_succeeded` arrives (or with an error).
 */
export function pusherHandshake(c: RawWs, channel: string, done: (err?: Error) => void): void {
  c.onOpen = () => undefined;
  c.onText = (p) => {
    const text = p.toString('utf8');
    if (text.includes('"pusher:connection_established"')) {
      c.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel } }));
    } else if (text.includes('"pusher_internal:subscription_succeeded"')) {
      keepAlive(c);
      done();
    } else if (text.includes('"pusher:error"') || text.includes('"pusher:subscription_error"')) {
      done(new Error(`pusher: ${text.slice(0, 300)}`));
    }
  };
}

function keepAlive(c: RawWs): void {
  const first = setTimeout(
    () => {
      if (c.closed) return;
      c.send(PING);
      const every = setInterval(() => (c.closed ? clearInterval(every) : c.send(PING)), PING_MS);
      every.unref();
      c.socket.once('close', () => clearInterval(every));
    },
    PING_MS / 2 + Math.random() * PING_MS,
  );
  first.unref();
  c.socket.once('close', () => clearTimeout(first));
}

/**
 * The signed path of a Pusher HTTP API request, as the Pusher server SDKs sign it: `auth_key`,
 * `auth_timestamp`, `auth_version=1.0`, `body_md5`, and `auth_signature` = HMAC-SHA256 with the app secret of
 * `METHOD\nPATH\nquery` (parameters sorted by name).
 */
export function signedPath(method: string, path: string, body: string, app: { key: string; secret: string } = PUSHER_APP): string {
  const params: Array<[string, string]> = [
    ['auth_key', app.key],
    ['auth_timestamp', String(Math.floor(Date.now() / 1000))],
    ['auth_version', '1.0'],
    ['body_md5', createHash('md5').update(body).digest('hex')],
  ];
  const query = params.map(([k, v]) => `${k}=${v}`).join('&');
  const signature = createHmac('sha256', app.secret).update(`${method}\n${path}\n${query}`).digest('hex');
  return `${path}?${query}&auth_signature=${signature}`;
}

/** The events path of the bench app. */
export const EVENTS_PATH = `/apps/${PUSHER_APP.id}/events`;

/**
 * The body of one event: Pusher's `data` is a string (here the same JSON payload as the native kinds, with
 * its send time `t`, which the probes read out of the escaped string; see stampOf).
 */
export function eventBody(channel: string, payload: string): string {
  return JSON.stringify({ name: 'm', channel, data: payload });
}
