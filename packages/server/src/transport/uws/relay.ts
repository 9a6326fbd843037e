import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import type { Logger } from '../../util/logger.js';
import { reject, rejectionResponse, type Rejection } from '../admission.js';
import type { UwsRequest, UwsResponse } from './module.js';

/** Hop-by-hop headers (RFC 9110 7.6.1) and the ones uWebSockets.js writes itself. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'proxy-connection', 'te', 'trailer', 'date']);

/** Writes a rejection (status, headers, JSON body) on a uWebSockets.js response. */
export function writeRejection(res: UwsResponse, r: Rejection, close = false): void {
  const { status, headers, body } = rejectionResponse(r);
  res.cork(() => {
    res.writeStatus(status);
    for (const [k, v] of Object.entries(headers)) res.writeHeader(k, v);
    res.end(body, close);
  });
}

/** What the relay needs. */
export interface RelayOptions {
  /** The port of the gateway's `http.Server` on loopback (read when a request arrives: it listens after the relay is made). */
  port: () => number;
  /** Whether the gateway still takes requests (a failed relay during a shutdown answers 503, not 500). */
  accepting: () => boolean;
  /** Counts a relayed request until its answer has been handed to uWebSockets.js (graceful shutdown waits for it). */
  begin(): void;
  end(): void;
  logger: Logger;
}

/** The HTTP relay of the uWS transport: a handler for `app.any('/*')`, and `close()` for its connection pool. */
export interface Relay {
  handle(res: UwsResponse, req: UwsRequest): void;
  close(): void;
}

/**
 * Relays plain HTTP requests (the API, health, metrics, the demo page) from uWebSockets.js to the gateway's
 * `http.Server` on loopback, with the peer address kept in X-Forwarded-For (the relayed request's own
 * address is always 127.0.0.1). The answer is written only once complete, so one cut short is still
 * answered as a failed relay.
 */
export function createRelay(o: RelayOptions): Relay {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });

  const handle = (res: UwsResponse, req: UwsRequest): void => {
    // Everything from `req` must be read now: it is invalid once this handler returns.
    const method = req.getMethod().toUpperCase();
    const query = req.getQuery();
    const path = query ? `${req.getUrl()}?${query}` : req.getUrl();
    const headers: IncomingHttpHeaders = {};
    req.forEach((k, v) => {
      headers[k] = v;
    });
    const ip = Buffer.from(res.getRemoteAddressAsText()).toString();
    headers['x-forwarded-for'] = typeof headers['x-forwarded-for'] === 'string' ? `${headers['x-forwarded-for']}, ${ip}` : ip;
    let aborted = false;
    let done = false;
    // The gateway's own handler finishes before its answer has come back through here, so its idle() does
    // not cover the relay: the request counts until uWebSockets.js has the answer (or the client is gone).
    o.begin();
    const finish = (): void => {
      if (done) return;
      done = true;
      o.end();
    };
    const fail = (err: Error): void => {
      if (aborted || done) return;
      finish();
      o.logger.debug({ err: err.message }, 'http relay failed');
      if (o.accepting()) writeRejection(res, reject('internal', 'internal error'));
      else writeRejection(res, reject('shutting_down', 'the gateway is shutting down'), true);
    };
    const relay = request({ host: '127.0.0.1', port: o.port(), method, path, headers, agent }, (answer) => {
      const chunks: Buffer[] = [];
      answer.on('data', (c: Buffer) => chunks.push(c));
      answer.on('error', fail);
      answer.on('end', () => {
        if (aborted || done) return;
        res.cork(() => {
          res.writeStatus(`${answer.statusCode ?? 500} ${answer.statusMessage ?? ''}`);
          for (const [k, v] of Object.entries(answer.headers)) {
            if (v === undefined || HOP_BY_HOP.has(k)) continue;
            for (const one of Array.isArray(v) ? v : [v]) res.writeHeader(k, one);
          }
          const close = answer.headers.connection === 'close';
          // HEAD: report the length the gateway declared (left out, this uWS build writes 2^63).
          if (method === 'HEAD') res.endWithoutBody(Number(answer.headers['content-length'] ?? 0), close);
          else res.end(Buffer.concat(chunks), close);
        });
        finish();
      });
    });
    relay.on('error', fail);
    res.onAborted(() => {
      aborted = true;
      finish();
      relay.destroy();
    });
    const length = headers['content-length'];
    if (headers['transfer-encoding'] === undefined && (length === undefined || length === '0')) {
      relay.end();
      return;
    }
    res.onData((chunk, isLast) => {
      // Copied: uWebSockets.js reuses the chunk's memory after this call.
      relay.write(Buffer.from(new Uint8Array(chunk)));
      if (isLast) relay.end();
    });
  };

  return { handle, close: () => agent.destroy() };
}
