/**
 * Publishes over HTTP/1.1: Herald's `POST /api/publish` and the same JSON body to the baselines'
 * `POST /publish`, in one of three shapes (see SHAPES), and one signed Pusher `POST /apps/{id}/events` per
 * message to the Pusher kinds. Each payload carries its send time for the probes.
 */
import { Agent, request } from 'node:http';
import { Pool } from 'undici';
import { API_KEY, flavorOf, type Kind } from './kinds.js';
import { eventBody, EVENTS_PATH, signedPath } from './pusher.js';

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
 *
 * `single` sends with undici (a Pool of `connections`, one request at a time on each), the others with Node's
 * `http.request`. Node's HTTP client costs the load generator about 40 µs per request: with it the one-message
 * rows of the fastest servers read the load generator's ceiling (about 25k requests/s on one core, the load
 * generator at 91-99 % while the bare uWS server was at 44 %), not theirs. undici costs about half that.
 * `single-new` stays on `http.request`: undici opens a connection per request more slowly than Node's agent.
 */
export const SHAPES = ['batch', 'single', 'single-new'] as const;
export type Shape = (typeof SHAPES)[number];

export const SHAPE_LABELS: Record<Shape, string> = {
  batch: `batched: up to ${MAX_BATCH} messages per HTTP request, keep-alive`,
  single: 'one message per HTTP request, keep-alive connections',
  'single-new': 'one message per HTTP request, a new TCP connection per request',
};

export class Publisher {
  private readonly agent: Agent | undefined;
  /** `single`: undici's pool (see SHAPES). */
  private readonly pool: Pool | undefined;
  private readonly path: string;
  private readonly headers: Record<string, string>;
  /** Pusher kinds: one signed `POST /apps/{id}/events` per message, as Laravel Broadcasting sends them. */
  private readonly pusher: boolean;
  /** Messages per request at most (1 for the Pusher kinds, whatever the shape). */
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
    this.pusher = flavorOf(kind) === 'pusher';
    this.path = herald ? '/api/publish' : '/publish';
    this.batch = shape === 'batch' && !this.pusher ? MAX_BATCH : 1;
    this.pool = shape === 'single' ? new Pool(`http://127.0.0.1:${port}`, { connections, pipelining: 1 }) : undefined;
    this.agent =
      shape === 'batch'
        ? new Agent({ keepAlive: true, maxSockets: 8 })
        : shape === 'single'
          ? undefined
          : new Agent({ keepAlive: false, maxSockets: connections });
    this.headers = {
      'content-type': 'application/json',
      ...(herald ? { authorization: `Bearer ${API_KEY}` } : {}),
    };
    // `single-new`: the agent without keep-alive sends `Connection: close` itself. Setting the header by hand
    // as well made about half the requests to uWebSockets.js servers fail with "socket hang up" (Node 20).
  }

  /**
   * Publishes one message to each channel: one request (array form; the object form for one message in the
   * single shapes), or one signed request per message for the Pusher kinds.
   */
  post(channels: readonly string[], now: number): Promise<void> {
    const payload = `{"t":${now.toFixed(3)},"p":"${PAD}"}`;
    if (this.pusher) {
      const sends = channels.map((c) => {
        const body = eventBody(c, payload);
        return this.send(signedPath('POST', EVENTS_PATH, body), body, 1);
      });
      return Promise.all(sends).then(() => undefined);
    }
    const items = channels.map((c) => `{"channel":"${c}","type":"m","payload":${payload}}`);
    const body = this.batch === 1 && items.length === 1 ? (items[0] as string) : `[${items.join(',')}]`;
    return this.send(this.path, body, channels.length);
  }

  /** One POST carrying `messages` messages. */
  private send(path: string, body: string, messages: number): Promise<void> {
    this.inFlight++;
    this.requests++;
    this.sent += messages;
    if (this.pool) return this.sendPooled(this.pool, path, body, messages);
    return new Promise((resolve) => {
      const req = request({ host: '127.0.0.1', port: this.port, method: 'POST', path, agent: this.agent, headers: this.headers }, (res) => {
        if (res.statusCode !== 200) {
          this.errors += messages;
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
        this.errors += messages;
        this.lastError = err.message;
        this.inFlight--;
        resolve();
      });
      req.end(body);
    });
  }

  /** `send` on undici's pool. */
  private async sendPooled(pool: Pool, path: string, body: string, messages: number): Promise<void> {
    try {
      const res = await pool.request({ method: 'POST', path, headers: this.headers, body });
      if (res.statusCode === 200) {
        await res.body.dump();
      } else {
        this.errors += messages;
        this.lastError = `${res.statusCode} ${(await res.body.text()).slice(0, 200)}`;
      }
    } catch (err) {
      this.errors += messages;
      this.lastError = err instanceof Error ? err.message : String(err);
    } finally {
      this.inFlight--;
    }
  }

  close(): void {
    this.agent?.destroy();
    void this.pool?.destroy();
  }
}
