/**
 * The webhook dispatcher with a receiver that is down, on the memory outbox: its log lines about given-up deliveries
 * go through a token bucket, its queue gauges are measured while a pass is still under way, and the endpoint's
 * circuit breaker sends one probe per back-off instead of every due delivery.
 */
import { describe, expect, it } from 'vitest';
import { MemoryOutbox } from '../src/engine/memory/outbox.js';
import { Circuits, type Transition } from '../src/webhooks/circuit.js';
import { WebhookDispatcher, type WebhookSender } from '../src/webhooks/dispatcher.js';
import { standardFormat } from '../src/webhooks/standard.js';
import { WebhookStats } from '../src/webhooks/stats.js';
import type { WebhookEndpoint } from '../src/webhooks/types.js';
import { capturingLogger, ManualClock } from './helpers.js';

const endpoint: WebhookEndpoint = {
  name: 'app',
  url: 'http://127.0.0.1:9/hook',
  secret: `whsec_${Buffer.from('a-secret-of-32-bytes-for-testing!').toString('base64')}`,
  format: 'standard',
  retryFor: 1,
  batch: 1,
  events: [],
  channels: [],
};

function dispatcher(send: WebhookSender, ep: WebhookEndpoint = endpoint) {
  const clock = new ManualClock();
  const { logger, entries } = capturingLogger('info');
  const outbox = new MemoryOutbox(() => clock.now());
  const stats = new WebhookStats();
  const d = new WebhookDispatcher({
    outbox,
    endpoints: [ep],
    formats: new Map([['standard', standardFormat]]),
    stats,
    clock,
    logger,
    timeout: 1000,
    send,
  });
  const events = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `evt_${i}`, type: 'user.online', time: 0, data: { user: String(i) } }));
  return { clock, entries, outbox, stats, d, events };
}

