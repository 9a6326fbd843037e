/**
 * The webhook dispatcher with a receiver that is down, on the memory outbox: its log lines about given-up deliveries
 * go through a token bucket, and its queue gauges are measured while a pass is still under way.
 */
import { describe, expect, it } from 'vitest';
import { MemoryOutbox } from '../src/engine/memory/outbox.js';
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

function dispatcher(send: WebhookSender) {
  const clock = new ManualClock();
  const { logger, entries } = capturingLogger();
  const outbox = new MemoryOutbox(() => clock.now());
  const stats = new WebhookStats();
  const d = new WebhookDispatcher({
    outbox,
    endpoints: [endpoint],
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
    const { entries, stats, d, events } = dispatcher(() => Promise.reject(new Error('connect ECONNREFUSED')));
    await d.queue(events(500));
    await d.kick();
    expect(stats.dead.get('app')).toBe(500);
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
});
