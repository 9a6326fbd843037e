/**
 * The minimal `ws` broadcast server: rooms in a Map, one `ws.send` per message per socket (the message is
 * serialized once into a Buffer, so the baseline pays framing and a write per socket, not JSON per socket).
 */
import { jwtVerify } from 'jose';
import { WebSocketServer, type WebSocket } from 'ws';
import { JWT_SECRET } from '../kinds.js';
import { publishServer } from './body.js';
import type { Running } from './types.js';

export async function startWsBaseline(port: number): Promise<Running> {
  const key = new TextEncoder().encode(JWT_SECRET);
  const rooms = new Map<string, Set<WebSocket>>();
  let seq = 0;
  const server = publishServer((items) => {
    for (const it of items) {
      const frame = Buffer.from(JSON.stringify({ type: it.type, channel: it.channel, payload: it.payload, seq: ++seq }));
      const room = rooms.get(it.channel);
      if (room) for (const ws of room) ws.send(frame, { binary: false });
    }
  });
  const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 65536 });
  wss.on('connection', (ws) => {
    const joined: string[] = [];
    ws.on('error', () => undefined);
    ws.on('message', (data) => {
      void (async () => {
        const m = JSON.parse(String(data)) as { type: string; channel: string; token?: string };
        if (m.type !== 'subscribe') return;
        if (m.token !== undefined) {
          try {
            await jwtVerify(m.token, key, { algorithms: ['HS256'] });
          } catch {
            ws.close(4501, 'invalid token');
            return;
          }
        }
        let room = rooms.get(m.channel);
        if (!room) rooms.set(m.channel, (room = new Set()));
        room.add(ws);
        joined.push(m.channel);
        ws.send('{"type":"subscribed"}');
      })();
    });
    ws.on('close', () => {
      for (const ch of joined) {
        const room = rooms.get(ch);
        room?.delete(ws);
        if (room?.size === 0) rooms.delete(ch);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    stop: () =>
      new Promise((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
