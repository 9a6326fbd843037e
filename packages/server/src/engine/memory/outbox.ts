import { randomId } from '../../util/random-id.js';
import type { DeadJob, JobOutcome, Outbox, OutboxEvent, OutboxJob, OutboxStats } from '../outbox.js';

/** Dead letters kept; past it the oldest go (the Redis engine keeps about as many). */
const MAX_DEAD = 10_000;

/**
 * The webhooks' queue in this process (see Outbox in engine/outbox.ts): events in an array, held events in a Map
 * by key, jobs in a Map with their due time (a lease moves it forward), dead letters in an array. Lost with the
 * process, like the rest of the memory engine. The `*Now` methods are the same steps, synchronous, for the
 * engine's own lifecycle tracking.
 */
export class MemoryOutbox implements Outbox {
  private events: Array<{ event: OutboxEvent; at: number }> = [];
  private readonly held = new Map<string, { event: OutboxEvent; due: number }>();
  private readonly jobs = new Map<string, { job: OutboxJob; due: number }>();
  private dead: DeadJob[] = [];

  constructor(private readonly now: () => number) {}

  /** `publish`, synchronously. */
  publishNow(events: readonly OutboxEvent[]): void {
    const at = this.now();
    for (const event of events) this.events.push({ event, at });
  }

  /** `hold`, synchronously. */
  holdNow(key: string, event: OutboxEvent, due: number): void {
    // Delete first: a replaced event takes its new place in due order.
    this.held.delete(key);
    this.held.set(key, { event, due });
  }

  /** `cancel`, synchronously. */
  cancelNow(key: string): boolean {
    return this.held.delete(key);
  }

  publish(events: readonly OutboxEvent[]): Promise<void> {
    this.publishNow(events);
    return Promise.resolve();
  }

  hold(key: string, event: OutboxEvent, due: number): Promise<void> {
    this.holdNow(key, event, due);
    return Promise.resolve();
  }

  cancel(key: string): Promise<boolean> {
    return Promise.resolve(this.cancelNow(key));
  }

  fanOut(route: (event: OutboxEvent) => string[], max: number, now: number): Promise<number> {
    const due = [...this.held].filter(([, h]) => h.due <= now).sort((a, b) => a[1].due - b[1].due);
    for (const [key, h] of due) {
      this.held.delete(key);
      this.events.push({ event: h.event, at: now });
    }
    const taken = this.events.slice(0, max);
    this.events = this.events.slice(taken.length);
    for (const { event } of taken) {
      for (const endpoint of route(event)) {
        const job: OutboxJob = { id: randomId(12), endpoint, event, attempt: 0, created: now };
        this.jobs.set(job.id, { job, due: now });
      }
    }
    return Promise.resolve(taken.length);
  }

  claim(now: number, lease: number, max: number): Promise<OutboxJob[]> {
    const due = [...this.jobs.values()].filter((j) => j.due <= now).sort((a, b) => a.due - b.due || a.job.created - b.job.created);
    const out: OutboxJob[] = [];
    for (const j of due.slice(0, max)) {
      j.due = now + lease;
      out.push({ ...j.job });
    }
    return Promise.resolve(out);
  }

  settle(job: OutboxJob, outcome: JobOutcome, now: number): Promise<void> {
    const entry = this.jobs.get(job.id);
    if (!entry) return Promise.resolve();
    if (outcome.kind === 'retry') {
      entry.job = { ...entry.job, attempt: job.attempt + 1 };
      entry.due = outcome.due;
      return Promise.resolve();
    }
    this.jobs.delete(job.id);
    if (outcome.kind === 'dead') {
      this.dead.push({ ...job, attempt: job.attempt + 1, reason: outcome.reason, died: now });
      if (this.dead.length > MAX_DEAD) this.dead = this.dead.slice(-MAX_DEAD);
    }
    return Promise.resolve();
  }

  deadLetters(limit: number): Promise<DeadJob[]> {
    return Promise.resolve(this.dead.slice(0, limit).map((d) => ({ ...d })));
  }

  replay(ids: readonly string[] | 'all', now: number): Promise<number> {
    const wanted = ids === 'all' ? undefined : new Set(ids);
    const back = this.dead.filter((d) => !wanted || wanted.has(d.id));
    this.dead = this.dead.filter((d) => wanted && !wanted.has(d.id));
    for (const d of back) {
      const job: OutboxJob = { id: randomId(12), endpoint: d.endpoint, event: d.event, attempt: 0, created: now };
      this.jobs.set(job.id, { job, due: now });
    }
    return Promise.resolve(back.length);
  }

  stats(): Promise<OutboxStats> {
    let oldest: number | null = this.events[0]?.at ?? null;
    for (const { job } of this.jobs.values()) if (oldest === null || job.created < oldest) oldest = job.created;
    return Promise.resolve({ queued: this.events.length + this.jobs.size, held: this.held.size, dead: this.dead.length, oldest });
  }
}
