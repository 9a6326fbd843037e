/**
 * Test wiring for the uWebSockets.js transport until `createGateway` takes `transport: 'uws'` itself:
 * `withUws(attachWsTransport)` stands in for the `ws` transport (tests swap it in with `vi.mock`, the
 * bench with an esbuild alias), so the real gateway, hub, connections and HTTP API run unchanged on top
 * of uWebSockets.js. uWebSockets.js must own the public port, so the stand-in also moves the gateway's
 * `http.Server` to a loopback port when the gateway calls `listen`, and answers `address()` with the
 * public one. Which transport the next gateway gets is `uwsWiring.transport`.
 */
import type { Server } from 'node:http';
import type { OnSocket } from '../src/transport/socket.js';
import { createUwsTransport, loadUws, type UwsModule } from '../src/transport/uws-transport.js';
import type { Transport, WsTransportOptions } from '../src/transport/ws-transport.js';

export const uwsWiring = {
  /** The transport of gateways created from now on. */
  transport: 'ws' as 'ws' | 'uws',
  /** The gateways' `sendBufferLimit` (the transport options do not carry it). */
  sendBufferLimit: 1_048_576,
};

let uws: UwsModule | undefined;

/** Loads uWebSockets.js once; call before creating a gateway with the `uws` transport. */
export async function prepareUws(): Promise<void> {
  uws ??= await loadUws();
}

type Attach = (server: Server, options: WsTransportOptions, onSocket: OnSocket) => Transport;

/** Wraps the real `attachWsTransport`: the `uws` transport when `uwsWiring.transport` says so. */
export function withUws(real: Attach): Attach {
  return (server, options, onSocket) => {
    if (uwsWiring.transport !== 'uws') return real(server, options, onSocket);
    if (!uws) throw new Error('call prepareUws() before creating a gateway with the uws transport');
    const t = createUwsTransport(uws, server, { ...options, sendBufferLimit: uwsWiring.sendBufferLimit }, onSocket);
    const listen = server.listen;
    server.listen = ((port: number, host: string, cb: () => void) => {
      server.listen = listen;
      t.listen(port, host).then(
        () => {
          server.address = () => t.address();
          cb();
        },
        (err: unknown) => server.emit('error', err),
      );
      return server;
    }) as unknown as Server['listen'];
    return t;
  };
}
