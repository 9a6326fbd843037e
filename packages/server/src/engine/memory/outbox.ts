import { MinHeap } from '../../util/min-heap.js';
import { randomId } from '../../util/random-id.js';
import type { DeadJob, JobOutcome, Outbox, OutboxEvent, OutboxJob, OutboxStats } from '../outbox.js';

/** Dead letters kept; past it the oldest go (the Redis engine keeps about as many). */
const MAX_DEAD = 10_000;
/** Deferred jobs released per event-loop turn. */
const RELEASE_SLICE = 5000;
/** Events taken off the front of the queue before its array is compacted (and at least half of it; all: at once). */
const COMPACT_EVENTS = 1024;

/** A place in a due-time heap: stale once its entry is gone or was given another due time (`version`). */
interface DueRef {
  key: string;
  due: number;
  /** Order among equal due times: the job's event time, then when it was scheduled. */
  created: number;
  seq: number;
  version: number;
}

const earlier = (a: DueRef, b: DueRef): boolean => a.due < b.due || (a.due === b.due && (a.created < b.created || (a.created === b.created && a.seq < b.seq)));

/**
 * Entries by key with a due time each, and a heap of their due times, so that the due ones are found in
 * O(log n) each, however many wait: taking them by sorting every entry made draining a queue of N jobs cost
 * O(N^2 log N), and a receiver down during connection churn (hundreds of thousands of jobs) took the process's CPU.
 * A changed or removed entry leaves its heap place behind, skipped when it comes up and dropped in bulk when
 * such places outnumber the entries.
 */
class DueMap<V extends { due: number; version: number }> {
  readonly entries = new Map<string, V>();
  private readonly heap = new MinHeap<DueRef>(earlier);
  private seq = 0;

  constructor(private readonly createdOf: (v: V) => number) {}

  get size(): number {
    return this.entries.size;
  }

  /** Adds or replaces the entry under `key`, due at `v.due`. */
  set(key: string, v: V): void {
    this.entries.set(key, v);
    this.schedule(key, v);
  }

  /** Gives the entry under `key` a new due time. */
  reschedule(key: string, v: V, due: number): void {
    v.due = due;
    this.schedule(key, v);
  }

  delete(key: string): boolean {
    return this.entries.delete(key);
  }

  /** Takes up to `max` entries due at `now`, earliest first (they stay in the map; `take` decides what becomes of them). */
  *due(now: number, max: number): Generator<[string, V]> {
    let n = 0;
    while (n < max) {
      const top = this.heap.peek();
      if (top === undefined || top.due > now) return;
      this.heap.pop();
      const v = this.entries.get(top.key);
      if (v === undefined || v.version !== top.version) continue;
      n++;
      yield [top.key, v];
    }
  }

  private schedule(key: string, v: V): void {
    // Unique, not per entry: an entry that replaces another under its key must not match the other's places.
    v.version = ++this.seq;
    this.heap.push({ key, due: v.due, created: this.createdOf(v), seq: v.version, version: v.version });
    if (this.heap.size > 2 * this.entries.size + 1024) {
      this.heap.retain((r) => this.entries.get(r.key)?.version === r.version);
    }
  }
}

interface JobEntry {
  job: OutboxJob;
  due: number;
  version: number;
}

interface HeldEntry {
  event: OutboxEvent;
  due: number;
  version: number;
}

/**
 * The webhooks' queue in this process (see Outbox in engine/outbox.ts): events in an array, held events and jobs
 * by key with their due times (a lease moves a job's forward), dead letters in an array. Lost with the process,
 * like the rest of the memory engine. The `*Now` methods are the same steps, synchronous, for the engine's own
 * lifecycle tracking.
 */
export class MemoryOutbox implements Outbox {
  private events: Array<{ event: OutboxEvent; at: number }> = [];
  /** Events before it were fanned out (the array is compacted now and then, not shifted per event). */
  private head = 0;
  private readonly held = new DueMap<HeldEntry>((h) => h.due);
  private readonly jobs = new DueMap<JobEntry>((j) => j.job.created);
  private dead: DeadJob[] = [];
  /** Deferred jobs by endpoint, each with the version its deferral gave it (a later lease or settle changes it). */
  private readonly deferred = new Map<string, Map<string, number>>();

