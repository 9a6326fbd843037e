import type { AckedMessage, InboxListener } from '../delivery/inbox.js';
import type { JobOutcome, Outbox, OutboxEvent, OutboxJob } from '../engine/outbox.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import { postText } from '../util/http-post.js';
import { LogLimiter } from '../util/log-limiter.js';
import type { Logger } from '../util/logger.js';
import { randomId } from '../util/random-id.js';
import { retryDelay } from './backoff.js';
import { Circuits, type Transition } from './circuit.js';
import type { WebhookStats } from './stats.js';
import { parseEvent, wants, type WebhookEndpoint, type WebhookEvent, type WebhookFormat, type WebhookRequest, type WebhookSink } from './types.js';

/** Sends one request; resolves the HTTP status (throws on a network error or timeout). */
export type WebhookSender = (url: string, req: WebhookRequest, timeoutMs: number) => Promise<number>;

/** What the dispatcher runs on. */
export interface DispatcherOptions {
  outbox: Outbox;
  /** Every endpoint, of every protocol (each says how long its deliveries are retried). */
  endpoints: readonly WebhookEndpoint[];
  /** Formats by name (every endpoint's format is one of them). */
  formats: ReadonlyMap<string, WebhookFormat>;
  stats: WebhookStats;
  clock: Clock;
  logger: Logger;
  /** Most ms one request may take. */
  timeout: number;
  /** How often the outbox is looked at, in ms. */
  pollInterval?: number;
  /** @default httpSender */
  send?: WebhookSender;
  /** @default Math.random */
  random?: () => number;
}

/** Jobs leased at a time. */
const BATCH = 64;
/**
 * Most leases of one pass (1024 jobs): then the pass ends and the next starts at once with the fan-out, so that what
 * became due meanwhile (a held `user.offline` whose delay passed, events queued since) waits for at most this many
 * deliveries of a backlog, not for the whole of it.
 */
const BATCHES_PER_PASS = 16;
/** Events fanned out per call. */
const FAN_OUT = 200;
/** Requests in flight at once. */
const CONCURRENCY = 16;
/** Least time between two releases of an endpoint's deferred jobs not made by its circuit closing (ms). */
const RELEASE_EVERY = 30_000;
/** How often the queue is measured for the metrics and the admin page (ms). */
const MEASURE_EVERY = 5000;

/** Most bytes of a receiver's answer read (its status is what counts); a longer one is dropped with its connection. */
const ANSWER_READ_MAX = 65_536;

/** A POST with undici (see postText) with a timeout on the given clock. */
export function httpSender(clock: Clock): WebhookSender {
  return async (url, req, timeoutMs) => (await postText(clock, url, { headers: req.headers, body: req.body, timeoutMs, maxBytes: ANSWER_READ_MAX })).status;
}

/**
 * The one webhook dispatcher, format-blind (docs/webhooks.md): protocols queue events in the engine's outbox
 * (`queue`, or `hold` until a time unless cancelled); every node's dispatcher fans them out into one job per
 * endpoint that wants them, leases due jobs, writes each endpoint's requests through its format at send time,
 * and settles each job: done on a 2xx answer, else retried with exponential back-off and jitter (capped at its
 * format's `maxRetryDelay`) until its endpoint's `retryFor` after its event, then dead-lettered. Nothing here
 * runs on the path of a connection or a publish: a receiver that is down only grows the queue.
 */
export class WebhookDispatcher implements InboxListener, WebhookSink {
  /** What it counted, and the queue as last measured. */
  readonly stats: WebhookStats;
  private readonly byName: Map<string, WebhookEndpoint>;
  private readonly send: WebhookSender;
  private readonly random: () => number;
  private timer: TimerHandle | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private lastMeasure = Number.NEGATIVE_INFINITY;
  /** Longer than any request may take (3 timeouts and 10 s): a job whose node died is tried again after it. */
  private readonly lease: number;
  /**
   * Lines about given-up deliveries, per endpoint: a receiver down during connection churn dead-letters thousands of
   * jobs a second, each a line otherwise (docs/metrics.md: each kind of line has a token bucket).
   */
  private readonly log: LogLimiter;
  private lastLogFlush = Number.NEGATIVE_INFINITY;
  /** One circuit breaker per endpoint: a receiver that is down gets a probe per back-off, not every due delivery. */
  private readonly circuits: Circuits;
  /** When this process last released each endpoint's deferred jobs (ms). */
  private readonly releasedAt = new Map<string, number>();

