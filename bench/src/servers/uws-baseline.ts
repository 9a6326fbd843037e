/** Minimal uWebSockets.js: `ws.subscribe(channel)`, and `app.publish(channel, frame)` per message (native fan-out). */
import { jwtVerify } from 'jose';
import uws from 'uWebSockets.js';
import { JWT_SECRET } from '../kinds.js';
import type { Item } from './body.js';
import type { Running } from './types.js';

interface Data {
  closed: boolean;
}

export async function startUwsBaseline(port: number): Promise<Running> {
  const key = new TextEncoder().encode(JWT_SECRET);
  let seq = 0;
  const app = uws.App();
  app.ws<Data>('/*', {
    compression: uws.DISABLED,
    maxPayloadLength: 65536,
    maxBackpressure: 64 * 1024 * 1024,
    idleTimeout: 120,
    upgrade: (res, req, context) => {
      res.upgrade<Data>(
        { closed: false },
        req.getHeader('sec-websocket-key'),
        req.getHeader('sec-websocket-protocol'),
        req.getHeader('sec-websocket-extensions'),
        context,
      );
    },
    message: (ws, msg) => {
      const m = JSON.parse(Buffer.from(msg).toString('utf8')) as { type: string; channel: string; token?: string };
      if (m.type !== 'subscribe') return;
      const join = (): void => {
        if (ws.getUserData().closed) return;
        ws.subscribe(m.channel);
        ws.send('{"type":"subscribed"}');
      };
      if (m.token === undefined) join();
      else
        jwtVerify(m.token, key, { algorithms: ['HS256'] }).then(join, () => {
          if (!ws.getUserData().closed) ws.end(4501, 'invalid token');
        });
    },
    close: (ws) => {
      ws.getUserData().closed = true;
    },
  });
  app.post('/publish', (res) => {
    const chunks: Buffer[] = [];
    let aborted = false;
    res.onAborted(() => (aborted = true));
    res.onData((ab, last) => {
      chunks.push(Buffer.from(ab.slice(0)));
      if (!last) return;
      let items: Item[];
      try {
        const v = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Item | Item[];
        items = Array.isArray(v) ? v : [v];
      } catch {
        if (!aborted) res.cork(() => res.writeStatus('400 Bad Request').end());
        return;
      }
      for (const it of items) app.publish(it.channel, JSON.stringify({ type: it.type, channel: it.channel, payload: it.payload, seq: ++seq }), false);
      if (!aborted) res.cork(() => res.writeHeader('content-type', 'application/json').end(`{"published":${items.length}}`));
    });
  });
  const listen = await new Promise<uws.us_listen_socket | false>((resolve) => app.listen('127.0.0.1', port, resolve));
  if (!listen) throw new Error(`uws: cannot listen on ${port}`);
  return {
    stop: () => {
      uws.us_listen_socket_close(listen);
      app.close();
      return Promise.resolve();
    },
  };
}
