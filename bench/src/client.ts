/** Opening benchmark connections: the per-protocol handshake, then counting mode. */
import { RawWs } from './raw-ws.js';
import { flavorOf, wsPath, type Kind } from './kinds.js';
import { pusherHandshake } from './pusher.js';

export interface Subscription {
  /** Channel (room, topic) to subscribe; Herald clients with a token are also in `user:<sub>` automatically. */
  channel?: string;
  /** JWT to authenticate with. */
  token?: string;
}

/** Opens one client and resolves once it is subscribed; it then only counts (unless kept parsing as a probe). */
export function openClient(kind: Kind, port: number, sub: Subscription, timeoutMs = 30_000): Promise<RawWs> {
  // No local address: connect() then picks ports per destination, while a bind before connect would need a
  // port free on every destination and slows down as earlier runs' sockets sit in TIME_WAIT.
  const c = new RawWs({ port, path: wsPath(kind) });
  const flavor = flavorOf(kind);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      c.destroy();
      reject(new Error(`${kind}: setup timed out`));
    }, timeoutMs);
    const done = (err?: Error): void => {
      clearTimeout(timer);
      c.onClose = () => undefined;
      if (err) {
        c.destroy();
        reject(err);
        return;
      }
      c.parse = false;
      c.count = 0;
      resolve(c);
    };
    c.onClose = (code) => done(new Error(`${kind}: closed during setup (${code})`));
    if (flavor === 'pusher') {
      pusherHandshake(c, sub.channel ?? 'bench', done);
      return;
    }
    c.onOpen = () => {
      if (flavor === 'herald') {
        const connect: Record<string, unknown> = { type: 'connect', subs: sub.channel === undefined ? {} : { [sub.channel]: {} } };
        if (sub.token !== undefined) connect['token'] = sub.token;
        c.send(JSON.stringify(connect));
      } else if (flavor === 'plain') {
        c.send(JSON.stringify({ type: 'subscribe', channel: sub.channel, ...(sub.token === undefined ? {} : { token: sub.token }) }));
      }
    };
    c.onText = (p) => {
      const text = p.toString('utf8');
      if (flavor === 'herald') {
        if (text.startsWith('{"type":"connected"')) done();
        else if (text.startsWith('{"type":"error"')) done(new Error(`herald: ${text}`));
      } else if (flavor === 'plain') {
        if (text.startsWith('{"type":"subscribed"')) done();
        else if (text.startsWith('{"type":"error"')) done(new Error(`${kind}: ${text}`));
      } else if (text.startsWith('0{')) {
        c.send(sub.token === undefined ? '40' : `40${JSON.stringify({ token: sub.token })}`);
      } else if (text.startsWith('40')) {
        c.send(`420${JSON.stringify(['join', sub.channel])}`);
      } else if (text.startsWith('430')) {
        done();
      } else if (text.startsWith('44')) {
        done(new Error(`socket.io: ${text}`));
      }
    };
  });
}

/** Opens `subs.length` clients with at most `concurrency` handshakes in flight. */
export async function openMany(kind: Kind, port: number, subs: readonly Subscription[], concurrency = 200): Promise<RawWs[]> {
  const out: RawWs[] = new Array(subs.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < subs.length) {
      const i = next++;
      out[i] = await openClient(kind, port, subs[i] as Subscription);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, subs.length) }, worker));
  return out;
}

/** Reads the publish timestamp (`"t":<ms>`) out of a payload without parsing the JSON. */
export function stampOf(p: Buffer): number {
  let i = p.indexOf('"t":');
  let at = i + 4;
  if (i < 0) {
    // A Pusher event: the payload is a JSON string inside the frame (`"data":"{\"t\":...`).
    i = p.indexOf('t\\":');
    if (i < 0) return NaN;
    at = i + 4;
  }
  let j = at;
  while (j < p.length) {
    const ch = p[j] as number;
    if ((ch < 48 || ch > 57) && ch !== 46) break;
    j++;
  }
  return Number(p.toString('latin1', at, j));
}
