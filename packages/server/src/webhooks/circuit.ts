import { retryDelay } from './backoff.js';

/** Failed requests in a row that open an endpoint's circuit. */
export const OPEN_AFTER = 5;
/** Longest an open circuit waits before its next probe (ms): a receiver that is back is found within it. */
export const MAX_OPEN = 30_000;

/** Whether a request to an endpoint may go now: sent (as the one probe of an open circuit or not), or deferred until a time. */
export type Admission = { kind: 'send'; probe: boolean } | { kind: 'defer'; until: number };

/** What a request's outcome changed: the circuit opened (`first`: it was closed; else its probe failed), or closed. */
export type Transition = { kind: 'opened'; first: boolean; until: number; failure: string } | { kind: 'closed'; openedFor: number } | undefined;

interface Circuit {
  /** Failed requests in a row. */
  failures: number;
  /** Times it opened since it last closed (the back-off's attempt). */
  opens: number;
  /** While open: no request until then; then one probe. */
  openUntil: number;
  /** When it first opened (for the log line when it closes). */
  since: number;
  probing: boolean;
  /** The last failure (the reason of a delivery dead-lettered while the circuit is open). */
  failure: string;
}

/**
 * A circuit breaker per webhook endpoint, in this process (docs/webhooks.md, "Held while the receiver is down").
 * Closed, every due delivery is sent. After OPEN_AFTER failed requests in a row it opens: the endpoint's deliveries
 * that come due are deferred (rescheduled without an attempt, no request, no signature; see the dispatcher for
 * when to) until the circuit's back-off ends (1 s doubling up to 30 s, or the format's longest retry delay when
 * shorter, half of it random); then one request goes as a probe while the others wait for its answer: a 2xx closes
 * the circuit, anything else opens it again for the next back-off. So a receiver that is down costs a request per
 * back-off instead of one per delivery, and one coming back is not hit by the whole queue before it answered once.
 */
export class Circuits {
  private readonly circuits = new Map<string, Circuit>();

  constructor(
    private readonly random: () => number,
    /** How long the other deliveries wait for a probe's answer (a request's timeout). */
    private readonly probeWait: number,
  ) {}

  admit(endpoint: string, now: number): Admission {
    const c = this.circuits.get(endpoint);
    if (c === undefined || c.failures < OPEN_AFTER) return { kind: 'send', probe: false };
    if (now < c.openUntil) return { kind: 'defer', until: c.openUntil };
    if (c.probing) return { kind: 'defer', until: now + this.probeWait };
    c.probing = true;
    return { kind: 'send', probe: true };
  }

  /** A request answered 2xx: the circuit closes. */
  succeeded(endpoint: string, now: number): Transition {
    const c = this.circuits.get(endpoint);
    if (c === undefined) return undefined;
    this.circuits.delete(endpoint);
    return c.failures >= OPEN_AFTER ? { kind: 'closed', openedFor: now - c.since } : undefined;
  }

  /**
   * A request failed (`failure`: why; `probe`: it went as the circuit's probe); `maxDelay` caps the back-off (the
   * format's longest retry delay).
   */
  failed(endpoint: string, now: number, maxDelay: number, probe: boolean, failure: string): Transition {
    let c = this.circuits.get(endpoint);
    if (c === undefined) {
      // A probe whose circuit a success closed meanwhile starts a new count like any failure.
      c = { failures: 0, opens: 0, openUntil: 0, since: now, probing: false, failure };
      this.circuits.set(endpoint, c);
    }
    c.failures += 1;
    c.failure = failure;
    // Opens on the OPEN_AFTERth failure in a row, and again when its probe fails; requests that were in flight
    // when it opened change nothing.
    const probeFailed = probe && c.probing;
    if (!(probeFailed || c.failures === OPEN_AFTER)) return undefined;
    const first = c.opens === 0;
    if (first) c.since = now;
    c.probing = false;
    c.openUntil = now + retryDelay(c.opens, Math.min(maxDelay, MAX_OPEN), this.random);
    c.opens += 1;
    return { kind: 'opened', first, until: c.openUntil, failure };
  }

  /** Every open circuit probes at its next chance (an operator replayed dead letters: the receiver should be back). */
  probeNow(): void {
    for (const c of this.circuits.values()) if (c.failures >= OPEN_AFTER && !c.probing) c.openUntil = 0;
  }

  /** The last failure of an open circuit's endpoint. */
  failure(endpoint: string): string {
    return this.circuits.get(endpoint)?.failure ?? 'circuit open';
  }

  /** Whether the circuit of `endpoint` is open (or probing). */
  isOpen(endpoint: string): boolean {
    return (this.circuits.get(endpoint)?.failures ?? 0) >= OPEN_AFTER;
  }
}