  constructor(private readonly o: DispatcherOptions) {
    this.stats = o.stats;
    this.byName = new Map(o.endpoints.map((e) => [e.name, e]));
    for (const e of o.endpoints) o.stats.formats.set(e.name, e.format);
    this.send = o.send ?? httpSender(o.clock);
    this.random = o.random ?? Math.random;
    this.lease = o.timeout * 3 + 10_000;
    this.log = new LogLimiter(o.logger, () => o.clock.now());
    this.circuits = new Circuits(this.random, o.timeout);
  }

  /** Starts polling the outbox. */
  start(): void {
    if (this.timer !== undefined || this.o.endpoints.length === 0) return;
    this.timer = this.o.clock.setInterval(() => {
      void this.kick();
      // Also while a long pass runs (a backlog being drained): the queue gauges are what an operator alerts on.
      this.housekeeping();
    }, this.o.pollInterval ?? 500);
    void this.kick();
  }

  /** Stops polling and waits for the pass under way (requests in flight finish or time out). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) this.o.clock.clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
    this.log.flush();
  }

  /** Measures the queue every MEASURE_EVERY ms and writes what the log limiter suppressed every second. */
  private housekeeping(): void {
    const now = this.o.clock.now();
    if (now - this.lastMeasure >= MEASURE_EVERY) {
      this.measure().catch((err: unknown) => this.o.logger.debug({ err }, 'webhooks: measuring the queue failed'));
    }
    if (now - this.lastLogFlush >= 1000) {
      this.lastLogFlush = now;
      this.log.flush();
    }
  }

  /** Queues events; like the engine's lifecycle events they go out at the next poll, several to a request where the format batches. */
  async queue(events: readonly WebhookEvent[]): Promise<void> {
    if (this.o.endpoints.length === 0 || events.length === 0) return;
    await this.o.outbox.publish(events.map((e) => JSON.stringify(e)));
  }

  hold(key: string, event: WebhookEvent, due: number): Promise<void> {
    return this.o.outbox.hold(key, JSON.stringify(event), due);
  }

  cancel(key: string): Promise<boolean> {
    return this.o.outbox.cancel(key);
  }