describe('webhook dispatcher, receiver down', () => {
  it('logs given-up deliveries through a token bucket: a burst of lines, then one line counting the rest', async () => {
    // Refused at once, as a closed port is; each job's first retry would come after its retryFor (1 ms), so each dies.
    let sent = 0;
    const { entries, stats, d, events, outbox } = dispatcher(() => {
      sent += 1;
      return Promise.reject(new Error('connect ECONNREFUSED'));
    });
    await d.queue(events(500));
    await d.kick();
    expect(stats.dead.get('app')).toBe(500);
    // Once the circuit opened, the rest died untried (their wait would pass retryFor): attempts as they were.
    const letters = await outbox.deadLetters(1000);
    expect(letters.filter((l) => l.attempt === 1)).toHaveLength(sent);
    expect(letters.filter((l) => l.attempt === 0)).toHaveLength(500 - sent);
    expect(letters.every((l) => l.reason === 'connect ECONNREFUSED')).toBe(true);
    expect(sent).toBeLessThan(20);
    const given = entries.filter((e) => e['msg'] === 'webhooks: delivery given up; dead-lettered');
    expect(given.length).toBeGreaterThan(0);
    expect(given.length).toBeLessThanOrEqual(20);
    await d.stop();
    const suppressed = entries.find((e) => e['kind'] === 'webhook_dead:app');
    expect(suppressed).toMatchObject({ suppressed: 500 - given.length });
  });

  it('measures the queue for the metrics while a pass is still under way', async () => {
    // A receiver that never answers, and a request timeout that never fires on the manual clock: the pass stays in
    // its first batch.
    const { clock, stats, d, events } = dispatcher(() => new Promise(() => undefined));
    await d.queue(events(100));
    d.start();
    // The start's pass has fanned the events out (synchronous on the memory outbox) and is waiting on its requests.
    await new Promise((r) => setImmediate(r));
    expect(stats.queued).toBe(0);
    clock.advance(5000);
    await new Promise((r) => setImmediate(r));
    expect(stats.queued).toBe(100);
  });

  it('sends a receiver that is down one probe per back-off, not every due delivery; all go, once each, when it answers again', async () => {
    let up = false;
    let requests = 0;
    const delivered: string[] = [];
    const hourly: WebhookEndpoint = { ...endpoint, retryFor: 3_600_000 };
    const { clock, entries, stats, d, events } = dispatcher((_url, req) => {
      requests += 1;
      if (!up) return Promise.reject(new Error('connect ECONNREFUSED'));
      delivered.push((JSON.parse(req.body) as { data: { user: string } }).data.user);
      return Promise.resolve(204);
    }, hourly);
    await d.queue(events(200));
    await d.kick();
    // The requests in flight when the circuit opened (a pass sends a few at once), then none: the rest wait, untried.
    const first = requests;
    expect(first).toBeGreaterThanOrEqual(5);
    expect(first).toBeLessThan(20);
    expect(stats.deferred.get('app')).toBe(200 - first);
    expect(stats.open.has('app')).toBe(true);
    expect(entries.filter((e) => e['msg'] === 'webhooks: endpoint failing; its deliveries wait (one probe request per back-off)')).toHaveLength(1);

    // Ten minutes down, passes every half second: one probe per back-off (1 s doubling to 30 s, half of it random),
    // 20-45 in all, where each delivery retried on its own (1 s doubling to 10 minutes) would be about 2000 requests.
    for (let t = 0; t < 1200; t++) {
      clock.advance(500);
      await d.kick();
    }
    const probes = requests - first;
    expect(probes).toBeGreaterThanOrEqual(20);
    expect(probes).toBeLessThanOrEqual(45);
    expect(stats.dead.get('app') ?? 0).toBe(0);
    // Each deferred delivery backs off as a failed one would (1 s doubling to 10 min): about ten deferrals each in
    // ten minutes, not one per probe (every 15-30 s, about 27 each: a backlog claimed and settled again and again).
    expect(stats.deferred.get('app')).toBeLessThanOrEqual(200 * 13);
    expect(stats.failed.get('app')).toBe(requests);

    // Back: found by the next probe (within 30 s), and what the circuit put off is released: all of it goes then,
    // not as each one's back-off (up to 10 minutes by now) would let it.
    up = true;
    const back = clock.now();
    for (let t = 0; t < 2400 && delivered.length < 200; t++) {
      clock.advance(500);
      await d.kick();
    }
    expect(delivered.sort()).toEqual(
      events(200)
        .map((e) => e.data.user)
        .sort(),
    );
    expect(clock.now() - back).toBeLessThanOrEqual(30_000 + 5000);
    expect(stats.open.has('app')).toBe(false);
    expect(stats.sent.get('app')).toBe(200);
    expect(entries.filter((e) => e['msg'] === 'webhooks: endpoint answers again; sending its deliveries')).toHaveLength(1);
  });
});

describe('webhook dispatcher, restarted during an outage', () => {
  it('releases what an earlier process deferred once one of those deliveries goes through, not as each back-off ends', async () => {
    const clock = new ManualClock();
    const { logger } = capturingLogger();
    const outbox = new MemoryOutbox(() => clock.now());
    const hourly: WebhookEndpoint = { ...endpoint, retryFor: 3_600_000 };
    let up = false;
    const delivered: string[] = [];
    const send: WebhookSender = (_url, req) => {
      if (!up) return Promise.reject(new Error('connect ECONNREFUSED'));
      delivered.push((JSON.parse(req.body) as { data: { user: string } }).data.user);
      return Promise.resolve(204);
    };
    const make = () =>
      new WebhookDispatcher({
        outbox,
        endpoints: [hourly],
        formats: new Map([['standard', standardFormat]]),
        stats: new WebhookStats(),
        clock,
        logger,
        timeout: 1000,
        send,
      });
    const first = make();
    await first.queue(Array.from({ length: 100 }, (_, i) => ({ id: `evt_${i}`, type: 'user.online', time: 0, data: { user: String(i) } })));
    // Down for ten minutes: the deferred deliveries back off to minutes apart.
    for (let t = 0; t < 1200; t++) {
      clock.advance(500);
      await first.kick();
    }
    await first.stop();
    // A new process, with a closed circuit, while the receiver is back: the first deferred delivery that comes due
    // and goes through releases the rest, which go within a few passes.
    up = true;
    const second = make();
    let waited = 0;
    while (delivered.length === 0) {
      clock.advance(500);
      waited += 500;
      await second.kick();
    }
    const sinceFirst = clock.now();
    for (let t = 0; t < 20 && delivered.length < 100; t++) {
      clock.advance(500);
      await second.kick();
    }
    expect(new Set(delivered).size).toBe(100);
    expect(clock.now() - sinceFirst).toBeLessThanOrEqual(10_000);
    expect(waited).toBeLessThanOrEqual(600_000);
  });
});

