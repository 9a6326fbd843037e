/** Socket.IO 4.8 with rooms: `join` event with an ack, JWT checked in a middleware, `io.to(room).emit`. */
import { jwtVerify } from 'jose';
import { Server } from 'socket.io';
import { JWT_SECRET } from '../kinds.js';
import { publishServer } from './body.js';
import type { Running } from './types.js';

export async function startSocketIo(port: number): Promise<Running> {
  const key = new TextEncoder().encode(JWT_SECRET);
  let seq = 0;
  const server = publishServer((items) => {
    for (const it of items) io.to(it.channel).emit(it.type, { channel: it.channel, payload: it.payload, seq: ++seq });
  });
  const io = new Server(server, { transports: ['websocket'], serveClient: false, perMessageDeflate: false, httpCompression: false });
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
    },
  };
}
