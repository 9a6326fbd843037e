/**
 * What a publisher is told when a publish goes wrong, on every path: a payload nested too deep (HTTP, the
 * Redis ingest, the Lua script), an engine that does not answer in time (504 engine_timeout: outcome unknown,
 * never "nothing was accepted"), and presence that cannot be read after the message was published.
 */
import { MAX_PAYLOAD_DEPTH, MAX_TOKEN_LENGTH } from '@herald/protocol';
import { describe, expect, it } from 'vitest';
import { createMemoryEngine } from '../src/engine/memory/engine.js';
import { createRedisEngine } from '../src/engine/redis/engine.js';
import { startRedisIngest, type RedisIngest } from '../src/engine/redis/ingest.js';
import type { Engine, PublishInput, PublishOutcome } from '../src/engine/types.js';
import { createGateway } from '../src/gateway/gateway.js';
import { createIngestHandler } from '../src/ingest/handler.js';
import { parseIngestMessage } from '../src/ingest/parse.js';
import type { Clock, TimerHandle } from '../src/util/clock.js';
import { EngineUnavailableError } from '../src/util/errors.js';
import { silentLogger } from '../src/util/logger.js';
import { api, API_KEY, eventually, onCleanup, startGateway, TestClient } from './helpers.js';
import { rawClient, REDIS_URL, RedisProxy, startRedisNode, testPrefix } from './redis-helpers.js';

/** A payload `depth` levels deep, as JSON text (JSON.stringify itself overflows the stack on deep values). */
const nested = (depth: number): string => `${'['.repeat(depth - 1)}{}${']'.repeat(depth - 1)}`;
/** A publish body around a payload given as JSON text. */
const body = (payload: string, channel = 'd'): string => `{"channel":"${channel}","type":"t","payload":${payload}}`;

/** The `reason` of the first entry of the ingest's dead-letter stream under `prefix`, once there is one. */
async function firstDeadLetterReason(raw: ReturnType<typeof rawClient>, prefix: string): Promise<string | undefined> {
  const dead = await eventually(async () => {
    const entries = await raw.xrange(`${prefix}:ingest:dead`, '-', '+');
    return entries.length > 0 ? entries : undefined;
  }, 'the dead letter');
  const fields = dead[0]?.[1] ?? [];
  return fields[fields.indexOf('reason') + 1];
}

