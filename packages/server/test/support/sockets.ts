/**
 * Raw sockets for the flood and slowloris tests: plain TCP connections from a chosen loopback address that
 * never close on their own (`allowHalfOpen`), raw WebSocket upgrade requests, and `Connection: close` HTTP
 * requests that leave no kept-alive socket behind. Everything is destroyed after the test. Loopback only.
 */
import { readdirSync } from 'node:fs';
import { request, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { onCleanup } from './cleanup.js';

/** A raw client socket and what happened to it. */
export interface RawSocket {
  socket: Socket;
  /** Data received. */
  received: string;
  /** Resolves once the server is gone from this connection: a close, a reset, or a FIN that a write after it proves final. */
  readonly gone: Promise<void>;
  /** Whether `gone` resolved. */
  isGone: boolean;
}

/**
 * Opens `n` TCP connections to `port` from `localAddress`; resolves once all are connected (or refused).
 * With `send`, each writes it right after connecting. The sockets never close their side by themselves, so
 * a socket the server only half-closes stays open on the server too.
 */
export async function openRaw(port: number, n: number, opts: { localAddress?: string; send?: string } = {}): Promise<RawSocket[]> {
  const out: RawSocket[] = [];
  await Promise.all(
    Array.from({ length: n }, async () => {
      const socket = connect({ port, host: '127.0.0.1', localAddress: opts.localAddress ?? '127.0.0.1', allowHalfOpen: true });
      const raw: RawSocket = { socket, received: '', gone: Promise.resolve(), isGone: false };
      (raw as { gone: Promise<void> }).gone = new Promise<void>((resolve) => {
        const done = (): void => {
          raw.isGone = true;
          resolve();
        };
        socket.on('error', done);
        socket.on('close', done);
        socket.on('end', () => {
          // The server sent FIN. A write now is answered with a reset if the server really closed the socket;
          // a server that only half-closed it would read the byte and stay.
          socket.write('x', () => undefined);
          setTimeout(() => socket.write('x', () => undefined), 50).unref();
        });
      });
      socket.on('data', (d: Buffer) => (raw.received += d.toString('latin1')));
      onCleanup(() => socket.destroy());
      await new Promise<void>((resolve) => {
        socket.once('connect', resolve);
        socket.once('error', () => resolve());
      });
      if (opts.send !== undefined && !socket.destroyed) socket.write(opts.send);
      out.push(raw);
    }),
  );
  return out;
}

/** Open sockets of a server (accepted and not yet closed on the server's side). */
export function serverConnections(server: Server): Promise<number> {
  return new Promise((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
}

/** File descriptors open in this process. */
export function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

/** A GET with `Connection: close` (nothing kept alive); status and body. */
export function get(url: string, headers: Record<string, string> = {}, localAddress = '127.0.0.1'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, localAddress, headers: { connection: 'close', ...headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The outcome of a raw WebSocket upgrade request. */
export interface UpgradeResult {
  status: number;
  headers: IncomingHttpHeaders;
  /** The parsed JSON error body of a refusal. */
  body: { error?: { code?: string; retryAfter?: number } } | null;
  /** The upgraded socket (status 101), left open until the test ends. */
  socket: Duplex | undefined;
}

/** Sends one WebSocket upgrade request from `localAddress`; resolves with the refusal or the open socket. */
export function upgrade(port: number, opts: { localAddress?: string; path?: string; headers?: Record<string, string> } = {}): Promise<UpgradeResult> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port,
      path: opts.path ?? '/ws',
      agent: false,
      localAddress: opts.localAddress ?? '127.0.0.1',
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        ...opts.headers,
      },
    });
    req.on('response', (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text ? (JSON.parse(text) as UpgradeResult['body']) : null, socket: undefined }),
      );
    });
    req.on('upgrade', (res, socket) => {
      socket.on('error', () => undefined);
      onCleanup(() => socket.destroy());
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: null, socket });
    });
    req.on('error', reject);
    req.end();
  });
}
