/**
 * Publishes over HTTP/1.1: Herald's `POST /api/publish` and the same JSON body to the baselines'
 * `POST /publish`, in one of three shapes (see SHAPES). Each payload carries its send time for the probes.
 */
import { Agent, request } from 'node:http';
import { API_KEY, flavorOf, type Kind } from './kinds.js';

/** Padding that makes a delivered frame about 180 bytes (the envelope adds ~80). */
export const PAD = 'x'.repeat(100);
export const MAX_BATCH = 100;

/**
 * How a backend publishes:
 * - `batch`: up to MAX_BATCH messages per request (array form), over 8 keep-alive connections;
 * - `single`: one message per request (the object form, as one php-fpm request with one curl call sends it),
 *   over `connections` keep-alive connections (curl reusing its connection);
 * - `single-new`: one message per request, a new TCP connection per request (`Connection: close`, php-fpm
 *   without reuse), at most `connections` at a time.
 * Requests beyond the connections wait in the load generator (a backend's queue): that wait counts in the
 * publish-to-receive latency, since a message's time stamp is taken when it is due.
 */
export const SHAPES = ['batch', 'single', 'single-new'] as const;
export type Shape = (typeof SHAPES)[number];

export const SHAPE_LABELS: Record<Shape, string> = {
  batch: `batched: up to ${MAX_BATCH} messages per HTTP request, keep-alive`,
  single: 'one message per HTTP request, keep-alive connections',
  'single-new': 'one message per HTTP request, a new TCP connection per request',
};

export class Publisher {
  private readonly agent: Agent;
  private readonly path: string;
  private readonly headers: Record<string, string>;
  /** Messages per request at most. */
  readonly batch: number;
  inFlight = 0;
  errors = 0;
  sent = 0;
  /** Requests sent. */
  requests = 0;
  lastError = '';

  constructor(
    kind: Kind,
    private readonly port: number,
    readonly shape: Shape = 'batch',
    connections = 32,
  ) {
    const herald = flavorOf(kind) === 'herald';
    this.path = herald ? '/api/publish' : '/publish';
    this.batch = shape === 'batch' ? MAX_BATCH : 1;
    this.agent =
      shape === 'batch'
        ? new Agent({ keepAlive: true, maxSockets: 8 })
        : shape === 'single'
          ? new Agent({ keepAlive: true, maxSockets: connections })
          : new Agent({ keepAlive: false, maxSockets: connections });
    this.headers = {
      'content-type': 'application/json',
      ...(herald ? { authorization: `Bearer ${API_KEY}` } : {}),
    };
    // `single-new`: the agent without keep-alive sends `Connection: close` itself. Setting the header by hand
    // as well made about half the requests to uWebSockets.js servers fail with "socket hang up" (Node 20).
  }

  /** Publishes one message to each channel: one request (array form; the object form for one message in the single shapes). */
  post(channels: readonly string[], now: number): Promise<void> {
    const payload = `{"t":${now.toFixed(3)},"p":"${PAD}"}`;
    const items = channels.map((c) => `{"channel":"${c}","type":"m","payload":${payload}}`);
    const body = this.batch === 1 && items.length === 1 ? (items[0] as string) : `[${items.join(',')}]`;
    this.inFlight++;
    this.requests++;
    this.sent += channels.length;
    return new Promise((resolve) => {
      const req = request({ host: '127.0.0.1', port: this.port, method: 'POST', path: this.path, agent: this.agent, headers: this.headers }, (res) => {
        if (res.statusCode !== 200) {
          this.errors += channels.length;
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => {
            this.lastError = `${res.statusCode} ${text.slice(0, 200)}`;
            this.inFlight--;
            resolve();
          });
          return;
        }
        res.resume();
        res.on('end', () => {
          this.inFlight--;
          resolve();
        });
      });
      req.on('error', (err) => {
        this.errors += channels.length;
        this.lastError = err.message;
        this.inFlight--;
        resolve();
      });
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
