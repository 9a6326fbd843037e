// The demo page (the minified browser SDK, dist/herald.min.js) in a real headless Chromium against three
// Redis-backed `herald` CLI processes behind a TCP proxy that spreads new connections over the nodes, as
// a load balancer would (skipping a node that refuses). The page is loaded THROUGH the proxy, so its
// WebSocket goes through it too. The node the page is on is killed with `kill -9` while messages are
// published through the other nodes: the page reconnects through the proxy to a live node and shows every
// message published meanwhile, in order, without duplicates and without a reset (issue 4).
// Every wait is on an event (process output, a page binding, waitForFunction), never a fixed sleep.
// Needs `npm run build` (the CLI runs from dist/, the page serves the built bundle) and Redis.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { nodeOf, redisPrefix } from '../../server/test/redis-helpers.js';
import { startRedisNode, type HeraldProcess } from '../../server/test/support/cli-process.js';
import { openDemo, screenshot, useChromium } from './support/chromium.js';
import { api, onCleanup, poll, proxyTo, range } from './support/harness.js';

const WAIT = 30_000;
const API_KEY = `cluster_browser_${randomBytes(12).toString('hex')}`;
const JWT_SECRET = randomBytes(32).toString('hex');

const browser = useChromium();

/** A `herald` CLI process on the Redis engine: `--workers 1 --demo --allow-anonymous`, node id `name`; resolves once it listens. */
const startNode = (name: string, prefix: string): Promise<HeraldProcess> =>
  startRedisNode(name, prefix, { args: ['--demo'], env: { HERALD_API_KEY: API_KEY, HERALD_JWT_SECRET: JWT_SECRET }, timeoutMs: WAIT });

// ---- the test ------------------------------------------------------------------------------------

