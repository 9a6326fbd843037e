/**
 * Several publishes in one request are handed to the engine together (pipelined) and still delivered in
 * order; a failure in the middle answers an error for the request, and a retry with the same ids
 * publishes the rest exactly once. On both engines (the Redis one against the real Redis).
 */
import { describe, expect, it } from 'vitest';
import { createRedisEngine } from '../src/engine/redis/engine.js';
import type { PublishInput, PublishOutcome } from '../src/engine/types.js';
import { EngineUnavailableError } from '../src/util/errors.js';
import { api, startGateway, TestClient, type TestGateway } from './helpers.js';
import { REDIS_URL, testPrefix } from './redis-helpers.js';

const engines = {
  memory: () => startGateway(),
  redis: () => startGateway({ engine: createRedisEngine({ url: REDIS_URL, prefix: testPrefix() }) }),
};

/** Wraps the engine's channel publish: counts calls still unanswered, and can make chosen calls fail. */
function instrument(gw: TestGateway): {
  maxInFlight: () => number;
  calls: () => number;
  failWhen: (pred: ((input: PublishInput) => boolean) | undefined) => void;
} {
  const broker = gw.gateway.engine.broker;
  const original = broker.publish.bind(broker);
  let inFlight = 0;
  let max = 0;
  let calls = 0;
  let fail: ((input: PublishInput) => boolean) | undefined;
  broker.publish = (input: PublishInput): Promise<PublishOutcome> => {
    calls++;
    if (fail?.(input)) return Promise.reject(new EngineUnavailableError('injected failure'));
    inFlight++;
    max = Math.max(max, inFlight);
    return original(input).finally(() => inFlight--);
  };
  return { maxInFlight: () => max, calls: () => calls, failWhen: (p) => (fail = p) };
}

describe.each(Object.entries(engines))('publishing an array (%s engine)', (name, start) => {
  it('hands every channel item to the engine before awaiting any answer, and delivers in order', async () => {
    const gw = await start();
    const spy = instrument(gw);
    const { client, connected } = await TestClient.connect(gw.ws, { subs: { a: {}, b: {} } });
    const items: unknown[] = [];
    for (let i = 1; i <= 12; i++) items.push({ channels: ['a', 'b'], type: 'n', payload: { i } });
    // A client item in the middle is sent once the items before it are answered. The memory engine has
    // delivered them by then; with Redis they come back over pub/sub, so only each channel's order is fixed.
    items.push({ client: connected.client, type: 'direct', payload: { i: 'd' } });
    for (let i = 13; i <= 20; i++) items.push({ channel: 'a', type: 'n', payload: { i } });
    const r = await api(gw.http, 'POST', '/api/publish', items);
    expect(r.status).toBe(200);
    expect(spy.calls()).toBe(12 * 2 + 8);
    // Without pipelining, one publish would be answered before the next is sent (1 in flight).
    expect(spy.maxInFlight()).toBe(12 * 2);
    expect(r.body.slice(0, 12).map((x: any) => [x.results.a.seq, x.results.b.seq])).toEqual(Array.from({ length: 12 }, (_, i) => [i + 1, i + 1]));
    expect(r.body[12]).toEqual({ client: connected.client, delivered: true });
    expect(r.body.slice(13).map((x: any) => x.results.a.seq)).toEqual(Array.from({ length: 8 }, (_, i) => i + 13));
    await client.waitMessages('a', 20);
    await client.waitMessages('b', 12);
    await client.nextWhere((f) => f.type === 'direct', 'the direct message');
    const payloads = (channel: string): unknown[] => client.messages(channel).map((m) => (m.payload as { i: unknown }).i);
    expect(payloads('a')).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(payloads('b')).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    if (name === 'memory') {
      const aAndDirect = client.frames.filter((f) => (f.type === 'n' && f.channel === 'a') || f.type === 'direct').map((f) => (f.payload as { i: unknown }).i);
      expect(aAndDirect).toEqual([...Array.from({ length: 12 }, (_, i) => i + 1), 'd', ...Array.from({ length: 8 }, (_, i) => i + 13)]);
    }
    expect(client.messages('a').map((m) => m.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it('answers the first failure for the request; a retry with the same ids publishes the rest exactly once', async () => {
    const gw = await start();
    const spy = instrument(gw);
    const { client } = await TestClient.connect(gw.ws, { subs: { a: {} } });
    const items = Array.from({ length: 10 }, (_, i) => ({ channel: 'a', type: 'n', payload: { i }, id: `m${i}` }));
    spy.failWhen((input) => input.idempotencyKey === 'm4');
    const failed = await api(gw.http, 'POST', '/api/publish', items);
    expect(failed.status).toBe(503);
    expect(failed.body.error.code).toBe('engine_unavailable');
    // Every item was handed over; all but the failed one are published (their answers settled before the error).
    expect(spy.calls()).toBe(10);
    await client.waitMessages('a', 9);

    spy.failWhen(undefined);
    const retry = await api(gw.http, 'POST', '/api/publish', items);
    expect(retry.status).toBe(200);
    expect(retry.body.map((x: any) => x.results.a.duplicate)).toEqual(items.map((it) => it.id !== 'm4'));
    await client.waitMessages('a', 10);
    const got = client.messages('a').map((m) => (m.payload as { i: number }).i);
    expect(got.slice().sort((x, y) => x - y)).toEqual(Array.from({ length: 10 }, (_, i) => i));
    expect(got.at(-1)).toBe(4);
    expect(client.messages('a').map((m) => m.seq)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
  });
});