describe('payload nesting depth', () => {
  it(`answers 400 payload_too_deep above ${MAX_PAYLOAD_DEPTH} levels (20 000 deep too: no stack overflow), accepts ${MAX_PAYLOAD_DEPTH}`, async () => {
    const gw = await startGateway();
    const ok = await api(gw.http, 'POST', '/api/publish', undefined, { raw: body(nested(MAX_PAYLOAD_DEPTH)) });
    expect(ok.status).toBe(200);
    for (const depth of [MAX_PAYLOAD_DEPTH + 1, 20_000]) {
      const r = await api(gw.http, 'POST', '/api/publish', undefined, { raw: body(nested(depth)) });
      expect(r.status).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'payload_too_deep', field: 'payload', limit: MAX_PAYLOAD_DEPTH });
    }
    const many = await api(gw.http, 'POST', '/api/publish', undefined, { raw: `[${body('{}')},${body(nested(20_000))}]` });
    expect(many.body.error).toMatchObject({ code: 'payload_too_deep', field: '[1].payload' });
    // Nothing of a refused request was published.
    expect((await api(gw.http, 'GET', '/api/channels/d')).body.seq).toBe(1);
  });

  it('dead-letters an ingested message nested too deep, with the reason', async () => {
    const prefix = testPrefix();
    const raw = rawClient();
    onCleanup(() => raw.disconnect());
    const logger = silentLogger();
    const engine = createRedisEngine({ url: REDIS_URL, prefix, logger });
    const gateway = await createGateway({ port: 0, apiKeys: [API_KEY], engine, logger, shutdownTimeout: 2000 });
    onCleanup(() => gateway.close());
    const ingest = await startRedisIngest({
      url: REDIS_URL,
      prefix,
      nodeId: engine.nodeId,
      handle: createIngestHandler({ publisher: gateway.publisher, stats: gateway.stats, maxItems: 100 }),
      logger,
      pubsub: false,
    });
    onCleanup(() => ingest.close());
    await raw.xadd(`${prefix}:ingest`, '*', 'msg', body(nested(5000), 'deep'));
    expect(await firstDeadLetterReason(raw, prefix)).toBe('payload_too_deep');
  });

  it("dead-letters an ingested message over the node's maxBodySize with body_too_large, and publishes one under it", async () => {
    const prefix = testPrefix();
    const raw = rawClient();
    onCleanup(() => raw.disconnect());
    const { http } = await startRedisNode(prefix, REDIS_URL, {}, { maxBodySize: 2048 });
    await raw.xadd(`${prefix}:ingest`, '*', 'msg', JSON.stringify({ channel: 'big', type: 't', payload: { text: 'x'.repeat(4000) } }));
    await raw.xadd(`${prefix}:ingest`, '*', 'msg', JSON.stringify({ channel: 'big', type: 't', payload: { text: 'x'.repeat(1000) } }));
    expect(await firstDeadLetterReason(raw, prefix)).toBe('body_too_large');
    await eventually(async () => ((await api(http, 'GET', '/api/channels/big')).body.seq === 1 ? true : undefined), 'the small one published');
  });

  it('refuses an ingested message over maxBodySize as the HTTP API does, counting bytes of UTF-8, not characters', () => {
    const msg = (text: string): string => JSON.stringify({ channel: 'c', type: 't', payload: { text } });
    const at = (n: number) => parseIngestMessage(msg('x'.repeat(n)), 100, undefined, undefined, 100);
    const size = Buffer.byteLength(msg(''));
    expect(at(100 - size).ok).toBe(true);
    expect(at(101 - size)).toMatchObject({ ok: false, error: { code: 'body_too_large' } });
    // 30 characters of 3 bytes each: under 100 characters, over 100 bytes.
    const cjk = msg('字'.repeat(30));
    expect(cjk.length).toBeLessThan(100);
    expect(parseIngestMessage(cjk, 100, undefined, undefined, 100)).toMatchObject({ ok: false, error: { code: 'body_too_large' } });
    expect(parseIngestMessage(cjk, 100, undefined, undefined, 1000).ok).toBe(true);
  });
});

describe('an engine that does not answer in time', () => {
  it('answers 504 engine_timeout (outcome unknown), and a retry with the same id publishes exactly once', async () => {
    const proxy = new RedisProxy();
    await proxy.start();
    onCleanup(() => proxy.stop());
    const logger = silentLogger();
    const engine = createRedisEngine({ url: proxy.url, prefix: testPrefix(), logger, commandTimeout: 300 });
    const gw = await startGateway({ engine });
    const { client } = await TestClient.connect(gw.ws, { subs: { stalled: {} } });
    proxy.pause();
    const stalled = await api(gw.http, 'POST', '/api/publish', { channel: 'stalled', type: 't', payload: { n: 1 }, id: 'p-1' });
    expect(stalled.status).toBe(504);
    expect(stalled.body.error.code).toBe('engine_timeout');
    proxy.resume();
    // The command had reached Redis: the message is published once Redis moves again.
    const [m] = await client.waitMessages('stalled', 1);
    expect(m).toMatchObject({ seq: 1, payload: { n: 1 } });
    const retry = await api(gw.http, 'POST', '/api/publish', { channel: 'stalled', type: 't', payload: { n: 1 }, id: 'p-1' });
    expect(retry.status).toBe(200);
    expect(retry.body.results.stalled).toMatchObject({ seq: 1, duplicate: true });
    expect(gw.gateway.stats.engineErrors.get('api')).toBe(1);
    // An unknown outcome is not counted as a dropped message.
    expect(gw.gateway.stats.dropped.get('engine_unavailable') ?? 0).toBe(0);
  });

  it('answers 503 engine_unavailable when nothing could be sent', async () => {
    const proxy = new RedisProxy();
    await proxy.start();
    const engine = createRedisEngine({ url: proxy.url, prefix: testPrefix(), logger: silentLogger(), commandTimeout: 300 });
    const gw = await startGateway({ engine });
    await proxy.stop();
    await eventually(async () => ((await api(gw.http, 'GET', '/readyz')).status === 503 ? true : undefined), 'the engine to notice');
    const r = await api(gw.http, 'POST', '/api/publish', { channel: 'down', type: 't', payload: {}, id: 'p-2' });
    expect(r.status).toBe(503);
    expect(r.body.error.code).toBe('engine_unavailable');
  });
});