describe('demo page in Chromium against three Redis-backed gateway processes behind a load-balancing proxy', () => {
  it('kill -9 of the node the page is on: it reconnects through the proxy to a live node and shows every message published meanwhile, in order, once, without a reset', async () => {
    const { prefix, redis } = redisPrefix('cluster-browser');
    const nodes = await Promise.all(['node-a', 'node-b', 'node-c'].map((name) => startNode(name, prefix)));
    const proxy = await proxyTo((nodes[0] as HeraldProcess).port);
    proxy.setTargets(nodes.map((n) => n.port));

    const channel = `feed-${randomBytes(3).toString('hex')}`;
    const demo = await openDemo(browser(), `http://127.0.0.1:${proxy.port}`, `channel=${channel}&ping=500&maxDelay=500`, WAIT);
    const delivered = demo.delivered;
    const states = (): Array<{ from: string; to: string; code?: number }> => demo.states().map((e) => e.data);
    const connects = demo.connects;
    await demo.signal.until(
      () => connects() >= 1,
      'the page to connect',
      WAIT,
      () => JSON.stringify(demo.pageErrors),
    );
    // The page's subscription is confirmed before anything is published, so it must see seq 1 onwards.
    await demo.page.waitForFunction((ch) => (window.heraldDemo.client as any).getSubscription(ch)?.state === 'subscribed', channel, {
      timeout: WAIT,
    });

    // Which node the page's WebSocket reached (through the proxy): the engine's presence key of its client id.
    const clientBefore = (await demo.page.evaluate(() => window.heraldDemo.client.clientId)) as string;
    const doomedName = await poll(async () => (await nodeOf(redis, prefix, clientBefore)) ?? undefined, 'the page in presence', WAIT, 20);
    const doomed = nodes.find((n) => n.name === doomedName) as HeraldProcess;
    expect(doomed, doomedName).toBeDefined();
    const others = nodes.filter((n) => n !== doomed);

    const TOTAL = 200;
    const WINDOW = 40; // the publisher stays at most this far ahead of the page...
    let cutUntil = 0; // ...except during the outage, when it publishes up to this many regardless
    let published = 0;
    // The last publish sent (its answer may not be back: its message can reach the page before it).
    let requested = 0;
    let stopped = false;
    onCleanup(() => {
      stopped = true;
      demo.signal.notify();
    });
    const progress = (): string =>
      `published ${published}, page has ${delivered().length}, states ${JSON.stringify(states().map((s) => s.to))}, ` +
      `proxy accepted ${proxy.accepted} rejected ${proxy.rejected} skipped ${proxy.skipped}`;
    // Published through the other nodes only (round-robin), never through the node that dies.
    const publisher = (async () => {
      for (let i = 1; i <= TOTAL; i++) {
        await demo.signal.until(() => stopped || i <= cutUntil || i - delivered().length <= WINDOW, 'room to publish', 60_000, progress);
        if (stopped) return;
        const node = others[i % others.length] as HeraldProcess;
        requested = i;
        const r = await api(node.http, 'POST', '/api/publish', { channel, type: 'tick', payload: { i } }, API_KEY);
        if (r.status !== 200) throw new Error(`publish ${i} through ${node.name}: ${r.status} ${JSON.stringify(r.body)}`);
        published = i;
        demo.signal.notify();
      }
    })();
    publisher.catch(() => undefined); // awaited below

    await demo.signal.until(() => delivered().length >= 60, '60 messages before the kill', WAIT, progress);
    // The load balancer refuses for a moment, so that messages are certainly published while the page is away.
    const acceptedBefore = proxy.accepted;
    proxy.mode = 'reject';
    const statesBefore = states().length;
    doomed.kill9();
    // What the page can have had from the dying node: at most what was sent before the kill (a publish whose answer
    // is not back yet may have reached the page already).
    const sentBeforeKill = requested;
    const exit = await doomed.exited();
    expect(exit.signal).toBe('SIGKILL');
    cutUntil = Math.min(TOTAL, sentBeforeKill + 30);
    demo.signal.notify();
    const lost = await demo.signal.until(
      () =>
        states()
          .slice(statesBefore)
          .find((s) => s.from === 'connected'),
      'the page to lose its node',
      WAIT,
      progress,
    );
    expect(lost.code).toBe(1006);
    await demo.signal.until(() => published >= cutUntil && proxy.rejected >= 1, '30 publishes and a refused reconnect while the page is away', WAIT, progress);
    const missedFrom = delivered().length;
    // The load balancer has not noticed the death: the dead node is still its next choice, and refuses.
    proxy.setTargets([doomed.port, ...others.map((n) => n.port)]);
    proxy.mode = 'forward';

    await demo.signal.until(() => connects() >= 2, 'the page to reconnect through the proxy', WAIT, progress);
    await publisher;
    await demo.signal.until(() => delivered().length >= TOTAL, `${TOTAL} messages on the page`, WAIT, progress);
    await demo.page.waitForFunction((n) => window.heraldDemo.messages.length >= n, TOTAL, { timeout: WAIT });

    const view = await demo.page.evaluate(() => ({
      seqs: window.heraldDemo.messages.map((m) => m.seq),
      payloads: window.heraldDemo.messages.map((m) => m.payload['i']),
      listed: Array.from(document.querySelectorAll('#messages li')).map((li) => ({
        seq: (li as HTMLElement).dataset['seq'] ?? null,
        notice: li.classList.contains('notice'),
      })),
      resets: window.heraldDemo.resets,
      errors: window.heraldDemo.errors,
      state: document.getElementById('state')?.textContent ?? '',
      log: document.getElementById('log')?.textContent ?? '',
      clientId: window.heraldDemo.client.clientId,
    }));
    expect(delivered()).toEqual(range(1, TOTAL));
    expect(view.seqs).toEqual(range(1, TOTAL));
    expect(view.payloads).toEqual(range(1, TOTAL));
    expect(view.listed.map((l) => Number(l.seq))).toEqual(range(1, TOTAL));
    expect(view.listed.some((l) => l.notice)).toBe(false);
    expect(view.resets).toEqual([]);
    expect(demo.events.filter((e) => e.kind === 'reset')).toEqual([]);
    expect(view.errors).toEqual([]);
    expect(view.state).toBe('connected');
    // It resumed from history: what was published while it was away came in a recovery, not live.
    expect(missedFrom).toBeLessThanOrEqual(cutUntil - 30);
    expect(view.log).toMatch(/recovered missed messages after seq \d+/);
    // It came back through the proxy, which skipped the dead node when its turn came, onto a live node.
    expect(connects()).toBeGreaterThanOrEqual(2);
    expect(proxy.accepted).toBeGreaterThan(acceptedBefore);
    expect(proxy.skipped).toBeGreaterThanOrEqual(1);
    expect(view.clientId).toBeTypeOf('string');
    expect(view.clientId).not.toBe(clientBefore);
    const nodeAfter = await poll(async () => (await nodeOf(redis, prefix, view.clientId as string)) ?? undefined, 'the page in presence again', WAIT, 20);
    expect(others.map((n) => n.name)).toContain(nodeAfter);
    expect(demo.pageErrors).toEqual([]);

    await screenshot(demo.page, 'cluster-demo-page.png');
    console.info(
      `cluster demo page: on ${doomed.name}, killed, back on ${nodeAfter}; missed from seq ${missedFrom} while away; ` +
        `proxy accepted ${proxy.accepted}, rejected ${proxy.rejected}, skipped a dead target ${proxy.skipped} times`,
    );
  }, 90_000);
});
