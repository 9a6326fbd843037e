import type { ClientId, UserId } from '@herald/protocol';
import type { Logger } from '../../util/logger.js';
import { randomId } from '../../util/random-id.js';
import { encodeInboxMessage, type Inbox, type InboxMessage, type InboxPutInput, type InboxPutOutcome, type Receipt } from '../inbox.js';
import type { EngineHandlers } from '../types.js';
import { LuaScript, onSubscriberBack, toHeraldError, type RedisClient, type RedisContext } from './client.js';
import { TurnSubscriber } from './turns.js';
import type { RedisKeys } from './keys.js';

const noop = (): void => undefined;

/** What the Redis inbox needs from its engine. */
export interface RedisInboxDeps {
  ctx: RedisContext;
  /** The engine's subscriber connection (pub/sub only). */
  sub: RedisClient;
  keys: RedisKeys;
  sharded: boolean;
  now: () => number;
  handlers: () => EngineHandlers | undefined;
  logger: Logger;
}

const COLON = 0x3a;

/** `<receipt>:<expires>:<frame>` (see lua/inbox.lua) of `user`, or undefined. */
function parseLive(user: UserId, raw: Buffer): InboxMessage | undefined {
  const a = raw.indexOf(COLON);
  const b = a < 0 ? -1 : raw.indexOf(COLON, a + 1);
  if (b < 0) return undefined;
  return fromFrame(user, raw.subarray(b + 1), Number(raw.toString('latin1', a + 1, b)), raw[0] === 0x31);
}

/** An inbox message from its frame (the id and time are read back from it). */
function fromFrame(user: UserId, frame: Buffer, expires: number, receipt: boolean): InboxMessage | undefined {
  try {
    const v = JSON.parse(frame.toString('utf8')) as { inbox?: unknown; time?: unknown };
    if (typeof v.inbox !== 'string' || typeof v.time !== 'number') return undefined;
    return { id: v.inbox, user, frame: Buffer.from(frame), time: v.time, expires, receipt };
  } catch {
    return undefined;
  }
}

/** `[id, "<receipt>:<frame>", expires, ...]` (lua/inbox.lua list and remove) as messages. */
function parseEntries(user: UserId, reply: unknown): InboxMessage[] {
  if (!Array.isArray(reply)) throw new Error('unexpected reply from the inbox script');
  const out: InboxMessage[] = [];
  for (let i = 0; i + 2 < reply.length; i += 3) {
    const data = reply[i + 1] as unknown;
    if (!Buffer.isBuffer(data)) continue;
    const m = fromFrame(user, data.subarray(2), Number(String(reply[i + 2])), data[0] === 0x31);
    if (m) out.push(m);
  }
  return out;
}

/**
 * Inboxes in Redis (lua/inbox.lua; docs/redis.md): per user a sorted set of ids in order, one of expiry times
 * and a hash of frames, under the hash tag of the user's channel; a put stores and publishes on the user's
 * inbox pub/sub channel in one atomic step, and the nodes that `watch` the user (those with a connection of
 * it) hand the message on. Receipts are hashes keyed by message id. Survives gateway restarts; shared by every
 * node.
 */
export class RedisInbox implements Inbox {
  private readonly script = LuaScript.load('inbox');
  /** Watched users by pub/sub channel, and their watch counts. */
  private readonly byPub = new Map<string, UserId>();
  /** Per user, while a put waits for its receipt: settles once that put's script has been sent. */
  private readonly issuing = new Map<UserId, Promise<void>>();

  constructor(private readonly d: RedisInboxDeps) {
    const onMessage = (channel: Buffer, message: Buffer): void => {
      const user = this.byPub.get(channel.toString('latin1'));
      if (user === undefined) return;
      const msg = parseLive(user, message);
      try {
        if (msg) d.handlers()?.inbox(msg);
      } catch (err) {
        d.logger.error({ err }, 'redis engine: handling an inbox message failed');
      }
    };
    d.sub.on(d.sharded ? 'smessageBuffer' : 'messageBuffer', onMessage);
    // The subscriber reconnected: watch again. (Messages published meanwhile wait in the inbox for the next connect.)
    onSubscriberBack(d.sub, () => {
      const pubs = [...this.byPub.keys()];
      if (pubs.length > 0) this.command('subscribe', pubs).catch((err: unknown) => d.logger.warn({ err }, 'redis engine: watching inboxes again failed'));
    });
  }

  /** Runs one mode of the script at `now` (one reading of the clock per operation: the frame's time and the expiry agree). */
  private async run(user: UserId, mode: string, args: Array<string | number>, idem?: string, now = this.d.now()): Promise<unknown> {
    const keys: string[] = [...this.d.keys.inbox(user)];
    if (idem !== undefined) keys.push(this.d.keys.inboxIdempotency(user, idem));
    // A list (every connect of a user reads it) joins the turn's pipeline; writes go out at once, in order.
    if (mode === 'list') return this.d.ctx.script('inbox list', this.script, keys, [mode, now, ...args], true);
    return this.d.ctx.call(`inbox ${mode}`, (redis) => this.script.run(redis, keys, [mode, now, ...args], true));
  }