describe('an engine that throws instead of rejecting', () => {
  it('answers 503 engine_unavailable, and every item of the batch was still handed to the engine', async () => {
    const base = createMemoryEngine();
    const seen: string[] = [];
    const publish = (input: PublishInput): Promise<PublishOutcome> => {
      seen.push(input.channel);
      // As the memory engine does when it is not running: a throw, not a rejected promise.
      if (input.channel === 'b') throw new EngineUnavailableError('not running');
      return base.broker.publish(input);
    };
    const engine: Engine = { ...base, broker: { ...base.broker, publish } } as Engine;
    const gw = await startGateway({ engine });
    const items = ['a', 'b', 'c'].map((channel) => ({ channel, type: 't', payload: {} }));
    const r = await api(gw.http, 'POST', '/api/publish', items);
    expect(r.status).toBe(503);
    expect(r.body.error.code).toBe('engine_unavailable');
    expect(seen).toEqual(['a', 'b', 'c']);
  });
});

describe('presence that cannot be read after a publish', () => {
  it('answers 200 with subscribers and online null: the message was published, only who was there is unknown', async () => {
    const base = createMemoryEngine();
    const broken = (): Promise<never> => Promise.reject(new Error('presence store down'));
    // An engine that does not count with the publish (the caller then asks Presence), and a Presence that fails.
    const broker = { ...base.broker, publish: (input: PublishInput) => base.broker.publish({ ...input, counts: false }) };
    const engine: Engine = { ...base, broker, presence: { ...base.presence, subscribers: broken, online: broken } } as Engine;
    const gw = await startGateway({ engine });
    const r = await api(gw.http, 'POST', '/api/publish', { channels: ['news', 'user:7'], type: 't', payload: {} });
    expect(r.status).toBe(200);
    expect(r.body.results.news).toMatchObject({ seq: 1, subscribers: null });
    expect(r.body.results['user:7']).toMatchObject({ seq: 1, subscribers: null, online: null });
    expect(gw.gateway.stats.engineErrors.get('presence')).toBe(2);
  });
});

describe('connect frame', () => {
  it('says what is wrong with a token over the limit', async () => {
    const gw = await startGateway();
    const client = await TestClient.open(gw.ws);
    client.send({ type: 'connect', token: 'x'.repeat(MAX_TOKEN_LENGTH + 1) });
    const err = await client.next();
    expect(err).toMatchObject({ type: 'error', code: 'invalid_frame' });
    expect(String(err['message'])).toContain(String(MAX_TOKEN_LENGTH));
  });
});

