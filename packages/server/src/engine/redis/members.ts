import type { ChannelName, ClientId, UserId } from '@herald/protocol';
import type { Logger } from '../../util/logger.js';
import { LuaScript, type RedisContext } from './client.js';
import type { RedisKeys } from './keys.js';
import type { ChannelMember, MemberBackListener, MemberGoneListener, MemberInput, Members } from '../types.js';

type Mode = 'join' | 'leave' | 'list' | 'count' | 'refresh';

/** Members renewed per round trip of a refresh (whole channels: a slice ends after the channel that reaches it). */
export const REFRESH_MEMBERS = 100;
/** Channels looked at per round trip of a sweep. */
const SWEEP_CHANNELS = 100;
/** Most rounds of one sweep (the next sweep takes the rest): up to 1000 channels per node per refresh tick. */
const SWEEP_ROUNDS = 10;

/**
 * Takes a channel out of the index unless a join or refresh renewed it since: its score is at most ARGV[2] (KEYS[1]
 * index; ARGV channel, score). A script of its own, not part of `members.lua`: the index is one key for every
 * channel, on a slot of its own in a Redis Cluster.
 */
const UNINDEX = new LuaScript(
  'members-unindex',
  `local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) <= tonumber(ARGV[2]) then redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0`,
);

const isString = (v: unknown): v is string => typeof v === 'string';

/**
 * Channel members in Redis (`lua/members.lua`): per channel a ZSET of connections scored by expiry, the user of
 * each connection, a connection count per user and each user's info, all under the channel's hash tag. Join and
 * leave are one atomic script each, so the first connection and the last disconnection of a user are decided
 * once for the cluster. Each node renews its own connections every refresh (as presence does); connections of
 * a node that stopped renewing expire after `ttl`, and the next script to run on the channel, on any node,
 * removes them and reports the users that left that way (`onGone`), once. A channel that only a dead node had
 * members in gets no such script: the index (`keys.membersIndex`) scores each channel by its latest join or
 * refresh, and every node's `sweep` runs the script on the channels whose score passed.
 */
export class RedisMembers implements Members {
  private readonly script = LuaScript.load('members');
  /** This node's members: channel -> connection -> member, what a refresh renews. */
  private readonly local = new Map<ChannelName, Map<ClientId, MemberInput>>();
  private readonly listeners = new Set<MemberGoneListener>();
  private readonly backListeners = new Set<MemberBackListener>();
  /** Channels whose last refresh failed (see refresh). */
  private readonly uncertain = new Set<ChannelName>();
  private refreshing = false;

  constructor(
    private readonly ctx: RedisContext,
    private readonly keys: RedisKeys,
    /** How long an entry lives without a refresh (ms). */
    private readonly ttl: number,
    private readonly now: () => number,
    private readonly logger: Logger,
  ) {}

  async join(channel: ChannelName, client: ClientId, member: MemberInput): Promise<{ first: boolean }> {
    let m = this.local.get(channel);
    if (!m) this.local.set(channel, (m = new Map()));
    m.set(client, member);
    const result = await this.run(channel, 'join', [client, member.user, member.infoJson]);
    this.index([channel]);
    return { first: result === 1 };
  }

  async leave(channel: ChannelName, client: ClientId): Promise<{ user: UserId; last: boolean } | null> {
    this.forget(channel, client);
    const now = this.now();
    const result = await this.run(channel, 'leave', [client], now);
    if (!Array.isArray(result) || !isString(result[0])) return null;
    // Emptied: out of the index now, not at a sweep after its score passes (a channel per conversation would
    // otherwise pile up there faster than sweeps take them out). Unless a join renewed it since: a join after this
    // leave scores the channel later than this node's join or refresh before it could have (the same millisecond
    // as the leave counts as later; a join and leave within one millisecond leave it to a sweep).
    if (result[2] === 1) this.unindex(channel, now + this.ttl - 1);
    return { user: result[0], last: result[1] === 1 };
  }

