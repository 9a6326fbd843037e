import type { JobQueues, QueuedJob } from '../engine/types.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { Stats } from './stats.js';

/** One webhook request, as a protocol queues it: where, with which headers, exactly which body. */
export interface WebhookRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
  /** When the event happened (ms); a request still failing `maxAge` after it is dead-lettered. */
  createdAt: number;
}

/** The queue webhook requests go through (engine JobQueues). */
export const WEBHOOK_QUEUE = 'webhooks';

/** Options of the dispatcher. */
export interface WebhookDispatcherOptions {
  jobs: JobQueues;
  clock: Clock;
  logger: Logger;
  stats: Stats;
  /** How often the queue is polled (ms). @default 200 */
  interval?: number;
  /** How long a claimed request is this node's before another node may take it (ms). @default 30000 */
  lease?: number;
  /** Most ms one request may take. @default 10000 */
  timeout?: number;
  /** Give up (dead-letter) a request still failing this long after its event (ms). @default 300000 (Pusher's 5 min) */
  maxAge?: number;
  /** Most requests in flight per poll. @default 50 */
  batch?: number;
  /** The HTTP client. @default globalThis.fetch */
  fetch?: typeof fetch;
}

/** The wait before retry `attempt` (0 first): 1 s, 2 s, 4 s ... capped at 60 s. */
export function webhookBackoff(attempt: number): number {
  return Math.min(60_000, 1000 * 2 ** Math.min(attempt, 16));
}

/** Encodes a request as a job payload. */
export function webhookJob(req: WebhookRequest): string {
  return JSON.stringify(req);
}

/**
 * Delivers queued webhook requests: polls the engine's `webhooks` queue, POSTs each request it claimed (a lease:
 * on the Redis engine no other node sends it meanwhile, so each is sent once for the cluster), acknowledges a
 * 2xx, retries anything else with exponential back-off, and dead-letters what still fails `maxAge` after its
 * event (or cannot be read). Protocol-neutral: the protocol builds, signs and queues the requests.
 */
export class WebhookDispatcher {
  private timer: TimerHandle | undefined;
  private running: Promise<void> | undefined;
  private again: Promise<void> | undefined;
  private readonly o: Required<Omit<WebhookDispatcherOptions, 'fetch'>> & { fetch: typeof fetch };

  constructor(options: WebhookDispatcherOptions) {
    this.o = { interval: 200, lease: 30_000, timeout: 10_000, maxAge: 300_000, batch: 50, fetch: globalThis.fetch, ...options };
  }

  start(): void {
    if (this.timer !== undefined) return;
    this.timer = this.o.clock.setInterval(() => void this.runOnce(), this.o.interval);
  }

  /** Stops polling and waits for the requests in flight. */
  async stop(): Promise<void> {
    if (this.timer !== undefined) this.o.clock.clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /**
   * One poll: claims what is due now and delivers it; resolves when those requests are settled. A call while a
   * poll runs queues one more poll after it (never more), so what became due meanwhile is not missed.
   */
  runOnce(): Promise<void> {
    if (this.running) {
      this.again ??= this.running.then(() => {
        this.again = undefined;
        return this.runOnce();
      });
      return this.again;
    }
    this.running = this.poll().finally(() => (this.running = undefined));
    return this.running;
  }

  private async poll(): Promise<void> {
    const { jobs, clock, logger, batch, lease } = this.o;
    let claimed: QueuedJob[];
    try {
      claimed = await jobs.claim(WEBHOOK_QUEUE, clock.now(), batch, lease);
    } catch (err) {
      logger.debug({ err }, 'webhooks: claiming failed');
      return;
    }
    await Promise.all(claimed.map((job) => this.deliver(job)));
  }

  private async deliver(job: QueuedJob): Promise<void> {
    const { jobs, clock, logger, stats, maxAge } = this.o;
    let req: WebhookRequest;
    try {
      req = JSON.parse(job.payload) as WebhookRequest;
      if (typeof req.url !== 'string' || typeof req.body !== 'string') throw new Error('not a webhook request');
    } catch (err) {
      await jobs.bury(WEBHOOK_QUEUE, job.id, `unreadable: ${err instanceof Error ? err.message : String(err)}`).catch(() => undefined);
      stats.drop('webhook_dead_letter', 1, { job: job.id });
      return;
    }
    const problem = await this.post(req);
    try {
      if (problem === undefined) {
        await jobs.ack(WEBHOOK_QUEUE, job.id);
        stats.webhooksSent += 1;
        return;
      }
      const now = clock.now();
      if (now - req.createdAt >= maxAge) {
        await jobs.bury(WEBHOOK_QUEUE, job.id, problem);
        stats.drop('webhook_dead_letter', 1, { job: job.id, url: req.url, error: problem });
        return;
      }
      stats.webhookRetries += 1;
      logger.debug({ job: job.id, url: req.url, attempt: job.attempts + 1, error: problem }, 'webhook failed; retrying');
      await jobs.retry(WEBHOOK_QUEUE, job.id, now + webhookBackoff(job.attempts));
    } catch (err) {
      // The engine is unavailable: the lease runs out and the job is claimed again.
      logger.debug({ err, job: job.id }, 'webhooks: recording a delivery failed');
    }
  }

  /** POSTs one request; undefined on a 2xx, else why not. */
  private async post(req: WebhookRequest): Promise<string | undefined> {
    const ctl = new AbortController();
    const timer = this.o.clock.setTimeout(() => ctl.abort(), this.o.timeout);
    try {
      const res = await this.o.fetch(req.url, { method: 'POST', headers: req.headers, body: req.body, signal: ctl.signal });
      await res.arrayBuffer().catch(() => undefined);
      return res.status >= 200 && res.status < 300 ? undefined : `HTTP ${res.status}`;
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    } finally {
      this.o.clock.clearTimeout(timer);
    }
  }
}
