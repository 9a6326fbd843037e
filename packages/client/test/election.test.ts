// The leader election on its own: a fake clock and a port that records what the election asks of the Web
// Lock and the BroadcastChannel. No sleeps.
import { describe, expect, it } from 'vitest';
import { Election, type ElectionPort } from '../src/election.js';
import type { LeaderMessage, TabMessage } from '../src/tab-messages.js';
import type { Clock } from '../src/types.js';

/** A clock whose timers fire in advance(); jump() moves time without firing them (a frozen page). */
class TestClock implements Clock {
  t = 0;
  private n = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    this.timers.set(++this.n, { at: this.t + ms, fn });
    return this.n;
  }
  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  jump(ms: number): void {
    this.t += ms;
  }
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const next = [...this.timers].filter(([, x]) => x.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
    }
    this.t = end;
  }
}

function setup(timeout = 1000) {
  const clock = new TestClock();
  const calls: string[] = [];
  const posts: Array<LeaderMessage | TabMessage> = [];
  const port: ElectionPort = {
    acquire: (steal) => calls.push(steal ? 'steal' : 'acquire'),
    release: () => calls.push('release'),
    verify: () => calls.push('verify'),
    post: (m) => posts.push(m),
    lead: () => calls.push('lead'),
    follow: () => calls.push(`follow ${el.leader ?? '-'}`),
  };
  const el = new Election('me', clock, timeout, port);
  const types = (): string[] => posts.map((p) => p.t);
  return { clock, calls, posts, el, types };
}

/** An elected leader at time 0. */
function leader() {
  const h = setup();
  h.el.start();
  h.el.granted();
  h.calls.length = 0;
  h.posts.length = 0;
  return h;
}

describe('Election', () => {
  it('queues for the lock; once granted it leads with a new term and beats every quarter of the timeout', () => {
    const { el, calls, posts, clock, types } = setup();
    clock.jump(5000);
    el.start();
    expect(calls).toEqual(['follow -', 'acquire']);
    expect(el.role).toBe('follower');
    el.granted();
    expect(el.role).toBe('leader');
    expect(el.term).toBe(5000);
    expect(calls).toEqual(['follow -', 'acquire', 'lead']);
    expect(posts).toEqual([{ t: 'beat', from: 'me', term: 5000 }]);
    clock.advance(1000);
    expect(types()).toEqual(['beat', 'beat', 'beat', 'beat', 'beat']);
    el.granted(); // a second grant changes nothing: elected once
    expect(calls.filter((c) => c === 'lead')).toHaveLength(1);
  });

  it('follows the leader it hears, probes after half the timeout of silence and steals the lock after the whole timeout', () => {
    const { el, calls, clock, posts } = setup();
    el.start();
    expect(el.heard('L', 7)).toBe(true);
    expect(calls).toEqual(['follow -', 'acquire', 'follow L']);
    clock.advance(400);
    expect(el.heard('L', 7)).toBe(true); // alive: the silence starts again
    clock.advance(499);
    expect(posts).toEqual([]);
    clock.advance(300);
    expect(posts).toEqual([{ t: 'probe', from: 'me' }]);
    clock.advance(500);
    expect(calls.at(-1)).toBe('steal');
    clock.advance(5000);
    expect(calls.filter((c) => c === 'steal')).toHaveLength(1);
    el.granted();
    expect(el.role).toBe('leader');
    expect(el.term).toBeGreaterThan(7);
  });

  it('ignores an older leader, and a leader steps down for a newer one (term, then id, decides)', () => {
    const { el, calls } = setup();
    el.start();
    expect(el.heard('L', 7)).toBe(true);
    expect(el.heard('K', 6)).toBe(false);
    expect(el.heard('A', 7)).toBe(false); // same term, smaller id
    expect(el.heard('Z', 7)).toBe(true); // same term, larger id
    expect(el.leader).toBe('Z');
    expect(el.heard('me', 99)).toBe(false); // its own echo

    const l = leader();
    expect(l.el.heard('old', l.el.term - 1)).toBe(false);
    expect(l.el.role).toBe('leader');
    expect(l.el.heard('new', l.el.term + 1)).toBe(true);
    expect(l.el.role).toBe('follower');
    expect(l.el.leader).toBe('new');
    expect(l.calls).toEqual(['follow new', 'release', 'acquire']);
    l.el.send({ t: 'beat' });
    l.clock.advance(1000);
    expect(l.posts.filter((p) => 'term' in p)).toEqual([]);
    expect(calls).not.toContain('release');
  });

  it('answers a probe from a timer, never from the message handler (a frozen page runs only the latter)', () => {
    const { el, posts, clock } = leader();
    clock.advance(100);
    el.probed();
    expect(posts).toEqual([]);
    clock.advance(0);
    expect(posts).toEqual([{ t: 'beat', from: 'me', term: el.term }]);
  });

  it('steps down when its lock is stolen, and queues again', () => {
    const { el, calls, posts, clock } = leader();
    el.lost();
    expect(el.role).toBe('follower');
    expect(calls).toEqual(['follow -', 'release', 'acquire']);
    clock.advance(1000);
    expect(posts.map((p) => p.t)).toEqual(['probe']);
  });

  it('after a gap (frozen, stalled), checks it still holds the lock before posting: stolen, it steps down having posted nothing', () => {
    const { el, calls, posts, clock } = leader();
    clock.advance(250);
    expect(posts).toHaveLength(1);
    clock.jump(5000); // frozen: no timer ran
    el.send({ t: 'frame', f: { kind: 'message', frame: { type: 'x', channel: 'c', payload: {}, seq: 1 } } });
    clock.advance(0); // the overdue beat
    expect(calls).toEqual(['verify']);
    expect(posts).toHaveLength(1);
    el.verified(false);
    expect(el.role).toBe('follower');
    expect(calls).toEqual(['verify', 'follow -', 'release', 'acquire']);
    clock.advance(1000);
    // Nothing as leader: only the first beat, then a follower's probe.
    expect(posts.map((p) => p.t)).toEqual(['beat', 'probe']);
  });

  it('after a gap, carries on when the lock is still its own, posting what it held back in order', () => {
    const { el, calls, clock, types } = leader();
    clock.jump(800);
    el.send({ t: 'token', token: 'T' });
    el.send({ t: 'beat' });
    expect(types()).toEqual([]);
    el.verified(true);
    expect(types()).toEqual(['token', 'beat']);
    el.send({ t: 'beat' });
    expect(types()).toEqual(['token', 'beat', 'beat']);
    expect(calls).toEqual(['verify']);
    // A late answer to an older check changes nothing.
    el.verified(false);
    expect(el.role).toBe('leader');
  });

  it('stop() releases the lock and ends every timer', () => {
    const { el, calls, posts, clock } = leader();
    el.stop();
    expect(el.role).toBe('idle');
    expect(calls).toEqual(['release']);
    clock.advance(5000);
    expect(posts).toEqual([]);
    expect(el.heard('L', 1e15)).toBe(false);
  });
});
