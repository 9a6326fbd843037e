import { randomId } from '../../util/random-id.js';
import type { Logger } from '../../util/logger.js';
import type { DeadJob, JobOutcome, Outbox, OutboxEvent, OutboxJob, OutboxStats } from '../outbox.js';
import type { NodeId } from '../types.js';
import { LuaScript, type RedisContext } from './client.js';
import { pruneConsumers } from './consumers.js';
import type { RedisKeys } from './keys.js';

/** The consumer group every node joins on the events stream. */
const GROUP = 'herald';
/** Dead letters kept (approximately: MAXLEN ~). */
const MAX_DEAD = 10_000;
/** An event left pending by a node this long (it died while fanning out) is taken over by another. */
const CLAIM_IDLE = 30_000;

/** The entries of a one-stream XREADGROUP/XAUTOCLAIM reply. */
function entries(reply: unknown): Array<[string, string[] | null]> {
  if (!Array.isArray(reply) || reply.length === 0) return [];
  const pair: unknown = Array.isArray(reply[0]) ? reply[0] : reply;
  const list = Array.isArray(pair) ? (pair[1] as unknown) : undefined;
  return Array.isArray(list) ? (list as Array<[string, string[] | null]>) : [];
}

const fieldOf = (fields: string[] | null, name: string): string | undefined => {
  if (!fields) return undefined;
  const i = fields.indexOf(name);
  return i >= 0 && i % 2 === 0 ? fields[i + 1] : undefined;
};

/** A job as stored (lua/outbox.lua): everything but its id. */
/** Deferred jobs made due per script call of `release`. */
const RELEASE_SLICE = 1000;

const jobJson = (j: Omit<OutboxJob, 'id'>): string =>
  JSON.stringify(
    j.deferred === undefined || j.deferred === 0
      ? { endpoint: j.endpoint, event: j.event, attempt: j.attempt, created: j.created }
      : { endpoint: j.endpoint, event: j.event, attempt: j.attempt, created: j.created, deferred: j.deferred },
  );

function parseJob(id: string, json: string): OutboxJob | undefined {
  try {
    const v = JSON.parse(json) as Partial<OutboxJob>;
    if (typeof v.endpoint !== 'string' || typeof v.event !== 'string' || typeof v.attempt !== 'number' || typeof v.created !== 'number') return undefined;
    const job: OutboxJob = { id, endpoint: v.endpoint, event: v.event, attempt: v.attempt, created: v.created };
    if (typeof v.deferred === 'number' && v.deferred > 0) job.deferred = v.deferred;
    return job;
  } catch {
    return undefined;
  }
}

/**
 * The webhooks' queue in Redis (lua/outbox.lua; docs/redis.md): events on a stream read with a consumer group,
 * so each is fanned out by one node and one that died meanwhile is taken over; held events in a sorted set of
 * due times (with their JSON in a hash), put on the stream by whichever node fans out first once due; jobs in a
 * hash with a sorted set of due times, leased to one node at a time; dead letters on a capped stream. All under
 * the hash tag {webhooks}: every step is one atomic script.
 */
export class RedisOutbox implements Outbox {
  private readonly script = LuaScript.load('outbox');
  private groupReady = false;
  private lastClaim = 0;

  constructor(
    private readonly ctx: RedisContext,
    private readonly keys: RedisKeys,
    private readonly node: NodeId,
    private readonly logger: Logger,
  ) {}

  /** Runs lua/outbox.lua in `mode`; `endpoint` adds the key of its deferred jobs (`defer`, `release`). */
  private run(mode: string, now: number, args: Array<string | number>, endpoint?: string): Promise<unknown> {
    const h = this.keys.hooks;
    const keys = [h.events, h.due, h.jobs, h.age, h.dead, h.held, h.heldEvents];
    if (endpoint !== undefined) keys.push(this.keys.deferredJobs(endpoint));
    return this.ctx.call(`outbox ${mode}`, (r) => this.script.run(r, keys, [mode, now, ...args]));
  }

  async publish(events: readonly OutboxEvent[]): Promise<void> {
    if (events.length === 0) return;
    const key = this.keys.hooks.events;
    await this.ctx.pipeline('outbox publish', (p) => {
      for (const e of events) p.xadd(key, '*', 'e', e);
    });
  }

  async hold(key: string, event: OutboxEvent, due: number): Promise<void> {
    await this.run('hold', 0, [key, event, Math.floor(due)]);
  }

  async cancel(key: string): Promise<boolean> {
    return Number(await this.run('cancel', 0, [key])) === 1;
  }

  private async ensureGroup(): Promise<void> {
    if (this.groupReady) return;
    try {
      await this.ctx.call('outbox group', (r) => r.xgroup('CREATE', this.keys.hooks.events, GROUP, '0', 'MKSTREAM'));
    } catch (err) {
      if (!(err instanceof Error && /BUSYGROUP/.test(`${err.message} ${String((err as { cause?: unknown }).cause)}`))) throw err;
    }
    this.groupReady = true;
  }