  constructor(private readonly now: () => number) {}

  /** `publish`, synchronously. */
  publishNow(events: readonly OutboxEvent[]): void {
    const at = this.now();
    for (const event of events) this.events.push({ event, at });
  }

  /** `hold`, synchronously. */
  holdNow(key: string, event: OutboxEvent, due: number): void {
    // A replaced event takes its new place in due order.
    this.held.set(key, { event, due, version: 0 });
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
    for (const [key, h] of this.held.due(now, Number.POSITIVE_INFINITY)) {
      this.held.delete(key);
      this.events.push({ event: h.event, at: now });
    }
    const end = Math.min(this.events.length, this.head + max);
    for (let i = this.head; i < end; i++) {
      const { event } = this.events[i] as { event: OutboxEvent };
      for (const endpoint of route(event)) {
        const job: OutboxJob = { id: randomId(12), endpoint, event, attempt: 0, created: now };
        this.jobs.set(job.id, { job, due: now, version: 0 });
      }
    }
    const taken = end - this.head;
    this.head = end;
    if (this.head === this.events.length || (this.head >= COMPACT_EVENTS && this.head * 2 >= this.events.length)) {
      this.events = this.events.slice(this.head);
      this.head = 0;
    }
    return Promise.resolve(taken);
  }

  claim(now: number, lease: number, max: number): Promise<OutboxJob[]> {
    const out: OutboxJob[] = [];
    const leased: Array<[string, JobEntry]> = [];
    for (const entry of this.jobs.due(now, max)) leased.push(entry);
    // Rescheduled once taken: a job leased now is not due again in this same walk.
    for (const [id, j] of leased) {
      this.jobs.reschedule(id, j, now + lease);
      out.push({ ...j.job });
    }
    return Promise.resolve(out);
  }

  settle(job: OutboxJob, outcome: JobOutcome, now: number): Promise<void> {
    const entry = this.jobs.entries.get(job.id);
    if (!entry) return Promise.resolve();
    const waiting = this.deferred.get(job.endpoint);
    if (outcome.kind === 'defer') {
      entry.job = { ...entry.job, deferred: (job.deferred ?? 0) + 1 };
      this.jobs.reschedule(job.id, entry, outcome.due);
      if (waiting === undefined) this.deferred.set(job.endpoint, new Map([[job.id, entry.version]]));
      else waiting.set(job.id, entry.version);
      return Promise.resolve();
    }
    waiting?.delete(job.id);
    if (outcome.kind === 'retry') {
      entry.job = { ...entry.job, attempt: job.attempt + 1 };
      this.jobs.reschedule(job.id, entry, outcome.due);
      return Promise.resolve();
    }
    this.jobs.delete(job.id);
    if (outcome.kind === 'dead') {
      const { deferred: _deferred, ...tried } = job;
      this.dead.push({ ...tried, attempt: outcome.untried ? job.attempt : job.attempt + 1, reason: outcome.reason, died: now });
      if (this.dead.length > MAX_DEAD) this.dead = this.dead.slice(-MAX_DEAD);
    }
    return Promise.resolve();
  }

  async release(endpoint: string, now: number): Promise<number> {
    const waiting = this.deferred.get(endpoint);
    this.deferred.delete(endpoint);
    let n = 0;
    let slice = 0;
    for (const [id, version] of waiting ?? []) {
      // A backlog of hundreds of thousands must not hold the event loop: a turn per slice.
      if (++slice % RELEASE_SLICE === 0) await new Promise<void>((resolve) => setImmediate(resolve));
      const entry = this.jobs.entries.get(id);
      // Leased or settled since (another version), or due already: not this release's to move.
      if (entry === undefined || entry.version !== version || entry.due <= now) continue;
      this.jobs.reschedule(id, entry, now);
      n++;
    }
    return n;
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
      this.jobs.set(job.id, { job, due: now, version: 0 });
    }
    return Promise.resolve(back.length);
  }

  stats(): Promise<OutboxStats> {
    let oldest: number | null = this.events[this.head]?.at ?? null;
    for (const { job } of this.jobs.entries.values()) if (oldest === null || job.created < oldest) oldest = job.created;
    return Promise.resolve({ queued: this.events.length - this.head + this.jobs.size, held: this.held.size, dead: this.dead.length, oldest });
  }
}