  async list(channel: ChannelName): Promise<ChannelMember[]> {
    const flat = await this.run(channel, 'list', []);
    const out: ChannelMember[] = [];
    if (!Array.isArray(flat)) return out;
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const [user, infoJson] = [flat[i] as unknown, flat[i + 1] as unknown];
      if (isString(user) && isString(infoJson)) out.push({ user, infoJson });
    }
    return out;
  }

  async count(channel: ChannelName): Promise<number> {
    return Number(await this.run(channel, 'count', []));
  }

  onGone(fn: MemberGoneListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  onBack(fn: MemberBackListener): () => void {
    this.backListeners.add(fn);
    return () => this.backListeners.delete(fn);
  }

  /**
   * Renews every member of this node (the engine's presence tick), about REFRESH_MEMBERS members per round trip
   * as presence does (publishes go out between the slices; every channel's args are built when its slice goes);
   * reports users found gone meanwhile. A refresh still running when the next tick comes is not doubled.
   */
  async refresh(): Promise<void> {
    if (this.refreshing) return;
    this.refreshing = true;
    let failed: { reason: unknown } | undefined;
    try {
      let slice: Array<Promise<unknown>> = [];
      let channels: ChannelName[] = [];
      let members = 0;
      const send = async (): Promise<void> => {
        this.index(channels);
        await Promise.all(slice);
        slice = [];
        channels = [];
        members = 0;
      };
      for (const [channel, m] of this.local) {
        const args: string[] = [];
        for (const [client, member] of m) args.push(client, member.user, member.infoJson);
        if (args.length === 0) continue;
        slice.push(
          this.run(channel, 'refresh', args).then(
            (back) => {
              // A refresh of this channel failed since the last one that answered: it may have run in Redis
              // later (a command that timed out on a stalled connection) and put users back with its answer
              // lost. Its users are announced again (a join of a known member changes nothing for clients).
              if (this.uncertain.delete(channel)) {
                const all: string[] = [];
                for (const member of new Map([...m.values()].map((v) => [v.user, v.infoJson]))) all.push(...member);
                this.back(channel, all);
              } else this.back(channel, back);
            },
            (reason: unknown) => {
              this.uncertain.add(channel);
              failed ??= { reason };
            },
          ),
        );
        channels.push(channel);
        members += m.size;
        if (members >= REFRESH_MEMBERS) await send();
      }
      await send();
    } finally {
      this.refreshing = false;
    }
    if (failed) throw failed.reason;
  }

  /**
   * Runs the script on channels whose members nobody renewed for `ttl` (a dead node's only: a live node's refresh
   * moves its channels' score ahead), so their users are reported gone; takes the emptied ones out of the index.
   * Every node sweeps (each refresh tick); a user is reported once whichever node removes its last entry.
   */
  async sweep(): Promise<void> {
    const now = this.now();
    const index = this.keys.membersIndex;
    for (let round = 0; round < SWEEP_ROUNDS; round++) {
      const due = await this.ctx.call('members sweep', (r) => r.zrangebyscore(index, '-inf', now, 'LIMIT', 0, SWEEP_CHANNELS));
      await Promise.all(
        due.map(async (channel) => {
          if ((await this.count(channel)) === 0) await this.unindexed(channel, now);
          // Members left that expire later (another node's clock ahead): looked at again in a third of the TTL.
          else await this.ctx.call('members sweep', (r) => r.zadd(index, 'GT', now + Math.ceil(this.ttl / 3), channel));
        }),
      );
      if (due.length < SWEEP_CHANNELS) return;
    }
  }

  /** Takes `channel` out of the index unless a join or refresh scored it above `score` (see UNINDEX). */
  private unindexed(channel: ChannelName, score: number): Promise<unknown> {
    return this.ctx.script('members unindex', UNINDEX, [this.keys.membersIndex], [channel, score]);
  }

  /** unindexed, in the background: a failure leaves the channel to a sweep. */
  private unindex(channel: ChannelName, score: number): void {
    this.unindexed(channel, score).catch((err: unknown) => this.logger.debug({ err }, 'redis engine: unindexing members failed'));
  }

  /** Removes every member of this node (a graceful shutdown), reporting the users that left with them. */
  async clear(): Promise<void> {
    const all = [...this.local].flatMap(([channel, m]) => [...m.keys()].map((client) => [channel, client] as const));
    this.local.clear();
    await Promise.allSettled(
      all.map(async ([channel, client]) => {
        const left = await this.leave(channel, client);
        if (left?.last) await this.gone(channel, left.user);
      }),
    );
  }

  /** Scores `channels` in the index with the expiry their join or refresh just gave (see sweep). */
  private index(channels: readonly ChannelName[]): void {
    if (channels.length === 0) return;
    const score = this.now() + this.ttl;
    const args = channels.flatMap((c) => [score, c]);
    this.ctx
      .pipeline('members index', (p) => p.zadd(this.keys.membersIndex, 'GT', ...args))
      .catch((err: unknown) => this.logger.debug({ err }, 'redis engine: indexing members failed'));
  }

  private forget(channel: ChannelName, client: ClientId): void {
    const m = this.local.get(channel);
    m?.delete(client);
    if (m?.size === 0) this.local.delete(channel);
  }

  /** Runs one mode of the script on `channel`; reports the users it found gone; returns the mode's result. */
  private async run(channel: ChannelName, mode: Mode, args: string[], now = this.now()): Promise<unknown> {
    const keys = this.keys.memberKeys(channel);
    const reply = await this.ctx.script(`members ${mode}`, this.script, keys, [mode, now, this.ttl, ...args]);
    if (!Array.isArray(reply) || reply.length < 2 || !Array.isArray(reply[1])) throw new Error('unexpected reply from the members script');
    for (const user of reply[1] as unknown[]) if (isString(user)) void this.gone(channel, user);
    return reply[0];
  }

  /** Reports the users a refresh put back (see MemberBackListener): `[user, info, ...]` from the script. */
  private back(channel: ChannelName, flat: unknown): void {
    if (!Array.isArray(flat)) return;
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const [user, infoJson] = [flat[i] as unknown, flat[i + 1] as unknown];
      if (!isString(user) || !isString(infoJson)) continue;
      for (const fn of [...this.backListeners]) {
        Promise.resolve()
          .then(() => fn(channel, user, infoJson))
          .catch((err: unknown) => this.logger.warn({ err, channel }, 'redis engine: a member-back listener failed'));
      }
    }
  }

  private async gone(channel: ChannelName, user: UserId): Promise<void> {
    for (const fn of [...this.listeners]) {
      try {
        await fn(channel, user);
      } catch (err) {
        this.logger.warn({ err, channel }, 'redis engine: a member-gone listener failed');
      }
    }
  }
}
