import type { DeadJob, JobQueues, QueuedJob } from '../types.js';

interface Entry {
  payload: string;
  attempts: number;
  /** When it is due, or when its lease ends while claimed. */
  dueAt: number;
  /** The lease end while a node holds it (claimed), else undefined. */
  leasedUntil: number | undefined;
}

/** Most dead letters kept per queue (the oldest are forgotten first). */
const MAX_DEAD = 10_000;

/** Job queues for one process (see JobQueues): maps scanned on claim, which is fine for a process's own webhooks. */
export class MemoryJobQueues implements JobQueues {
  private readonly queues = new Map<string, Map<string, Entry>>();
  private readonly buried = new Map<string, DeadJob[]>();

  private queue(name: string): Map<string, Entry> {
    let q = this.queues.get(name);
    if (!q) this.queues.set(name, (q = new Map()));
    return q;
  }

  enqueue(queue: string, job: { id: string; payload: string }, dueAt: number): Promise<boolean> {
    const q = this.queue(queue);
    if (q.has(job.id)) return Promise.resolve(false);
    q.set(job.id, { payload: job.payload, attempts: 0, dueAt, leasedUntil: undefined });
    return Promise.resolve(true);
  }

  cancel(queue: string, id: string, now: number): Promise<boolean> {
    const q = this.queue(queue);
    const e = q.get(id);
    if (!e || (e.leasedUntil !== undefined && e.leasedUntil > now)) return Promise.resolve(false);
    q.delete(id);
    return Promise.resolve(true);
  }

  claim(queue: string, now: number, max: number, leaseMs: number): Promise<QueuedJob[]> {
    const due = [...this.queue(queue)].filter(([, e]) => (e.leasedUntil ?? e.dueAt) <= now).sort((a, b) => a[1].dueAt - b[1].dueAt);
    const out: QueuedJob[] = [];
    for (const [id, e] of due.slice(0, max)) {
      e.leasedUntil = now + leaseMs;
      out.push({ id, payload: e.payload, attempts: e.attempts });
    }
    return Promise.resolve(out);
  }

  ack(queue: string, id: string): Promise<void> {
    this.queue(queue).delete(id);
    return Promise.resolve();
  }

  retry(queue: string, id: string, dueAt: number): Promise<void> {
    const e = this.queue(queue).get(id);
    if (e) {
      e.attempts += 1;
      e.dueAt = dueAt;
      e.leasedUntil = undefined;
    }
    return Promise.resolve();
  }

  bury(queue: string, id: string, reason: string): Promise<void> {
    const q = this.queue(queue);
    const e = q.get(id);
    if (!e) return Promise.resolve();
    q.delete(id);
    let d = this.buried.get(queue);
    if (!d) this.buried.set(queue, (d = []));
    d.unshift({ id, payload: e.payload, reason });
    if (d.length > MAX_DEAD) d.length = MAX_DEAD;
    return Promise.resolve();
  }

  dead(queue: string, limit: number): Promise<DeadJob[]> {
    return Promise.resolve((this.buried.get(queue) ?? []).slice(0, limit));
  }
}
