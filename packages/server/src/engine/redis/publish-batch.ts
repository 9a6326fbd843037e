import { LuaScript, toHeraldError, type RedisContext } from './client.js';

/**
 * Most publishes per script call. A batch runs in Redis as one script (about 25 us per publish on a slow core),
 * so this bounds how long one call holds Redis, as a pipeline of as many EVALSHAs would.
 */
export const PUBLISH_BATCH_MAX = 128;

/**
 * The batch form of `lua/publish.lua`, built from it at load time so that there is one publish path: the whole
 * script becomes a function of its own KEYS and ARGV, called for each publish in order, under `pcall` so that
 * one publish's failure (an invalid channel, a WRONGTYPE key, OOM) is that publish's answer and the others
 * still run. Each publish's result is exactly what publish.lua answers, or its error.
 *
 * Usage: EVALSHA <sha1> <numkeys> KEYS... <n> { <numkeys_i> <numargs_i> ARGV_i... } x n
 * The keys of the publishes follow one another in KEYS, in order.
 */
export function publishBatchSource(publish: string): string {
  return `local function publish(KEYS, ARGV)
${publish}
end
local n = tonumber(ARGV[1])
local out, k, a = {}, 1, 2
for i = 1, n do
  local nk, na = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  -- Copied by unpack (C) rather than a Lua loop: 5 % of the script's time per publish.
  local keys, args = { unpack(KEYS, k, k + nk - 1) }, { unpack(ARGV, a + 2, a + 1 + na) }
  k = k + nk
  a = a + 2 + na
  local ok, res = pcall(publish, keys, args)
  if ok then
    out[i] = res
  elseif type(res) == 'table' and res.err then
    out[i] = res
  else
    out[i] = { err = 'ERR ' .. tostring(res) }
  end
end
return out
`;
}

/** A publish waiting for the end of its turn. */
interface QueuedPublish {
  keys: readonly string[];
  args: ReadonlyArray<string | number>;
  resolve: (reply: unknown) => void;
  reject: (err: unknown) => void;
}

/**
 * The publishes of one event-loop turn (the items of a batched request, the one-message requests read in the
 * same turn, an ingest read) sent as one script call on a single Redis: one command to build, send and answer
 * instead of one per publish, which is most of what a publish costs the gateway's CPU with ioredis. In order:
 * Redis runs them as they were made, so each channel's seq follows the order of the calls. A turn's only publish
 * goes out as the plain script. (Not for a Redis Cluster: the keys of one script must share a slot.)
 */
export class PublishBatch {
  private queued: QueuedPublish[] | undefined;
  private readonly many: LuaScript;

  constructor(
    private readonly ctx: RedisContext,
    private readonly one: LuaScript,
    private readonly max = PUBLISH_BATCH_MAX,
  ) {
    this.many = new LuaScript(`${one.name}-batch`, publishBatchSource(one.source));
  }

  /** Runs the publish script with `keys` and `args` at the end of this turn; answers what it answers. */
  run(keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (!this.queued) {
        this.queued = [];
        setImmediate(this.flush);
      }
      this.queued.push({ keys, args, resolve, reject });
    });
  }

  /**
   * Sends what is queued now (the end of the turn does it anyway): the broker calls it before a command that
   * must keep its place after the turn's publishes (a broadcast, a disconnect). Direct messages go to one
   * connection's own channel, which no publish shares: they need not wait.
   */
  readonly flush = (): void => {
    const queued = this.queued;
    if (!queued) return;
    this.queued = undefined;
    for (let i = 0; i < queued.length; i += this.max) this.send(queued.slice(i, i + this.max));
  };

  private send(batch: QueuedPublish[]): void {
    const { ctx, one, many } = this;
    if (batch.length === 1) {
      const [p] = batch as [QueuedPublish];
      ctx.call('publish', (redis) => one.run(redis, p.keys, p.args)).then(p.resolve, p.reject);
      return;
    }
    const keys: string[] = [];
    const args: Array<string | number> = [batch.length];
    for (const p of batch) {
      keys.push(...p.keys);
      args.push(p.keys.length, p.args.length, ...p.args);
    }
    ctx
      .call('publish', (redis) => many.run(redis, keys, args))
      .then(
        (reply) => {
          const replies = Array.isArray(reply) && reply.length === batch.length ? (reply as unknown[]) : undefined;
          for (const [i, p] of batch.entries()) {
            const r = replies?.[i];
            if (replies === undefined) p.reject(toHeraldError(new Error('unexpected reply from the publish script'), 'publish'));
            else if (r instanceof Error) p.reject(toHeraldError(r, 'publish'));
            else p.resolve(r);
          }
        },
        (err: unknown) => {
          for (const p of batch) p.reject(err);
        },
      );
  }
}
