/**
 * Publishes over HTTP/1.1 keep-alive: Herald's `POST /api/publish` (array form, up to 100 items), the
 * same JSON body to the baselines' `POST /publish`, and one signed Pusher `POST /apps/{id}/events` per message
 * to the Pusher kinds. Each payload carries its send time for the probes.
 */
import { Agent, request } from 'node:http';
import { API_KEY, flavorOf, type Kind } from './kinds.js';
import { eventBody, EVENTS_PATH, signedPath } from './pusher.js';

/** Padding that makes a delivered frame about 180 bytes (the envelope adds ~80). */
export const PAD = 'x'.repeat(100);
export const MAX_BATCH = 100;

export class Publisher {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 8 });
  private readonly path: string;
  private readonly headers: Record<string, string>;
  /** Pusher kinds: one signed `POST /apps/{id}/events` per message, as Laravel Broadcasting sends them. */
  private readonly pusher: boolean;
  inFlight = 0;
  errors = 0;
  sent = 0;
  lastError = '';

  constructor(
    kind: Kind,
    private readonly port: number,
  ) {
    const herald = flavorOf(kind) === 'herald';
    this.pusher = flavorOf(kind) === 'pusher';
    this.path = herald ? '/api/publish' : '/publish';
    this.headers = { 'content-type': 'application/json', ...(herald ? { authorization: `Bearer ${API_KEY}` } : {}) };
  }

  /** Publishes one message to each channel (one request, array form). */
  post(channels: readonly string[], now: number): Promise<void> {
    const payload = `{"t":${now.toFixed(3)},"p":"${PAD}"}`;
    if (this.pusher) {
      const sends = channels.map((c) => {
        const body = eventBody(c, payload);
        return this.send(signedPath('POST', EVENTS_PATH, body), body, 1);
      });
      return Promise.all(sends).then(() => undefined);
    }
    const body = `[${channels.map((c) => `{"channel":"${c}","type":"m","payload":${payload}}`).join(',')}]`;
    return this.send(this.path, body, channels.length);
  }

  /** One POST carrying `messages` messages. */
  private send(path: string, body: string, messages: number): Promise<void> {
    this.inFlight++;
    this.sent += messages;
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

  close(): void {
    this.agent.destroy();
  }
}