  /**
   * Stores a message in a user's inbox, in publish order: a put with a receipt waits for its receipt before its
   * script goes out, and a later put for the same user (the next item of a request, or the next request) must
   * not overtake it, so it waits until that script is sent (not answered). Puts behind no receipt go out at once.
   */
  put(input: InboxPutInput, opts: { max: number; idempotencyTtl: number }): Promise<InboxPutOutcome> {
    const { user } = input;
    const before = this.issuing.get(user);
    if (before === undefined && !input.receipt) return this.putNow(input, opts, noop);
    let issued: () => void = noop;
    const gate = new Promise<void>((resolve) => (issued = resolve));
    this.issuing.set(user, gate);
    void gate.then(() => {
      if (this.issuing.get(user) === gate) this.issuing.delete(user);
    });
    const run = before === undefined ? this.putNow(input, opts, issued) : before.then(() => this.putNow(input, opts, issued));
    // A put that failed before its script went out (its receipt could not be made) must not hold the others.
    run.catch(issued);
    return run;
  }

  private async putNow(input: InboxPutInput, opts: { max: number; idempotencyTtl: number }, issued: () => void): Promise<InboxPutOutcome> {
    const id = randomId(12);
    const now = this.d.now();
    const frame = encodeInboxMessage(input.type, input.user, input.payloadJson, id, now);
    const args = [id, frame.toString('utf8'), input.ttl, opts.max, input.receipt ? '1' : '0', opts.idempotencyTtl, this.d.sharded ? '1' : '0'];
    // The receipt first: a node may hand the message out (and a client acknowledge it) as soon as it is stored.
    if (input.receipt) await this.createReceipt(id, input.user, now, now + input.ttl);
    const sent = this.run(input.user, 'put', args, input.idempotencyKey, now);
    issued();
    const reply = await sent;
    if (!Array.isArray(reply) || reply.length < 4) throw new Error('unexpected reply from the inbox script');
    const [stored, duplicate, receivers, dropped] = reply as [Buffer, number, number, number];
    const storedId = stored.toString('utf8');
    // A repeated publish id stored nothing: the receipt made for the new id has no message.
    if (input.receipt && storedId !== id) await this.d.ctx.call('receipt drop', (r) => r.del(this.d.keys.receipt(id)));
    return { id: storedId, duplicate: duplicate === 1, live: Number(receivers) > 0, dropped: Number(dropped) };
  }

  async list(user: UserId, limit: number): Promise<InboxMessage[]> {
    return parseEntries(user, await this.run(user, 'list', [limit]));
  }

  async remove(user: UserId, ids: readonly string[] | 'all'): Promise<InboxMessage[]> {
    if (ids !== 'all' && ids.length === 0) return [];
    return parseEntries(user, await this.run(user, 'remove', ids === 'all' ? ['*'] : [...ids]));
  }

  async watch(user: UserId): Promise<void> {
    const pub = this.d.keys.inbox(user)[4];
    if (this.byPub.has(pub)) return;
    this.byPub.set(pub, user);
    try {
      await this.command('subscribe', [pub]);
    } catch (err) {
      throw toHeraldError(err, 'inbox watch');
    }
  }

  async unwatch(user: UserId): Promise<void> {
    const pub = this.d.keys.inbox(user)[4];
    if (!this.byPub.delete(pub)) return;
    await this.command('unsubscribe', [pub]).catch((err: unknown) => this.d.logger.debug({ err }, 'redis engine: inbox unwatch failed'));
  }

  private async createReceipt(id: string, user: UserId, created: number, expires: number): Promise<void> {
    const key = this.d.keys.receipt(id);
    await this.d.ctx.pipeline('receipt create', (p) => {
      p.hset(key, 'user', user, 'created', created, 'expires', expires, 'delivered', 0);
      p.pexpireat(key, expires);
    });
  }

  async delivered(ids: readonly string[], connections: number, at: number): Promise<void> {
    if (ids.length === 0) return;
    await this.d.ctx.pipeline('receipt delivered', (p) => {
      for (const id of ids) {
        const key = this.d.keys.receipt(id);
        // Only an existing receipt: a delivery must not create one that never expires.
        p.eval(
          "if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HINCRBY', KEYS[1], 'delivered', ARGV[1]); redis.call('HSETNX', KEYS[1], 'deliveredAt', ARGV[2]) end return 0",
          1,
          key,
          connections,
          at,
        );
      }
    });
  }

  async acked(ids: readonly string[], client: ClientId, at: number): Promise<string[]> {
    if (ids.length === 0) return [];
    const results = await this.d.ctx.pipeline('receipt acked', (p) => {
      for (const id of ids) {
        p.eval(
          "if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('HSETNX', KEYS[1], 'ackedAt', ARGV[1]) == 1 then redis.call('HSET', KEYS[1], 'ackedBy', ARGV[2]) return 1 end return 0",
          1,
          this.d.keys.receipt(id),
          at,
          client,
        );
      }
    });
    return ids.filter((_, i) => results[i] === 1);
  }

  async receipt(id: string): Promise<Receipt | null> {
    const h = await this.d.ctx.call('receipt', (r) => r.hgetall(this.d.keys.receipt(id)));
    if (h['user'] === undefined) return null;
    const num = (k: string): number | null => (h[k] === undefined ? null : Number(h[k]));
    const ackedAt = num('ackedAt');
    return {
      id,
      user: h['user'],
      created: num('created') ?? 0,
      expires: num('expires') ?? 0,
      delivered: num('delivered') ?? 0,
      deliveredAt: num('deliveredAt'),
      acked: ackedAt === null ? null : { at: ackedAt, client: h['ackedBy'] ?? '' },
    };
  }

  private async command(kind: 'subscribe' | 'unsubscribe', pubs: string[]): Promise<void> {
    const { sub, sharded } = this.d;
    if (!sharded) {
      await TurnSubscriber.of(sub, this.d.ctx.clock).run(kind, pubs);
      return;
    }
    await Promise.all(pubs.map((p) => (kind === 'subscribe' ? sub.ssubscribe(p) : sub.sunsubscribe(p))));
  }
}
