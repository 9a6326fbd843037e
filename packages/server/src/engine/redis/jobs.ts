import { LuaScript, type RedisContext } from './client.js';
import type { RedisKeys } from './keys.js';
import type { DeadJob, JobQueues, QueuedJob } from '../types.js';

/**
 * Job queues in Redis (`lua/jobs.lua`): one ZSET of due times per queue (a claimed job's score is its lease end,
 * so a job whose node died is due again when the lease ends), its payloads and attempt counts in hashes, dead
 * letters in a capped list; every operation is one atomic script on the queue's hash tag.
 */
export class RedisJobQueues implements JobQueues {
  private readonly script = LuaScript.load('jobs');

  constructor(
    private readonly ctx: RedisContext,
    private readonly keys: RedisKeys,
  ) {}

  private run(queue: string, args: Array<string | number>): Promise<unknown> {
    return this.ctx.call(`jobs ${String(args[0])}`, (redis) => this.script.run(redis, this.keys.jobs(queue), args));
  }

  async enqueue(queue: string, job: { id: string; payload: string }, dueAt: number): Promise<boolean> {
    return (await this.run(queue, ['enqueue', job.id, job.payload, Math.floor(dueAt)])) === 1;
  }

  async cancel(queue: string, id: string, now: number): Promise<boolean> {
    return (await this.run(queue, ['cancel', id, Math.floor(now)])) === 1;
  }

  async claim(queue: string, now: number, max: number, leaseMs: number): Promise<QueuedJob[]> {
    const flat = await this.run(queue, ['claim', Math.floor(now), max, leaseMs]);
    const out: QueuedJob[] = [];
    if (!Array.isArray(flat)) return out;
    for (let i = 0; i + 2 < flat.length; i += 3) {
      const [id, payload, attempts] = [flat[i] as unknown, flat[i + 1] as unknown, flat[i + 2] as unknown];
      if (typeof id === 'string' && typeof payload === 'string') out.push({ id, payload, attempts: Number(attempts) });
    }
    return out;
  }

  async ack(queue: string, id: string): Promise<void> {
    await this.run(queue, ['ack', id]);
  }

  async retry(queue: string, id: string, dueAt: number): Promise<void> {
    await this.run(queue, ['retry', id, Math.floor(dueAt)]);
  }

  async bury(queue: string, id: string, reason: string): Promise<void> {
    await this.run(queue, ['bury', id, reason]);
  }

  async dead(queue: string, limit: number): Promise<DeadJob[]> {
    const key = this.keys.jobs(queue)[4];
    const items = await this.ctx.call('jobs dead', (redis) => redis.lrange(key, 0, limit - 1));
    return items.flatMap((text) => {
      try {
        const v = JSON.parse(text) as Partial<DeadJob>;
        return typeof v.id === 'string' && typeof v.payload === 'string' ? [{ id: v.id, payload: v.payload, reason: String(v.reason ?? '') }] : [];
      } catch {
        return [];
      }
    });
  }
}
