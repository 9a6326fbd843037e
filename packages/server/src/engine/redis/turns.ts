/** Batching by event-loop turn on the engine's Redis connections: the one-batch-out gate, and a subscriber's SUBSCRIBEs. */
import type { Clock, TimerHandle } from '../../util/clock.js';

/**
 * One round trip at a time for a batcher that sends an event-loop turn's calls together (RedisContext's turn calls,
 * a subscriber's SUBSCRIBEs): while a batch it sent is not answered yet, the calls of the turns that follow are held
 * and go out together once it is. Under load a round trip then carries the calls of every turn that ran meanwhile,
 * not one turn's each: Redis spends tens of µs of CPU per round trip it wakes up for (about 55 on the bench machine,
 * a VM) against about 2 per command of a batch, and the gateway a write and a read each. An idle gateway waits for
 * nothing (nothing is out), and held calls wait `maxHold` at most. Not for publishes (PublishBatch): a held publish
 * waits for two of Redis' turns, which on a busy machine showed in their p99 (docs/redis.md).
 */
export class TurnGate {
  private outstanding = 0;
  private held = false;
  /** Numbers the holds: a hold's timer releases that hold only. */
  private holds = 0;
  private timer: TimerHandle | undefined;

  /**
   * `maxHold`: how long held calls wait for the batch out at most (ms). A round trip takes far less under load; one
   * that takes longer (a stalled Redis, waiting for its commandTimeout) does not hold the next calls as well: they go
   * then, as they would without the gate, and each fails or is answered within its own commandTimeout.
   */
  constructor(
    private readonly send: () => void,
    private readonly clock: Clock,
    private readonly maxHold = TURN_GATE_MAX_HOLD,
  ) {}

  /** A batch was started: sent at the end of this turn, or once the batches out are answered (`maxHold` at most). */
  request(): void {
    if (this.outstanding === 0) {
      setImmediate(this.send);
      return;
    }
    if (this.held) return;
    this.held = true;
    const hold = ++this.holds;
    // Checked after the poll phase (setImmediate), not in the timers phase that comes before it: after a long
    // event-loop iteration the answer is often read already, just not yet handled.
    this.timer = this.clock.setTimeout(() => setImmediate(() => this.holds === hold && this.release()), this.maxHold);
  }

  /** Counts `sent` (a batch written to Redis) as out until it settles; returns it. */
  track<T>(sent: Promise<T>): Promise<T> {
    this.outstanding += 1;
    void sent.then(this.landed, this.landed);
    return sent;
  }

  private readonly landed = (): void => {
    this.outstanding -= 1;
    if (this.outstanding === 0) this.release();
  };

  /**
   * Forgets what is held, without sending it: the batcher rejects its queued calls itself (a closed engine answers
   * them at once, not when the batch out lands or the hold runs out).
   */
  close(): void {
    this.held = false;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private readonly release = (): void => {
    if (!this.held) return;
    this.held = false;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    // At the next turn, not now: the continuations of the answers (microtasks) add their own calls first.
    setImmediate(this.send);
  };
}

/**
 * How long TurnGate holds calls for a batch out at most (ms): far beyond a round trip, even one whose answer an
 * overloaded event loop reads late (200 connects at a time on the 2-core bench machine: no hold ran out), and well
 * below a commandTimeout.
 */
export const TURN_GATE_MAX_HOLD = 250;

/** What TurnSubscriber uses of a subscriber connection (an ioredis client). */
interface SubscriberConnection {
  subscribe(...channels: string[]): Promise<unknown>;
  unsubscribe(...channels: string[]): Promise<unknown>;
}

/** A SUBSCRIBE or UNSUBSCRIBE call waiting for the end of its turn. */
interface QueuedSubscription {
  kind: 'subscribe' | 'unsubscribe';
  pubs: readonly string[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * SUBSCRIBE and UNSUBSCRIBE on a subscriber connection, gathered per event-loop turn: the channels of every
 * connection that connected in one turn (its user channel, its inbox, its `subs`) go out as one
 * `SUBSCRIBE a b c`, not one command and one write each. Kept in order: a run of subscribes, then a run of
 * unsubscribes, and so on, all written in the same turn. (Not for sharded pub/sub: each SSUBSCRIBE may go to
 * another shard.)
 */
export class TurnSubscriber {
  private static readonly bySub = new WeakMap<SubscriberConnection, TurnSubscriber>();
  private queued: QueuedSubscription[] | undefined;
  private readonly gate: TurnGate;

  private constructor(
    private readonly sub: SubscriberConnection,
    clock: Clock,
  ) {
    this.gate = new TurnGate(() => this.flush(), clock);
  }

  /** The one batcher of a subscriber connection (`clock`: for the first call, which makes it). */
  static of(sub: SubscriberConnection, clock: Clock): TurnSubscriber {
    let t = TurnSubscriber.bySub.get(sub);
    if (!t) TurnSubscriber.bySub.set(sub, (t = new TurnSubscriber(sub, clock)));
    return t;
  }

  /** Subscribes or unsubscribes `pubs` at the end of this turn; settles once Redis confirmed every one. */
  run(kind: 'subscribe' | 'unsubscribe', pubs: readonly string[]): Promise<void> {
    if (pubs.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      if (!this.queued) {
        this.queued = [];
        this.gate.request();
      }
      this.queued.push({ kind, pubs, resolve, reject });
    });
  }

  private readonly flush = (): void => {
    const calls = this.queued ?? [];
    this.queued = undefined;
    for (let i = 0; i < calls.length;) {
      const kind = (calls[i] as QueuedSubscription).kind;
      let j = i;
      const pubs: string[] = [];
      for (; j < calls.length && (calls[j] as QueuedSubscription).kind === kind; j++) for (const pub of (calls[j] as QueuedSubscription).pubs) pubs.push(pub);
      const run = calls.slice(i, j);
      const sent = this.gate.track(kind === 'subscribe' ? this.sub.subscribe(...pubs) : this.sub.unsubscribe(...pubs));
      sent.then(
        () => run.forEach((o) => o.resolve()),
        (err: unknown) => run.forEach((o) => o.reject(err)),
      );
      i = j;
    }
  };
}