  /** Queues events made on this node (`message.acked`) without waiting, and passes at once: a failure is logged (the events are lost). */
  publish(events: readonly WebhookEvent[]): void {
    this.queue(events)
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

  /** Whether some native endpoint wants events of `type` (so that the node makes them at all). */
  wantsType(type: string): boolean {
    return this.o.endpoints.some((e) => e.app === undefined && (e.events.length === 0 || e.events.includes(type)));
  }

  /**
   * A client's publish was published: `client.publish` with where it went and what it said (the payload as
   * published, after the publish hook), for a backend that keeps a chat's messages.
   */
  clientPublished(p: { channel: string; type: string; payloadJson: string; user: string; client: string; seq: number; epoch: string }, time: number): void {
    const data = {
      channel: p.channel,
      type: p.type,
      payload: JSON.parse(p.payloadJson) as unknown,
      user: p.user,
      client: p.client,
      seq: p.seq,
      epoch: p.epoch,
    };
    this.publish([{ id: `evt_${randomId(12)}`, type: 'client.publish', time, data }]);
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

  /**
   * Dead letters were replayed (`herald webhooks replay`): the receiver should be back, so every open circuit of this
   * node probes now instead of at the end of its back-off, and a pass runs.
   */
  replayed(): Promise<void> {
    this.circuits.probeNow();
    return this.kick();
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
    for (let batches = 1; ; batches++) {
      const jobs = await outbox.claim(clock.now(), this.lease, BATCH);
      if (jobs.length > 0) await this.deliverAll(jobs);
      if (jobs.length < BATCH || this.stopped) break;
      if (batches === BATCHES_PER_PASS) {
        // More are due: another pass, after the fan-out.
        this.again = true;
        break;
      }
    }
    if (clock.now() - this.lastMeasure >= MEASURE_EVERY) await this.measure();
    this.housekeeping();
  }

  /** Measures the queue for the metrics and the admin page. */
  async measure(): Promise<void> {
    const now = this.o.clock.now();
    this.lastMeasure = now;
    const s = await this.o.outbox.stats();
    this.stats.queued = s.queued;
    this.stats.held = s.held;
    this.stats.deadLetters = s.dead;
    this.stats.queueAge = s.oldest === null ? 0 : Math.max(0, (now - s.oldest) / 1000);
  }

  /** Sends every job, in requests of up to each endpoint's batch size, a few at a time. */
  private async deliverAll(jobs: OutboxJob[]): Promise<void> {
    const groups: OutboxJob[][] = [];
    const byEndpoint = new Map<string, OutboxJob[]>();
    for (const j of jobs) {
      const list = byEndpoint.get(j.endpoint) ?? [];
      byEndpoint.set(j.endpoint, list);
      list.push(j);
    }
    for (const [name, list] of byEndpoint) {
      const size = Math.max(1, this.byName.get(name)?.batch ?? 1);
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
    const { clock, logger } = this.o;
    const first = jobs[0] as OutboxJob;
    const endpoint = this.byName.get(first.endpoint);
    const format = endpoint && this.o.formats.get(endpoint.format);
    const events = jobs.map((j) => parseEvent(j.event));
    if (!endpoint || !format || events.some((e) => e === undefined)) {
      // Its endpoint left the configuration, or the event is unreadable: nothing will ever send it.
      this.stats.count(this.stats.dead, first.endpoint, jobs.length);
      const reason = !endpoint || !format ? 'unknown_endpoint' : 'invalid_event';
      await Promise.all(jobs.map((j) => this.settle(j, { kind: 'dead', reason })));
      return;
    }
    const admission = this.circuits.admit(endpoint.name, clock.now());
    if (admission.kind === 'defer') {
      await this.defer(jobs, endpoint, format, admission.until);
      return;
    }
    let failure: string;
    try {
      const status = await this.send(endpoint.url, format.request(endpoint, events as WebhookEvent[], clock.now()), this.o.timeout);
      if (status >= 200 && status < 300) {
        this.stats.count(this.stats.sent, endpoint.name, jobs.length);
        this.transition(endpoint.name, this.circuits.succeeded(endpoint.name, clock.now()));
        // A delivery some circuit deferred went through: the receiver is back, though this process saw it down
        // (another node's circuit, or this process's before a restart): release the others too.
        if (jobs.some((j) => (j.deferred ?? 0) > 0)) this.release(endpoint.name, false);
        await Promise.all(jobs.map((j) => this.settle(j, { kind: 'done' })));
        return;
      }
      failure = `status ${status}`;
    } catch (err) {
      failure = err instanceof Error ? (err.name === 'AbortError' ? 'timeout' : err.message) : String(err);
    }
    this.stats.count(this.stats.failed, endpoint.name, jobs.length);
    const now = clock.now();
    this.transition(endpoint.name, this.circuits.failed(endpoint.name, now, format.maxRetryDelay, admission.probe, failure));
    // Each job by its own history: one batch may mix a first attempt with an old retry.
    await Promise.all(
      jobs.map((j) => {
        const delay = retryDelay(j.attempt, format.maxRetryDelay, this.random);
        if (now + delay - j.created > endpoint.retryFor) {
          return this.giveUp(j, endpoint, failure, true);
        }
        this.stats.count(this.stats.retried, endpoint.name);
        logger.debug({ endpoint: endpoint.name, job: j.id, attempt: j.attempt + 1, failure, retryIn: delay }, 'webhooks: delivery failed; will retry');
        return this.settle(j, { kind: 'retry', due: now + delay });
      }),
    );
  }

  /**
   * Puts off an endpoint's jobs without a request while its circuit is open. Each waits as if it had been tried and
   * had failed (its own back-off, counting deferrals as attempts, up to the format's longest retry delay), and at
   * least until the circuit may probe: so a long outage costs each job a few deferrals, not one per probe (a backlog
   * all due at every probe would be claimed and settled again every 30 s). When the circuit closes they are released
   * (due at once). Dead-lettered now when that wait is past its endpoint's retry time, as a failed attempt would be.
   */
  private async defer(jobs: OutboxJob[], endpoint: WebhookEndpoint, format: WebhookFormat, until: number): Promise<void> {
    const now = this.o.clock.now();
    await Promise.all(
      jobs.map((j) => {
        const due = Math.max(until + Math.round(this.random() * 1000), now + retryDelay(j.attempt + (j.deferred ?? 0), format.maxRetryDelay, this.random));
        if (due - j.created > endpoint.retryFor) {
          return this.giveUp(j, endpoint, this.circuits.failure(endpoint.name), false);
        }
        this.stats.count(this.stats.deferred, endpoint.name);
        return this.settle(j, { kind: 'defer', due, keep: endpoint.retryFor });
      }),
    );
  }

  /** Dead-letters a job past its endpoint's retry time (`tried`: it was just attempted, and that attempt counts), counted and logged. */
  private giveUp(j: OutboxJob, endpoint: WebhookEndpoint, failure: string, tried: boolean): Promise<void> {
    this.stats.count(this.stats.dead, endpoint.name);
    const attempts = tried ? j.attempt + 1 : j.attempt;
    this.log.log(
      'warn',
      `webhook_dead:${endpoint.name}`,
      { endpoint: endpoint.name, job: j.id, attempts, failure },
      'webhooks: delivery given up; dead-lettered',
    );
    return this.settle(j, tried ? { kind: 'dead', reason: failure } : { kind: 'dead', reason: failure, untried: true });
  }

  /** Logs an endpoint's circuit opening and closing, and keeps the metrics' set of open circuits in step with it. */
  private transition(endpoint: string, t: Transition): void {
    if (this.circuits.isOpen(endpoint)) this.stats.open.add(endpoint);
    else this.stats.open.delete(endpoint);
    if (t === undefined) return;
    if (t.kind === 'closed') {
      this.log.log('info', `webhook_circuit:${endpoint}`, { endpoint, downFor: t.openedFor }, 'webhooks: endpoint answers again; sending its deliveries');
      // What the circuit put off goes now, not when each one's back-off would have let it.
      this.release(endpoint, true);
      return;
    }
    const fields = { endpoint, failure: t.failure, retryIn: t.until - this.o.clock.now() };
    if (t.first)
      this.log.log('warn', `webhook_circuit:${endpoint}`, fields, 'webhooks: endpoint failing; its deliveries wait (one probe request per back-off)');
    else this.o.logger.debug(fields, 'webhooks: probe failed; endpoint still failing');
  }

  /**
   * Makes the endpoint's deferred jobs due now (see Outbox.release): always when this process's circuit closes, else
   * at most once per RELEASE_EVERY (each released job that goes through would ask again).
   */
  private release(endpoint: string, always: boolean): void {
    const now = this.o.clock.now();
    if (!always && now - (this.releasedAt.get(endpoint) ?? Number.NEGATIVE_INFINITY) < RELEASE_EVERY) return;
    this.releasedAt.set(endpoint, now);
    this.o.outbox.release(endpoint, now).then(
      (n) => {
        if (n > 0) void this.kick();
      },
      (err: unknown) => this.o.logger.warn({ err, endpoint }, 'webhooks: releasing deferred deliveries failed; they go as their back-off ends'),
    );
  }

  private settle(job: OutboxJob, outcome: JobOutcome): Promise<void> {
    return this.o.outbox
      .settle(job, outcome, this.o.clock.now())
      .catch((err: unknown) => this.o.logger.warn({ err, job: job.id }, 'webhooks: settling a job failed'));
  }
}