describe('webhook circuit', () => {
  it('opens after 5 failures in a row, lets one probe through once its back-off ends, and closes on a success', () => {
    const c = new Circuits(() => 0.5, 1000);
    for (let i = 0; i < 4; i++) expect(c.failed('e', 0, 600_000, false, 'status 503')).toBeUndefined();
    expect(c.admit('e', 0)).toEqual({ kind: 'send', probe: false });
    const opened = c.failed('e', 0, 600_000, false, 'status 503');
    expect(opened).toMatchObject({ kind: 'opened', first: true, failure: 'status 503' });
    const until = (opened as { until: number }).until;
    expect(c.isOpen('e')).toBe(true);
    expect(c.admit('e', until - 1)).toEqual({ kind: 'defer', until });
    expect(c.admit('e', until)).toEqual({ kind: 'send', probe: true });
    // One probe at a time: the others wait for its answer.
    expect(c.admit('e', until)).toEqual({ kind: 'defer', until: until + 1000 });
    expect(c.failed('e', until, 600_000, true, 'timeout')).toMatchObject({ kind: 'opened', first: false, failure: 'timeout' });
    expect(c.failure('e')).toBe('timeout');
    expect(c.succeeded('e', until + 5000)).toEqual({ kind: 'closed', openedFor: until + 5000 });
    expect(c.isOpen('e')).toBe(false);
    expect(c.admit('e', until + 5000)).toEqual({ kind: 'send', probe: false });
  });

  it('a probe failing after a stale success closed the circuit does not open it again (nor leave it shown open)', () => {
    const c = new Circuits(() => 0.5, 1000);
    let t: Transition;
    for (let i = 0; i < 5; i++) t = c.failed('e', 0, 600_000, false, 'status 500');
    if (t?.kind !== 'opened') throw new Error('the circuit did not open');
    const until = t.until;
    expect(c.admit('e', until)).toEqual({ kind: 'send', probe: true });
    // A request sent before the circuit opened answers 2xx while the probe is out: closed.
    expect(c.succeeded('e', until)).toMatchObject({ kind: 'closed' });
    // The probe then fails: one failure of a closed circuit, no transition.
    expect(c.failed('e', until + 10, 600_000, true, 'status 500')).toBeUndefined();
    expect(c.isOpen('e')).toBe(false);
    expect(c.admit('e', until + 10)).toEqual({ kind: 'send', probe: false });
  });

  it('takes up what became due meanwhile (a held user.offline) between batches of a backlog, not after all of it', async () => {
    // Each delivery takes a millisecond of the manual clock; the held event is due 100 ms on.
    const delivered: string[] = [];
    let heldAt1100: number | undefined;
    const { clock, d, events, outbox } = dispatcher(async (_url, req) => {
      delivered.push(req.headers['webhook-id'] ?? '');
      clock.advance(1);
      if (delivered.length === 1100) heldAt1100 = (await outbox.stats()).held;
      return 200;
    });
    await d.queue(events(3000));
    await d.hold('offline:9', { id: 'evt_offline', type: 'user.offline', time: 0, data: { user: '9' } }, clock.now() + 100);
    await d.kick();
    // Queued as a job after at most one pass of deliveries (1024), not when the 3000 were done...
    expect(heldAt1100).toBe(0);
    // ...and delivered in due order: after the backlog queued before it.
    expect(delivered).toHaveLength(3001);
    expect(delivered.at(-1)).toBe('evt_offline');
    await d.stop();
  });
});
