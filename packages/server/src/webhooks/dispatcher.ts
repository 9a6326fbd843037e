import type { AckedMessage, InboxListener } from '../delivery/inbox.js';
import type { Outbox, OutboxEvent, OutboxJob } from '../engine/outbox.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { randomId } from '../util/random-id.js';
import { retryDelay } from './backoff.js';
import type { WebhookStats } from './stats.js';
import { parseEvent, wants, type WebhookEndpoint, type WebhookEvent, type WebhookFormat, type WebhookRequest } from './types.js';

/** Sends one request; resolves the HTTP status (throws on a network error or timeout). */
export type WebhookSender = (url: string, req: WebhookRequest, timeoutMs: number) => Promise<number>;

/** What the dispatcher runs on. */
export interface DispatcherOptions {
  outbox: Outbox;
  endpoints: readonly WebhookEndpoint[];
  /** Formats by name (every endpoint's format is one of them). */
  formats: ReadonlyMap<string, WebhookFormat>;
  stats: WebhookStats;
  clock: Clock;
  logger: Logger;
  /** How long a delivery is retried after its event was queued, in ms; then it is dead-lettered. */
  retryFor: number;
  /** Most ms one request may take. */
  timeout: number;
  /** How often the outbox is looked at, in ms. */
  pollInterval?: number;
  /** @default fetch */
  send?: WebhookSender;
  /** @default Math.random */
  random?: () => number;
}

/** Jobs leased per pass. */
const BATCH = 64;
/** Events fanned out per call. */
const FAN_OUT = 200;
/** Requests in flight at once. */
const CONCURRENCY = 16;
/** How often the queue is measured for the metrics and the admin page (ms). */
const MEASURE_EVERY = 5000;

/** `fetch` with a timeout on the given clock. */
export function fetchSender(clock: Clock): WebhookSender {
  return async (url, req, timeoutMs) => {
    const abort = new AbortController();
    const timer = clock.setTimeout(() => abort.abort(), timeoutMs);
    try {
      const res = await fetch(url, { method: 'POST', headers: req.headers, body: req.body, signal: abort.signal, redirect: 'manual' });
      // The body is not needed, but must be consumed or the connection stays busy.
      await res.arrayBuffer().catch(() => undefined);
      return res.status;
    } finally {
      clock.clearTimeout(timer);
    }
  };
}

/**
 * Delivers webhooks, format-blind (docs/webhooks.md): events go into the engine's outbox (`publish`); every
 * node's dispatcher fans them out into one job per endpoint that wants them, leases due jobs, writes each
 * endpoint's requests through its format, and settles each job: done on a 2xx answer, else retried with
 * exponential back-off and jitter until `retryFor` after its event, then dead-lettered. Nothing here runs on
 * the path of a connection or a publish: a receiver that is down only grows the queue.
 */
export class NativeWebhookDispatcher implements InboxListener {
  private readonly byName: Map<string, WebhookEndpoint>;
  private readonly send: WebhookSender;
  private readonly random: () => number;
  private timer: TimerHandle | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private lastMeasure = Number.NEGATIVE_INFINITY;

  constructor(private readonly o: DispatcherOptions) {
    this.byName = new Map(o.endpoints.map((e) => [e.name, e]));
    this.send = o.send ?? fetchSender(o.clock);
    this.random = o.random ?? Math.random;
  }

  /** Starts polling the outbox. */
  start(): void {
    if (this.timer !== undefined || this.o.endpoints.length === 0) return;
    this.timer = this.o.clock.setInterval(() => this.kick(), this.o.pollInterval ?? 500);
    this.kick();
  }

  /** Stops polling and waits for the pass under way (requests in flight finish or time out). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) this.o.clock.clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** Queues events made on this node (`message.acked`); they go out on the next pass, which starts now. */
  publish(events: readonly WebhookEvent[]): void {
    if (this.o.endpoints.length === 0 || events.length === 0) return;
    this.o.outbox
      .publish(events.map((e) => JSON.stringify(e)))
      .then(() => this.kick())
      .catch((err: unknown) => this.o.logger.error({ err, events: events.map((e) => e.id) }, 'webhooks: queueing events failed; they are lost'));
  }

  acked(acks: readonly AckedMessage[]): void {
    this.publish(
      acks.map((a) => ({
        id: `evt_${randomId(12)}`,
        type: 'message.acked',
        time: a.time,
        data: { message: a.message, user: a.user, client: a.client, time: a.time },
      })),
    );
  }

