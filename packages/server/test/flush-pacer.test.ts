import { describe, expect, it } from 'vitest';
import { FlushPacer, MAX_FLUSH_DELAY_MS, type PacerTimers } from '../src/delivery/flush-pacer.js';

/** Manual time and a record of what the pacer scheduled; `fire` runs the pending flush. */
function harness(flushMs: () => number) {
  let t = 1000;
  let pending: { fn: () => void; wait: number | 'immediate' } | undefined;
  const timers: PacerTimers = {
    now: () => t,
    immediate: (fn) => void (pending = { fn, wait: 'immediate' }),
    after: (fn, ms) => void (pending = { fn, wait: ms }),
  };
  let flushes = 0;
  const pacer = new FlushPacer(() => {
    flushes++;
    t += flushMs();
  }, timers);
  return {
    pacer,
    advance: (ms: number) => void (t += ms),
    /** What the last request scheduled. */
    scheduled: () => pending?.wait,
    fire: () => {
      const p = pending;
      pending = undefined;
      if (p && p.wait !== 'immediate') t += p.wait;
      p?.fn();
    },
    flushes: () => flushes,
  };
}

describe('flush pacing', () => {
  it('flushes at the end of the turn while flushes are quick', () => {
    const h = harness(() => 0.2);
    for (let i = 0; i < 3; i++) {
      h.pacer.request();
      h.pacer.request(); // one flush per turn, however many connections queued
      expect(h.scheduled()).toBe('immediate');
      h.fire();
    }
    expect(h.flushes()).toBe(3);
  });

  it('flushNow runs a requested flush inside the turn; the one scheduled then does nothing', () => {
    const h = harness(() => 0.2);
    expect(h.pacer.flushNow()).toBe(false); // nothing requested
    h.pacer.request();
    expect(h.pacer.flushNow()).toBe(true);
    expect(h.flushes()).toBe(1);
    expect(h.pacer.flushNow()).toBe(false); // nothing new
    h.fire(); // the end of the turn: already done
    expect(h.flushes()).toBe(1);
    h.pacer.request();
    expect(h.scheduled()).toBe('immediate');
    h.fire();
    expect(h.flushes()).toBe(2);
  });

  it('flushNow does not flush while the pacer holds a gap after a long flush', () => {
    const h = harness(() => 3);
    h.pacer.request();
    h.fire(); // took 3 ms: the next waits
    h.pacer.request();
    expect(h.pacer.flushNow()).toBe(false);
    expect(h.flushes()).toBe(1);
    h.fire();
    expect(h.flushes()).toBe(2);
  });

  it('after a long flush, waits out a gap as long as the flush (at most MAX_FLUSH_DELAY_MS) before the next', () => {
    const h = harness(() => 3);
    h.pacer.request();
    h.fire(); // took 3 ms
    h.advance(1);
    h.pacer.request();
    expect(h.scheduled()).toBe(2); // 3 ms after the last flush ended, 1 ms of which has passed

    const slow = harness(() => 40);
    slow.pacer.request();
    slow.fire();
    slow.pacer.request();
    expect(slow.scheduled()).toBe(MAX_FLUSH_DELAY_MS);
  });

  it('does not delay a message that arrives after the gap has passed (a quiet channel pays no wait)', () => {
    const h = harness(() => 3);
    h.pacer.request();
    h.fire();
    h.advance(3);
    h.pacer.request();
    expect(h.scheduled()).toBe('immediate');
    h.fire();
    h.advance(250);
    h.pacer.request();
    expect(h.scheduled()).toBe('immediate');
  });
});
