import type { SubscribeRecovery, SubscriptionResult } from '@herald/protocol';

/** What to do with a sequenced message. */
export type Verdict = 'deliver' | 'duplicate' | 'gap' | 'wait';

/** What a `subscribed` answer meant for the channel's position. */
export type SubscribedOutcome = 'fresh' | 'recovered' | 'epoch_changed' | 'history_lost';

/**
 * One channel's position: the last delivered seq and its epoch. Pure state, no I/O, so that
 * exactly-once, in-order delivery can be reasoned about (and tested) on its own.
 *
 * Invariants: a message is delivered only while `ready` (after `subscribed` on the current connection)
 * and only when its seq is exactly `seq + 1`; the position moves before the app sees the message.
 */
export class Sequencer {
  /** Last delivered seq; undefined until the first `subscribed` (or a `since` given by the app). */
  seq: number | undefined;
  /** Epoch of `seq`. */
  epoch: string | undefined;
  /** True between `subscribed` and the next connection loss or gap. */
  ready = false;

  constructor(since?: number, epoch?: string) {
    this.seq = since;
    this.epoch = since === undefined ? undefined : epoch;
  }

  /** The `since`/`epoch` to send when (re)subscribing. */
  recovery(): SubscribeRecovery {
    const r: SubscribeRecovery = {};
    if (this.seq !== undefined) r.since = this.seq;
    if (this.seq !== undefined && this.epoch !== undefined) r.epoch = this.epoch;
    return r;
  }

  /** Applies a `subscribed` answer (or an entry of `connected.subs`). */
  subscribed(r: SubscriptionResult): SubscribedOutcome {
    const { seq, epoch } = this;
    this.ready = true;
    this.epoch = r.epoch;
    if (seq === undefined) {
      this.seq = r.seq;
      return 'fresh';
    }
    // Position 0 holds nothing another epoch could contradict: every message after 0 is wanted, whatever the
    // epoch (a channel's first publish starts its first real epoch; see EMPTY_EPOCH).
    if (seq === 0 && r.recovered) return 'recovered';
    if (seq === 0 && r.seq === 0) return 'fresh';
    if (epoch !== undefined && epoch !== r.epoch) {
      this.seq = r.seq;
      return 'epoch_changed';
    }
    // A server at a lower seq than we have already delivered cannot be continuing our history.
    if (!r.recovered || r.seq < seq) {
      this.seq = r.seq;
      return 'history_lost';
    }
    // Recovered: the messages after `seq` up to `r.seq` follow, oldest first.
    return 'recovered';
  }

  /** Decides about a sequenced message (seq >= 1) and, when delivering, moves the position first. */
  accept(seq: number): Verdict {
    if (!this.ready || this.seq === undefined) return 'wait';
    if (seq <= this.seq) return 'duplicate';
    if (seq > this.seq + 1) {
      // Stop delivering until a resubscribe with since = this.seq has replayed the missing messages.
      this.ready = false;
      return 'gap';
    }
    this.seq = seq;
    return 'deliver';
  }
}