  async fanOut(route: (event: OutboxEvent) => string[], max: number, now: number): Promise<number> {
    await this.ensureGroup();
    await this.run('promote', Math.floor(now), [max]);
    const key = this.keys.hooks.events;
    const read = (from: string): Promise<unknown> =>
      this.ctx.call('outbox read', (r) => r.call('XREADGROUP', 'GROUP', GROUP, this.node, 'COUNT', max, 'STREAMS', key, from));
    let got: Array<[string, string[] | null]>;
    try {
      if (now - this.lastClaim >= CLAIM_IDLE / 3) {
        this.lastClaim = now;
        // Events a dead node left pending: this node takes them over (they come back below, as its own).
        await this.ctx.call('outbox claim', (r) => r.xautoclaim(key, GROUP, this.node, CLAIM_IDLE, '0-0', 'COUNT', max));
        // Then the consumers of stopped nodes (each process reads under its own id) go, their events claimed. Not
        // in the way of the fan-out if it fails: they only take a few bytes each.
        await this.ctx
          .call('outbox prune', (r) => pruneConsumers(r, key, GROUP, this.node, CLAIM_IDLE))
          .catch((err: unknown) => this.logger.debug({ err }, 'redis engine: removing the consumers of stopped nodes failed'));
      }
      got = entries(await read('0'));
      if (got.length === 0) got = entries(await read('>'));
    } catch (err) {
      // The group vanished (a Redis that lost its data): make it again next time.
      if (err instanceof Error && /NOGROUP/.test(`${err.message} ${String((err as { cause?: unknown }).cause)}`)) this.groupReady = false;
      throw err;
    }
    if (got.length === 0) return 0;
    const args: Array<string | number> = [];
    for (const [entry, fields] of got) {
      const event = fieldOf(fields, 'e');
      const endpoints = event === undefined ? [] : route(event);
      args.push(entry, endpoints.length);
      for (const endpoint of endpoints) args.push(randomId(12), jobJson({ endpoint, event: event as string, attempt: 0, created: now }));
    }
    await this.run('fanout', now, args);
    return got.length;
  }

  async claim(now: number, lease: number, max: number): Promise<OutboxJob[]> {
    const reply = await this.run('claim', now, [lease, max]);
    if (!Array.isArray(reply)) return [];
    const out: OutboxJob[] = [];
    for (let i = 0; i + 1 < reply.length; i += 2) {
      const job = parseJob(String(reply[i]), String(reply[i + 1]));
      if (job) out.push(job);
      else this.logger.warn({ job: String(reply[i]) }, 'redis engine: an outbox job could not be read');
    }
    return out;
  }

  async settle(job: OutboxJob, outcome: JobOutcome, now: number): Promise<void> {
    if (outcome.kind === 'done') await this.run('done', now, [job.id]);
    else if (outcome.kind === 'retry') await this.run('retry', now, [job.id, jobJson({ ...job, attempt: job.attempt + 1 }), outcome.due]);
    // Rescheduled as a retry is, without counting an attempt, and remembered for `release`.
    else if (outcome.kind === 'defer')
      await this.run(
        'defer',
        now,
        [job.id, jobJson({ ...job, deferred: (job.deferred ?? 0) + 1 }), outcome.due, Math.max(1, Math.ceil(outcome.keep))],
        job.endpoint,
      );
    else {
      const letter = JSON.stringify({
        id: job.id,
        endpoint: job.endpoint,
        event: job.event,
        attempt: outcome.untried ? job.attempt : job.attempt + 1,
        created: job.created,
        reason: outcome.reason,
        died: now,
      });
      await this.run('dead', now, [job.id, letter, MAX_DEAD]);
    }
  }

  async release(endpoint: string, now: number): Promise<number> {
    // In slices, so that a backlog of many thousands does not hold Redis in one script.
    let moved = 0;
    for (;;) {
      const [n, taken] = (await this.run('release', now, [RELEASE_SLICE], endpoint)) as [number, number];
      moved += n;
      if (taken < RELEASE_SLICE) return moved;
    }
  }

  private async letters(limit: number): Promise<Array<{ entry: string; job: DeadJob }>> {
    const raw = await this.ctx.call('outbox dead', (r) => r.xrange(this.keys.hooks.dead, '-', '+', 'COUNT', limit));
    const out: Array<{ entry: string; job: DeadJob }> = [];
    for (const [entry, fields] of raw) {
      try {
        const v = JSON.parse(fieldOf(fields, 'j') ?? '') as DeadJob;
        out.push({ entry, job: v });
      } catch {
        this.logger.warn({ entry }, 'redis engine: a dead letter could not be read');
      }
    }
    return out;
  }

  async deadLetters(limit: number): Promise<DeadJob[]> {
    return (await this.letters(limit)).map((l) => l.job);
  }

  async replay(ids: readonly string[] | 'all', now: number): Promise<number> {
    const wanted = ids === 'all' ? undefined : new Set(ids);
    const letters = (await this.letters(MAX_DEAD * 2)).filter((l) => !wanted || wanted.has(l.job.id));
    let n = 0;
    // In slices: one script call must not grow without bound.
    for (let i = 0; i < letters.length; i += 500) {
      const args: string[] = [];
      for (const { entry, job } of letters.slice(i, i + 500)) args.push(entry, randomId(12), jobJson({ ...job, attempt: 0, created: now }));
      n += Number(await this.run('replay', now, args));
    }
    return n;
  }

  async stats(): Promise<OutboxStats> {
    const h = this.keys.hooks;
    const [events, jobs, dead, oldest, held] = await this.ctx.pipeline('outbox stats', (p) => {
      p.xlen(h.events);
      p.zcard(h.due);
      p.xlen(h.dead);
      p.zrange(h.age, '0', '0', 'WITHSCORES');
      p.zcard(h.held);
    });
    const first = Array.isArray(oldest) && oldest.length >= 2 ? Number(oldest[1]) : null;
    return { queued: Number(events) + Number(jobs), held: Number(held), dead: Number(dead), oldest: first };
  }
}
