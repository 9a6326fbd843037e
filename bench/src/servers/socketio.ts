/**
 * Socket.IO 4.8 with rooms: `join` event with an ack, JWT checked in a middleware, `io.to(room).emit`.
 * With `redis`, the official Redis adapter (`@socket.io/redis-adapter` over ioredis) carries every emit
 * between nodes: the multi-node peer of Herald's Redis engine.
 */
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { jwtVerify } from 'jose';
import { Server } from 'socket.io';
import { JWT_SECRET } from '../kinds.js';
import { publishServer } from './body.js';
import type { Running } from './types.js';

export interface SocketIoRedis {
  redisUrl: string;
  /** Adapter key (the prefix of its pub/sub channels): each bench server its own. */
  key: string;
}

export async function startSocketIo(port: number, redis?: SocketIoRedis): Promise<Running> {
  const key = new TextEncoder().encode(JWT_SECRET);
  let seq = 0;
  const server = publishServer((items) => {
    for (const it of items) io.to(it.channel).emit(it.type, { channel: it.channel, payload: it.payload, seq: ++seq });
  });
  const io = new Server(server, { transports: ['websocket'], serveClient: false, perMessageDeflate: false, httpCompression: false });
  let clients: Redis[] = [];
  if (redis) {
    const pub = new Redis(redis.redisUrl);
    const sub = pub.duplicate();
    clients = [pub, sub];
    io.adapter(createAdapter(pub, sub, { key: redis.key }));
  }
  io.use((socket, next) => {
    const token = (socket.handshake.auth as { token?: string } | undefined)?.token;
    if (token === undefined) return next();
    jwtVerify(token, key, { algorithms: ['HS256'] }).then(
      () => next(),
      () => next(new Error('invalid token')),
    );
  });
  io.on('connection', (socket) => {
    socket.on('join', (room: string, ack?: (ok: boolean) => void) => {
      void socket.join(room);
      ack?.(true);
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    stop: async () => {
      io.disconnectSockets(true);
      await io.close();
      for (const c of clients) c.disconnect();
    },
  };
}