describe('the PUBLISH ingest: what its leader takes is published or dead-lettered, never dropped', () => {
  /** Time as a process sees it: `now()` moved by hand (a process frozen and resumed), timers on the real clock. */
  class JumpClock implements Clock {
    t = Date.now();
    now(): number {
      return this.t;
    }
    setInterval(fn: () => void, ms: number): TimerHandle {
      return setInterval(fn, ms);
    }
    clearInterval(h: TimerHandle): void {
      clearInterval(h as ReturnType<typeof setInterval>);
    }
    setTimeout(fn: () => void, ms: number): TimerHandle {
      return setTimeout(fn, ms);
    }
    clearTimeout(h: TimerHandle): void {
      clearTimeout(h as ReturnType<typeof setTimeout>);
    }
  }

  async function ingestNode(o: { url?: string; leaderTtl: number; clock?: Clock }): Promise<{ prefix: string; engine: Engine; ingest: RedisIngest }> {
    const prefix = testPrefix();
    const logger = silentLogger();
    const engine = createRedisEngine({ url: REDIS_URL, prefix, logger });
    const gateway = await createGateway({ port: 0, apiKeys: [API_KEY], engine, logger, shutdownTimeout: 2000 });
    onCleanup(() => gateway.close());
    const ingest = await startRedisIngest({
      url: o.url ?? REDIS_URL,
      prefix,
      nodeId: engine.nodeId,
      handle: createIngestHandler({ publisher: gateway.publisher, stats: gateway.stats, maxItems: 100 }),
      logger,
      stream: false,
      leaderTtl: o.leaderTtl,
      ...(o.clock ? { clock: o.clock } : {}),
    });
    onCleanup(() => ingest.close());
    return { prefix, engine, ingest };
  }
  const msg = (channel: string, i: number): string => JSON.stringify({ channel, type: 't', payload: { i } });

  it('a leader frozen past its lock publishes what it took then only if the lock is still its own; else dead-letters it', async () => {
    const raw = rawClient();
    onCleanup(() => raw.disconnect());
    const clock = new JumpClock();
    const { prefix, engine, ingest } = await ingestNode({ leaderTtl: 60_000, clock });
    expect(ingest.leader).toBe(true);
    // Frozen longer than its lock lasts, and nobody took over: what it finds on waking up is published.
    clock.t += 61_000;
    expect(await raw.publish(`${prefix}:publish`, msg('frozen', 1))).toBe(1);
    await eventually(async () => ((await engine.history.position('frozen')).seq === 1 ? true : undefined), 'the first message published');
    // Frozen again, and another node took the lock meanwhile: it may have published the same messages.
    clock.t += 61_000;
    await raw.set(`${prefix}:ingest:leader`, 'another-node', 'PX', 60_000);
    expect(await raw.publish(`${prefix}:publish`, msg('frozen', 2))).toBe(1);
    expect(await firstDeadLetterReason(raw, prefix)).toBe('leader_changed');
    await eventually(() => (ingest.leader ? undefined : true), 'the node to step down');
    expect((await engine.history.position('frozen')).seq).toBe(1);
  });

  it('a node that stepped down while Redis was away takes nothing until it leads again: every PUBLISH answered 1 is published', async () => {
    const raw = rawClient();
    onCleanup(() => raw.disconnect());
    const proxy = new RedisProxy();
    await proxy.start();
    onCleanup(() => proxy.stop());
    const { prefix, engine, ingest } = await ingestNode({ url: proxy.url, leaderTtl: 1500 });
    await eventually(() => (ingest.leader ? true : undefined), 'the node to lead');
    await proxy.stop();
    await eventually(() => (ingest.leader ? undefined : true), 'the node to step down');
    await proxy.start();
    // Its subscriber connection comes back; the lock it held lapses, and it leads again. A message Redis says a
    // node took (reply 1) before that would have been taken by a node that does not lead, and dropped.
    let taken = 0;
    for (let i = 0; taken < 5 && i < 600; i++) {
      if ((await raw.publish(`${prefix}:publish`, msg('back', i))) > 0) taken += 1;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(taken).toBe(5);
    await eventually(async () => ((await engine.history.position('back')).seq === 5 ? true : undefined), 'the five messages taken, published');
    expect(await raw.exists(`${prefix}:ingest:dead`)).toBe(0);
  });
});
