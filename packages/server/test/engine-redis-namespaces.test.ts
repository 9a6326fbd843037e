/**
 * The Redis engine's parts for other protocols' namespaces: namespaced channels and exclusions in the publish
 * script (as other languages call it), the pub/sub message forms, and channel members across nodes, including
 * the members of a node that died. Needs a Redis (see engine-redis.test.ts).
 */
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { parseChannelMessage } from '../src/engine/redis/broker.js';
import { createRedisEngine, type RedisEngine, type RedisEngineOptions, type RedisRole } from '../src/engine/redis/engine.js';
import type { RedisMembers } from '../src/engine/redis/members.js';
import { ManualClock } from './helpers.js';
import { cleanupRun, rawClient, Recorder, REDIS_URL, redisBehindProxy, testPrefix, waitFor } from './redis-helpers.js';

afterAll(cleanupRun);

const PUBLISH_LUA = readFileSync(new URL('../lua/publish.lua', import.meta.url), 'utf8');

describe('redis engine: namespaces, exclusions, broadcasts and members', () => {
  const open: RedisEngine[] = [];
  afterEach(async () => {
    for (const e of open.splice(0)) await e.close();
  });

  const node = async (prefix: string, opts: RedisEngineOptions = {}) => {
    const clients: Partial<Record<RedisRole, Redis>> = {};
    const engine = createRedisEngine({ prefix, redis: (role, defaults) => (clients[role] = new Redis(REDIS_URL, defaults)), ...opts });
    open.push(engine);
    const rec = new Recorder();
    await engine.start(rec);
    return { engine, rec, clients };
  };

  it('parses every pub/sub message form, and refuses what is not one', () => {
    const f = Buffer.from('{"x":1}');
    const parse = (s: string) => parseChannelMessage('c', Buffer.concat([Buffer.from(s), f]));
    expect(parse('3:ep:')).toMatchObject({ seq: 3, epoch: 'ep' });
    expect(parse('3:ep:')?.exclude).toBeUndefined();
    expect(parse('!12.34:3:ep:')).toMatchObject({ seq: 3, epoch: 'ep', exclude: '12.34' });
    expect(parse('0::')).toMatchObject({ seq: 0, epoch: '' });
    expect(parse('!ab:0::')).toMatchObject({ seq: 0, epoch: '', exclude: 'ab' });
    expect(parse('0::')?.frame.equals(f)).toBe(true);
    for (const bad of ['x:ep:', '0:ep:', '3::', '-1:e:', '!:3:e:', ':e:', '3']) expect(parse(bad), bad).toBeUndefined();
  });

  it('publish.lua takes namespaced channels and event types, refuses malformed ones, and validates exclude', async () => {
    const prefix = testPrefix();
    const raw = rawClient();
    const call = (channel: string, type: string, exclude = '') =>
      raw.eval(PUBLISH_LUA, 2, `${prefix}:{${channel}}:meta`, `${prefix}:{${channel}}:stream`, channel, type, '{}', '', '', '', '', '', '', '', exclude).then(
        () => 'ok',
        (err: Error) => err.message.split(' ')[0],
      );
    expect(await call('$pusher.app1:private-a,b;c=d@e.f', 'App%5CEvents%5CX')).toBe('ok');
    expect(await call('$pusher.app1:#server-to-user-42', 'subscribed')).toBe('ok');
    expect(await call('$pusher.app1:ch', 'x', '123.456')).toBe('ok');
    for (const bad of [
      '$pusher.app1:',
      '$Pusher.a:ch',
      '$pusher.:ch',
      '$pusher.a b:ch',
      '$pusher.a:c h',
      '$pusher.a:c"h',
      '$pusher.a:##x',
      `$pusher.a:${'x'.repeat(201)}`,
    ]) {
      expect(await call(bad, 't'), bad).toBe('INVALID_CHANNEL');
    }
    expect(await call('$pusher.a:ch', 'a"b')).toBe('INVALID_TYPE');
    expect(await call('$pusher.a:ch', 'a\\b')).toBe('INVALID_TYPE');
    // The native grammar is untouched: no percent, no reserved types, no Pusher characters.
    expect(await call('native', 'a%5Cb')).toBe('INVALID_TYPE');
    expect(await call('native', 'error')).toBe('RESERVED_TYPE');
    expect(await call('a,b', 't')).toBe('INVALID_CHANNEL');
    expect(await call('ch', 't', 'a:b')).toBe('INVALID_ARGUMENT');
  });

  it('carries exclusions and broadcasts to every subscribed node, in order with publishes', async () => {
    const prefix = testPrefix();
    const a = await node(prefix);
    const b = await node(prefix);
    const ch = '$pusher.app:private-x';
    await a.engine.broker.subscribe(ch);
    await b.engine.broker.subscribe(ch);
    await a.engine.broker.publish({ channel: ch, type: 'e', payloadJson: '{"n":1}', exclude: '1.2' });
    await a.engine.broker.broadcast({ channel: ch, type: 'client-e', payloadJson: '{"n":2}', exclude: '1.2', user: '7' });
    await a.engine.broker.publish({ channel: ch, type: 'e', payloadJson: '{"n":3}' });
    for (const n of [a, b]) {
      await n.rec.until(() => n.rec.messages.length === 3, 'three messages');
      expect(n.rec.messages.map((m) => [m.seq, m.exclude, JSON.parse(m.frame.toString()).payload.n])).toEqual([
        [1, '1.2', 1],
        [0, '1.2', 2],
        [2, undefined, 3],
      ]);
    }
    await expect(a.engine.broker.broadcast({ channel: 'bad channel', type: 't', payloadJson: '{}' })).rejects.toMatchObject({ code: 'invalid_channel' });
  });

  it('decides first and last per user across nodes', async () => {
    const prefix = testPrefix();
    const a = await node(prefix);
    const b = await node(prefix);
    const ch = '$pusher.app:presence-r';
    expect(await a.engine.members.join(ch, 'a1', { user: 'u', infoJson: '{"n":"a"}' })).toEqual({ first: true });
    expect(await b.engine.members.join(ch, 'b1', { user: 'u', infoJson: '{"n":"b"}' })).toEqual({ first: false });
    expect(await b.engine.members.count(ch)).toBe(1);
    expect(await a.engine.members.list(ch)).toEqual([{ user: 'u', infoJson: '{"n":"b"}' }]);
    expect(await a.engine.members.leave(ch, 'a1')).toEqual({ user: 'u', last: false });
    expect(await b.engine.members.leave(ch, 'b1')).toEqual({ user: 'u', last: true });
    expect(await a.engine.members.count(ch)).toBe(0);
  });

  it('removes the members of a node that stops refreshing (kill -9) within presenceTtl, reporting each user gone once', async () => {
    const prefix = testPrefix();
    const ttl = 600;
    const dying = await node(prefix, { presenceTtl: ttl });
    const s1 = await node(prefix, { presenceTtl: ttl });
    const s2 = await node(prefix, { presenceTtl: ttl });
    const ch = '$pusher.app:presence-dead';
    const gone: string[] = [];
    for (const s of [s1, s2]) s.engine.members.onGone((channel, user) => void gone.push(`${channel}/${user}`));
    await dying.engine.members.join(ch, 'd1', { user: 'dead', infoJson: '{}' });
    await dying.engine.members.join(ch, 'd2', { user: 'dead', infoJson: '{}' });
    await s1.engine.members.join(ch, 's1', { user: 'alive', infoJson: '{}' });
    await s2.engine.members.join(ch, 's2', { user: 'alive2', infoJson: '{}' });
    dying.clients.command?.disconnect();
    dying.clients.subscriber?.disconnect();
    const killedAt = Date.now();
    await waitFor(() => gone.length > 0, 'the dead user to be reported gone');
    expect(Date.now() - killedAt).toBeLessThan(ttl * 3);
    const users = (await s1.engine.members.list(ch)).map((m) => m.user).sort();
    expect(users).toEqual(['alive', 'alive2']);
    // Both survivors refreshed (and trimmed) at least once more: still reported once.
    const raw = rawClient();
    const score = async () => Number(await raw.zscore(`${prefix}:{${ch}}:pm:conns`, 's2'));
    const before = await score();
    await waitFor(async () => (await score()) > before, 'another refresh');
    expect(gone).toEqual([`${ch}/dead`]);
  });

  it('renews its own late members without reporting them gone, and reports back those another node removed meanwhile', async () => {
    const prefix = testPrefix();
    // Node a reaches Redis through a proxy the test can freeze. Long TTLs: the refreshes are the test's own.
    const { proxy, url } = await redisBehindProxy();
    const a = await node(prefix, { presenceTtl: 60_000, commandTimeout: 300, redis: (_role, defaults) => new Redis(url, defaults) });
    const b = await node(prefix, { presenceTtl: 60_000 });
    const ch = '$pusher.app:presence-late';
    const events: string[] = [];
    a.engine.members.onGone((_c, user) => void events.push(`a gone ${user}`));
    a.engine.members.onBack((_c, user, info) => void events.push(`a back ${user} ${info}`));
    b.engine.members.onGone((_c, user) => void events.push(`b gone ${user}`));
    await a.engine.members.join(ch, 'a1', { user: 'x', infoJson: '{"n":1}' });
    const raw = rawClient();
    const conns = `${prefix}:{${ch}}:pm:conns`;
    const refresh = (n: typeof a) => (n.engine.members as RedisMembers).refresh();
    // Node a was late (a stall): its entry expired, nobody else looked. Its refresh renews it, nothing to report.
    await raw.zadd(conns, Date.now() - 1, 'a1');
    await refresh(a);
    expect(Number(await raw.zscore(conns, 'a1'))).toBeGreaterThan(Date.now());
    // Late again, and node b looked first: x is gone for the cluster; a's refresh puts x back and says so.
    await raw.zadd(conns, Date.now() - 1, 'a1');
    expect(await b.engine.members.count(ch)).toBe(0);
    await refresh(a);
    await waitFor(() => events.length === 2, 'the member to be reported back');
    expect(events).toEqual(['b gone x', 'a back x {"n":1}']);
    expect(await b.engine.members.list(ch)).toEqual([{ user: 'x', infoJson: '{"n":1}' }]);
    // Late once more, reported gone by b; a's next refresh times out on a frozen connection, and runs in Redis
    // when it moves again, putting x back with its answer lost. The next refresh that answers reports x back.
    await raw.zadd(conns, Date.now() - 1, 'a1');
    expect(await b.engine.members.count(ch)).toBe(0);
    proxy.freeze();
    await expect(refresh(a)).rejects.toBeDefined();
    proxy.unfreeze();
    await waitFor(async () => (await raw.zscore(conns, 'a1')) !== null, 'the late refresh to run in Redis');
    await refresh(a);
    await waitFor(() => events.length === 4, 'the member to be reported back again');
    expect(events.slice(2)).toEqual(['b gone x', 'a back x {"n":1}']);
    await refresh(a);
    expect(events).toHaveLength(4);
  });

  it('puts members back after a shutdown of their node: leaves them and reports the users gone', async () => {
    const prefix = testPrefix();
    const a = await node(prefix);
    const b = await node(prefix);
    const ch = '$pusher.app:presence-close';
    const gone: string[] = [];
    a.engine.members.onGone((_c, user) => void gone.push(user));
    await a.engine.members.join(ch, 'a1', { user: 'x', infoJson: '{}' });
    await b.engine.members.join(ch, 'b1', { user: 'y', infoJson: '{}' });
    await a.engine.close();
    expect(gone).toEqual(['x']);
    expect((await b.engine.members.list(ch)).map((m) => m.user)).toEqual(['y']);
  });

  it('sets TTLs on the member keys: twice presenceTtl, so the sweep finds what a dead node left before they go', async () => {
    const prefix = testPrefix();
    const a = await node(prefix, { presenceTtl: 9000 });
    const ch = '$pusher.app:presence-ttl';
    await a.engine.members.join(ch, 'c', { user: 'u', infoJson: '{}' });
    const raw = rawClient();
    for (const k of ['conns', 'owner', 'users', 'info']) {
      const t = await raw.pttl(`${prefix}:{${ch}}:pm:${k}`);
      expect(t, k).toBeGreaterThan(9000);
      expect(t, k).toBeLessThanOrEqual(18_000);
    }
    // The channel is in the index of member channels, scored by its member's expiry.
    await expect.poll(() => raw.zscore(`${prefix}:pm:index`, ch)).not.toBeNull();
  });

  it("takes a channel out of the members index when its last member leaves, and a sweep takes hundreds of a dead node's", async () => {
    const prefix = testPrefix();
    const clock = new ManualClock();
    const a = await node(prefix, { presenceTtl: 9000, clock });
    const dead = await node(prefix, { presenceTtl: 9000, clock });
    const raw = rawClient();
    const index = `${prefix}:pm:index`;
    const member = (user: string) => ({ user, infoJson: '{}' });
    await a.engine.members.join('presence:solo', 'c1', member('u'));
    await a.engine.members.join('presence:shared', 'c2', member('u'));
    await dead.engine.members.join('presence:shared', 'c3', member('v'));
    // (A leave in the very millisecond of its join leaves the channel to a sweep: see RedisMembers.leave.)
    clock.advance(1);
    await a.engine.members.leave('presence:solo', 'c1');
    await a.engine.members.leave('presence:shared', 'c2');
    // Emptied: out at once (a channel per conversation must not wait for sweeps); the other one keeps its member.
    await expect.poll(() => raw.zscore(index, 'presence:solo')).toBeNull();
    expect(await raw.zscore(index, 'presence:shared')).not.toBeNull();
    // A node with 250 channels dies (its connections to Redis gone, nothing cleaned up).
    await Promise.all(Array.from({ length: 250 }, (_, i) => dead.engine.members.join(`presence:d${i}`, `x${i}`, member(`w${i}`))));
    await expect.poll(() => raw.zcard(index)).toBe(251);
    for (const c of Object.values(dead.clients)) c?.disconnect();
    const gone: string[] = [];
    a.engine.members.onGone((_c, user) => void gone.push(user));
    clock.advance(9001);
    // One sweep takes them all out (100 channels per round trip, several rounds), and reports their users gone.
    await (a.engine.members as RedisMembers).sweep();
    expect(await raw.zcard(index)).toBe(0);
    await waitFor(() => gone.length === 251, 'the users of the dead node reported gone');
    expect(new Set(gone).size).toBe(251);
  });
});