  /** Runs a pass now (or right after the one under way); resolves when no pass is running. */
  kick(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.loop().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Which endpoints want an event (none for one that cannot be read: it is dropped, logged). */
  private route = (json: OutboxEvent): string[] => {
    const e = parseEvent(json);
    if (!e) {
      this.o.logger.warn({ event: json.slice(0, 200) }, 'webhooks: an event could not be read; dropped');
      return [];
    }
    return this.o.endpoints.filter((ep) => wants(ep, e)).map((ep) => ep.name);
  };

  private async loop(): Promise<void> {
    do {
      this.again = false;
      try {
        await this.pass();
      } catch (err) {
        // The engine is unreachable: the next tick tries again; nothing was lost (it is all in the outbox).
        this.o.logger.debug({ err }, 'webhooks: a dispatch pass failed');
      }
    } while (this.again && !this.stopped);
  }

  private async pass(): Promise<void> {
    const { outbox, clock } = this.o;
    while ((await outbox.fanOut(this.route, FAN_OUT, clock.now())) === FAN_OUT && !this.stopped);
    for (;;) {
      const now = clock.now();
      // Leased for longer than a request can take: a job whose node died is tried again after it.
      const jobs = await outbox.claim(now, this.o.timeout * 3 + 10_000, BATCH);
      if (jobs.length > 0) await this.deliverAll(jobs);
      if (jobs.length < BATCH || this.stopped) break;
    }
    if (clock.now() - this.lastMeasure >= MEASURE_EVERY) await this.measure();
  }

  /** Measures the queue for the metrics and the admin page. */
  async measure(): Promise<void> {
    const now = this.o.clock.now();
    this.lastMeasure = now;
    const s = await this.o.outbox.stats();
    this.o.stats.queued = s.queued;
    this.o.stats.deadLetters = s.dead;
    this.o.stats.queueAge = s.oldest === null ? 0 : Math.max(0, (now - s.oldest) / 1000);
  }

  /** Sends every job, in requests of up to each format's batch size, a few at a time. */
  private async deliverAll(jobs: OutboxJob[]): Promise<void> {
    const groups: OutboxJob[][] = [];
    const byEndpoint = new Map<string, OutboxJob[]>();
    for (const j of jobs) {
      const list = byEndpoint.get(j.endpoint) ?? [];
      byEndpoint.set(j.endpoint, list);
      list.push(j);
    }
    for (const [name, list] of byEndpoint) {
      const size = this.o.formats.get(this.byName.get(name)?.format ?? '')?.maxBatch ?? 1;
      for (let i = 0; i < list.length; i += size) groups.push(list.slice(i, i + size));
    }
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < groups.length) await this.deliver(groups[next++] as OutboxJob[]);
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, groups.length) }, worker));
  }

  /** One request for a group of one endpoint's jobs, and the settling of each. */
  private async deliver(jobs: OutboxJob[]): Promise<void> {
    const { outbox, clock, stats, logger } = this.o;
    const first = jobs[0] as OutboxJob;
    const endpoint = this.byName.get(first.endpoint);
    const format = endpoint && this.o.formats.get(endpoint.format);
    const events = jobs.map((j) => parseEvent(j.event));
    const settleAll = (outcome: Parameters<Outbox['settle']>[1]): Promise<unknown> =>
      Promise.all(
        jobs.map((j) => outbox.settle(j, outcome, clock.now()).catch((err: unknown) => logger.warn({ err, job: j.id }, 'webhooks: settling a job failed'))),
      );
    if (!endpoint || !format || events.some((e) => e === undefined)) {
      // Its endpoint left the configuration, or the event is unreadable: nothing will ever send it.
      stats.count(stats.dead, first.endpoint, jobs.length);
      await settleAll({ kind: 'dead', reason: !endpoint || !format ? 'unknown_endpoint' : 'invalid_event' });
      return;
    }
    let failure: string;
    try {
      const status = await this.send(endpoint.url, format.request(endpoint, events as WebhookEvent[], clock.now()), this.o.timeout);
      if (status >= 200 && status < 300) {
        stats.count(stats.sent, endpoint.name, jobs.length);
        await settleAll({ kind: 'done' });
        return;
      }
      failure = `status ${status}`;
    } catch (err) {
      failure = err instanceof Error ? (err.name === 'AbortError' ? 'timeout' : err.message) : String(err);
    }
    stats.count(stats.failed, endpoint.name, jobs.length);
    const now = clock.now();
    const delay = retryDelay(first.attempt, this.random);
    if (now + delay - first.created > this.o.retryFor) {
      stats.count(stats.dead, endpoint.name, jobs.length);
      logger.warn(
        { endpoint: endpoint.name, events: jobs.map((j) => j.id), attempts: first.attempt + 1, failure },
        'webhooks: delivery given up; dead-lettered',
      );
      await settleAll({ kind: 'dead', reason: failure });
      return;
    }
    stats.count(stats.retried, endpoint.name, jobs.length);
    logger.debug({ endpoint: endpoint.name, attempt: first.attempt + 1, failure, retryIn: delay }, 'webhooks: delivery failed; will retry');
    await settleAll({ kind: 'retry', due: now + delay });
  }
}
