import type { LeaderBody, LeaderMessage, TabId, TabMessage } from './tab-messages.js';
import type { Clock } from './types.js';

/** Where a tab stands: not taking part, following a leader (queued for the lock), or leading. */
export type Role = 'idle' | 'follower' | 'leader';

/** The election's I/O (the Web Lock and the BroadcastChannel) and its owner's reactions. */
export interface ElectionPort {
  /** Queues for the lock or, with `steal`, takes it from its holder; replaces any earlier request. Answered by `granted()` or `lost()`. */
  acquire(steal: boolean): void;
  /** Releases the lock or withdraws the request. */
  release(): void;
  /** Asks whether this tab still holds the lock; answered by `verified()`. */
  verify(): void;
  /** Posts on the channel (the leader's messages reach its own tab too). */
  post(m: LeaderMessage | TabMessage): void;
  /** This tab became the leader: open the shared connection. */
  lead(): void;
  /** This tab follows another leader (`leader`, when known) or stepped down: drop any connection, join the leader. */
  follow(): void;
}

/**
 * Which tab holds the shared connection: a pure state machine over an injected clock; the Web Lock and the
 * BroadcastChannel are behind {@link ElectionPort}.
 *
 * Every tab queues for one Web Lock; the tab holding it leads and posts a beat every `timeout / 4`. A leader
 * that closes or crashes releases the lock and the next tab in the queue leads. A frozen leader keeps its
 * lock, so a follower that has heard nothing from it for `timeout / 2` posts a probe, and after `timeout`
 * takes the lock with `steal`. The probe is answered from a timer, never from the message handler: Chromium
 * runs BroadcastChannel handlers in a frozen page, but not its timers.
 *
 * Leaders are ordered by term (a timestamp, higher than any term seen before), then id; a message from an
 * older leader is ignored, and a leader that hears a newer one steps down.
 *
 * A woken leader must not act on a lock it lost while frozen; the rejection of its lock request may come after
 * its timers have run. So a leader that has not posted for `timeout / 2` (it was frozen, or its page stalled)
 * holds back what it posts and asks the lock manager first: still the holder, it carries on; otherwise it steps
 * down without having posted anything.
 */
export class Election {
  /** Where this tab stands. */
  role: Role = 'idle';
  /** The leader this tab follows (itself while leading); undefined while unknown. */
  leader: TabId | undefined;
  /** The term of `leader` (the highest seen while it is unknown). */
  term = 0;
  private _heard = 0;
  private _probed = false;
  private _stealing = false;
  private _timer: unknown;
  /** Leader: when it last posted, which is when the followers last knew it was running. */
  private _alive = 0;
  /** Leader: posts held back until `verified()`. */
  private _held: LeaderMessage[] | undefined;

  constructor(
    /** This tab. */
    readonly id: TabId,
    private readonly _clock: Clock,
    private readonly _timeout: number,
    private readonly _port: ElectionPort,
  ) {}

  /** Takes part: queues for the lock and listens for a leader. */
  start(): void {
    if (this.role === 'idle') this._follow(undefined);
  }

  /** Stops taking part: releases the lock (or the place in the queue). */
  stop(): void {
    this.role = 'idle';
    this.leader = this._held = undefined;
    this._clock.clearTimeout(this._timer);
    this._port.release();
  }

  /** The lock was granted. */
  granted(): void {
    if (this.role !== 'follower') return;
    const now = this._clock.now();
    this.role = 'leader';
    this.leader = this.id;
    this.term = Math.max(this.term + 1, now);
    this._alive = now;
    this._held = undefined;
    this._port.lead();
    this._tick();
  }

  /** The lock was taken from this tab (stolen). */
  lost(): void {
    if (this.role === 'leader') this._follow(undefined);
  }

  /**
   * A message from a leader: returns true when it comes from the leader this tab follows (possibly a new one,
   * announced through `follow()` first), false for a message to ignore.
   */
  heard(from: TabId, term: number): boolean {
    if (this.role === 'idle' || from === this.id) return false;
    const newer = term > this.term || (term === this.term && from > (this.leader ?? ''));
    if (from !== this.leader || term !== this.term) {
      if (!newer) return false;
      this.term = term;
      this._follow(from);
    }
    this._heard = this._clock.now();
    this._probed = this._stealing = false;
    return true;
  }

  /** A follower probed: answer with a beat, from a timer (see the class comment). */
  probed(): void {
    if (this.role === 'leader') this._schedule(0);
  }

  /** Posts as the leader, stamped with its id and term; dropped when this tab does not lead. */
  send(body: LeaderBody): void {
    if (this.role !== 'leader') return;
    const m: LeaderMessage = { ...body, from: this.id, term: this.term };
    if (this._held) {
      this._held.push(m);
      return;
    }
    const now = this._clock.now();
    if (now - this._alive > this._timeout / 2) {
      this._held = [m];
      this._port.verify();
      return;
    }
    this._alive = now;
    this._port.post(m);
  }

  /** The answer to `verify()`. */
  verified(holder: boolean): void {
    const held = this._held;
    this._held = undefined;
    if (this.role !== 'leader' || !held) return;
    if (!holder) return this._follow(undefined);
    this._alive = this._clock.now();
    for (const m of held) this._port.post(m);
  }

  private _follow(leader: TabId | undefined): void {
    const was = this.role;
    this.role = 'follower';
    this.leader = leader;
    this._held = undefined;
    this._heard = this._clock.now();
    this._probed = this._stealing = false;
    this._port.follow();
    // A leader stepping down lets go of the lock (if it still has it) and queues again, behind the tabs
    // already waiting; a follower keeps its place.
    if (was === 'leader') this._port.release();
    if (was !== 'follower') this._port.acquire(false);
    this._schedule(this._timeout / 4);
  }

  private _schedule(ms: number): void {
    this._clock.clearTimeout(this._timer);
    this._timer = this._clock.setTimeout(() => this._tick(), ms);
  }

  private _tick(): void {
    if (this.role === 'leader') {
      this.send({ t: 'beat' });
    } else if (this.role === 'follower') {
      const silent = this._clock.now() - this._heard;
      if (silent >= this._timeout && !this._stealing) {
        this._stealing = true;
        this._port.acquire(true);
      } else if (silent >= this._timeout / 2 && !this._probed) {
        this._probed = true;
        this._port.post({ t: 'probe', from: this.id });
      }
    } else {
      return;
    }
    this._schedule(this._timeout / 4);
  }
}
