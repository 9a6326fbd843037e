/**
 * `lua/publish.lua` validates what it publishes on its own (PHP and other publishers call it without the
 * gateway), so its rules must be the TypeScript validator's: the same channel names, message types, reserved
 * types, payload shapes and nesting depth, and the same defaults as engine/defaults.ts. Every case here runs
 * through the real script in the real Redis and through the TypeScript rules, and the two must agree.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { isReservedType, isValidChannel, MAX_PAYLOAD_DEPTH, MESSAGE_TYPE_RE, RESERVED_PREFIXES, RESERVED_TYPES } from '@herald/protocol';
import { nestingDepth } from '../src/delivery/publish-request.js';
import { ENGINE_DEFAULTS } from '../src/engine/defaults.js';
import { LuaScript } from '../src/engine/redis/client.js';
import { cleanupRun, rawClient, testPrefix } from './redis-helpers.js';

const redis = rawClient();
const script = LuaScript.load('publish');
const prefix = testPrefix();
afterAll(async () => {
  await cleanupRun();
  redis.disconnect();
});

/** Runs the script; resolves the error code it answered (the reply's first word), or 'ok'. */
async function run(channel: string, type: string, payload: string, args: string[] = []): Promise<string> {
  const base = `${prefix}:{${channel}}`;
  try {
    await script.run(redis, [`${base}:meta`, `${base}:stream`], [channel, type, payload, 'e1', ...args]);
    return 'ok';
  } catch (err) {
    return (err as Error).message.split(' ', 1)[0] as string;
  }
}

const TYPE_OK = (t: string): boolean => MESSAGE_TYPE_RE.test(t) && !isReservedType(t);

/** Names around every rule: each printable ASCII character, lengths, reserved prefixes in every case, non-ASCII. */
function channelCorpus(): string[] {
  const out = ['', 'a', 'x'.repeat(200), 'x'.repeat(201), 'news', 'a.b_c-d:e@f=g', 'é', 'emoji😀', 'tab\tx', 'nul\u0000x'];
  for (let c = 0x20; c < 0x7f; c++) out.push(String.fromCharCode(c), `a${String.fromCharCode(c)}b`);
  for (const p of RESERVED_PREFIXES) {
    const word = p.slice(0, -1);
    out.push(`${p}x`, `${word.toUpperCase()}:x`, `${word[0]?.toUpperCase()}${word.slice(1)}:x`, `${word}X:x`, `x${p}y`, `${p}`, `${p}A:b`);
  }
  return out;
}

describe('lua/publish.lua agrees with the TypeScript rules', () => {
  it('on channel names: every printable character, the length bounds, reserved prefixes in every case', async () => {
    for (const channel of channelCorpus()) {
      const lua = await run(channel, 'm', '{}');
      expect(lua === 'ok', `channel ${JSON.stringify(channel)}: Lua answered ${lua}`).toBe(isValidChannel(channel));
      if (lua !== 'ok') expect(lua).toBe('INVALID_CHANNEL');
    }
  });

  it('on random channel names', async () => {
    const chars = fc.constantFrom(...'aZ09_-:.@=Uu$eErRsS :/,{}"\\é'.split(''));
    const name = fc.oneof(
      fc.string({ unit: chars, minLength: 0, maxLength: 12 }),
      fc
        .tuple(
          fc.constantFrom('user:', 'USER:', 'User:', 'private:', 'pRivate:', 'client:', 'herald:', 'Herald:', 'x'),
          fc.string({ unit: chars, maxLength: 6 }),
        )
        .map(([a, b]) => a + b),
    );
    await fc.assert(
      fc.asyncProperty(name, async (channel) => {
        expect((await run(channel, 'm', '{}')) === 'ok', JSON.stringify(channel)).toBe(isValidChannel(channel));
      }),
      { numRuns: 300 },
    );
  });

  it('on message types, and refuses every reserved type as RESERVED_TYPE', async () => {
    const types = ['', 'm', 'x'.repeat(100), 'x'.repeat(101), 'a b', 'a/b', 'é', 'Connected', ...RESERVED_TYPES];
    for (let c = 0x20; c < 0x7f; c++) types.push(`a${String.fromCharCode(c)}b`);
    for (const type of types) {
      const lua = await run('types', type, '{}');
      expect(lua === 'ok', `type ${JSON.stringify(type)}: Lua answered ${lua}`).toBe(TYPE_OK(type));
      if (isReservedType(type)) expect(lua).toBe('RESERVED_TYPE');
    }
  });

  it('on payload shapes and nesting depth (brackets inside strings do not count)', async () => {
    const nest = (n: number): string => '['.repeat(n) + ']'.repeat(n);
    const payloads = [
      '{}',
      '[]',
      ' {"a":1} ',
      '1',
      '"x"',
      'null',
      '',
      nest(MAX_PAYLOAD_DEPTH),
      nest(MAX_PAYLOAD_DEPTH + 1),
      nest(20_000),
      `{"a":${nest(MAX_PAYLOAD_DEPTH - 1)}}`,
      `{"a":${nest(MAX_PAYLOAD_DEPTH)}}`,
      JSON.stringify({ s: '['.repeat(500), t: '{'.repeat(500) }),
      JSON.stringify({ s: 'quote \\" and [[[' + '['.repeat(100) }),
      JSON.stringify([{ a: [{ b: [{ c: 'x"]}]' }] }] }]),
    ];
    for (const payload of payloads) {
      const lua = await run('payloads', 'm', payload);
      let ts: string;
      try {
        const v = JSON.parse(payload) as unknown;
        ts = typeof v !== 'object' || v === null ? 'INVALID_PAYLOAD' : nestingDepth(v, MAX_PAYLOAD_DEPTH) > MAX_PAYLOAD_DEPTH ? 'PAYLOAD_TOO_DEEP' : 'ok';
      } catch {
        ts = 'INVALID_PAYLOAD';
      }
      expect(lua, `payload ${payload.slice(0, 60)}`).toBe(ts);
    }
  });

  it('uses the defaults of engine/defaults.ts for the arguments a caller leaves empty', async () => {
    const channel = 'defaults';
    expect(await run(channel, 'm', '{}', ['', '', '', ''])).toBe('ok');
    const base = `${prefix}:{${channel}}`;
    const [metaTtl, streamTtl] = await Promise.all([redis.pttl(`${base}:meta`), redis.pttl(`${base}:stream`)]);
    // Each TTL plus the renewal margin (a tenth of it, at most a minute).
    expect(metaTtl).toBeGreaterThan(ENGINE_DEFAULTS.historyMetaTtl);
    expect(metaTtl).toBeLessThanOrEqual(ENGINE_DEFAULTS.historyMetaTtl + 60_000);
    expect(streamTtl).toBeGreaterThan(ENGINE_DEFAULTS.historyTtl);
    expect(streamTtl).toBeLessThanOrEqual(ENGINE_DEFAULTS.historyTtl + 60_000);
    // The history size default: more than 1000 publishes keep exactly the last 1000.
    for (let i = 0; i < ENGINE_DEFAULTS.historySize + 300; i++) await run(channel, 'm', '{}', ['', '', '', '']);
    expect(await redis.xlen(`${base}:stream`)).toBe(ENGINE_DEFAULTS.historySize);
    expect((await redis.xrange(`${base}:stream`, '-', '+', 'COUNT', 1))[0]?.[0]).toBe(`${301 + 1}-0`);
  });
});

describe('lua/publish.lua renews TTLs ahead, not at every publish', () => {
  // history TTL 20 s (margin 2 s), meta TTL 50 s (margin 5 s)
  const args = ['1000', '20000', '50000'];
  const keys = (channel: string): { meta: string; stream: string } => ({
    meta: `${prefix}:{${channel}}:meta`,
    stream: `${prefix}:{${channel}}:stream`,
  });
  const expiries = async (channel: string): Promise<{ sx: number; mx: number; stream: number; meta: number }> => {
    const k = keys(channel);
    const [[sx, mx], stream, meta] = await Promise.all([redis.hmget(k.meta, 'sx', 'mx'), redis.pttl(k.stream), redis.pttl(k.meta)]);
    return { sx: Number(sx), mx: Number(mx), stream, meta };
  };
  const serverNow = async (): Promise<number> => {
    const [s, us] = await redis.time();
    return Number(s) * 1000 + Math.floor(Number(us) / 1000);
  };

  it('gives each key its TTL plus a margin, records the expiry in meta, and leaves both alone while the margin lasts', async () => {
    const channel = 'renew-ahead';
    expect(await run(channel, 'm', '{}', args)).toBe('ok');
    const first = await expiries(channel);
    const now = await serverNow();
    expect(first.stream).toBeGreaterThan(20_000);
    expect(first.stream).toBeLessThanOrEqual(22_000);
    expect(first.meta).toBeGreaterThan(50_000);
    expect(first.meta).toBeLessThanOrEqual(55_000);
    expect(first.sx).toBeGreaterThan(now + 20_000 - 1000);
    expect(first.sx).toBeLessThanOrEqual(now + 22_000);
    expect(first.mx).toBeGreaterThan(now + 50_000 - 1000);
    for (let i = 0; i < 20; i++) expect(await run(channel, 'm', '{}', args)).toBe('ok');
    const later = await expiries(channel);
    // Not renewed (the recorded expiries are the first publish's), yet each key still outlives its TTL from now.
    expect([later.sx, later.mx]).toEqual([first.sx, first.mx]);
    expect(later.stream).toBeGreaterThan(20_000 - 1000);
    expect(later.meta).toBeGreaterThan(50_000 - 1000);
    expect(await redis.xlen(keys(channel).stream)).toBe(21);
  });

  it('renews once the margin is used up, and never shortens a longer meta TTL', async () => {
    const channel = 'renew-due';
    const k = keys(channel);
    expect(await run(channel, 'm', '{}', args)).toBe('ok');
    // As if the margin had run out: both keys expire in less than their TTL, and meta says so.
    const now = await serverNow();
    await Promise.all([
      redis.pexpire(k.stream, 15_000),
      redis.pexpire(k.meta, 500_000), // longer than this publisher's meta TTL (another publisher's)
      redis.hset(k.meta, 'sx', String(now + 15_000), 'mx', String(now + 40_000)),
    ]);
    expect(await run(channel, 'm', '{}', args)).toBe('ok');
    const after = await expiries(channel);
    expect(after.stream).toBeGreaterThan(20_000);
    expect(after.sx).toBeGreaterThan(now + 20_000);
    expect(after.meta).toBeGreaterThan(400_000);
    expect(after.mx).toBeGreaterThan(now + 50_000);
  });

  it('gives a TTL to a stream that expired (or was evicted) while meta lived, whatever meta recorded', async () => {
    const channel = 'renew-gone';
    const k = keys(channel);
    expect(await run(channel, 'm', '{"a":1}', args)).toBe('ok');
    await redis.del(k.stream);
    expect(await run(channel, 'm', '{"a":2}', args)).toBe('ok');
    const after = await expiries(channel);
    expect(after.stream).toBeGreaterThan(20_000);
    expect(after.stream).toBeLessThanOrEqual(22_000);
    expect(await redis.hget(k.meta, 'bytes')).toBe(String(Buffer.byteLength((await redis.xrange(k.stream, '-', '+'))[0]?.[1][1] ?? '')));
  });

  it('gives a TTL to a stream written again after a frame too large to keep', async () => {
    const channel = 'renew-large';
    const k = keys(channel);
    const small = [...args, '', '', '200']; // ARGV[10]: 200 bytes kept
    expect(await run(channel, 'm', '{}', small)).toBe('ok');
    expect(await run(channel, 'm', `{"p":"${'x'.repeat(300)}"}`, small)).toBe('ok');
    expect(await redis.exists(k.stream)).toBe(0);
    expect(await run(channel, 'm', '{}', small)).toBe('ok');
    expect(await redis.pttl(k.stream)).toBeGreaterThan(20_000);
  });
});

describe("lua/publish.lua knows the stream's length from its seqs (meta field first), without XLEN", () => {
  const size = ['5']; // ARGV[5]: 5 entries kept
  const k = (channel: string): { meta: string; stream: string } => ({ meta: `${prefix}:{${channel}}:meta`, stream: `${prefix}:{${channel}}:stream` });
  const seqs = async (channel: string): Promise<number[]> => (await redis.xrange(k(channel).stream, '-', '+')).map(([id]) => Number(id.split('-')[0]));
  const publishN = async (channel: string, n: number): Promise<void> => {
    for (let i = 0; i < n; i++) expect(await run(channel, 'm', '{}', size)).toBe('ok');
  };

  it('keeps exactly the last entries, and records the oldest one kept', async () => {
    await publishN('len-exact', 12);
    expect(await seqs('len-exact')).toEqual([8, 9, 10, 11, 12]);
    expect(await redis.hget(k('len-exact').meta, 'first')).toBe('8');
  });

  it('counts with XLEN once for a meta written without first (an earlier version)', async () => {
    await publishN('len-legacy', 4);
    await redis.hdel(k('len-legacy').meta, 'first');
    await publishN('len-legacy', 3);
    expect(await seqs('len-legacy')).toEqual([3, 4, 5, 6, 7]);
    expect(await redis.hget(k('len-legacy').meta, 'first')).toBe('3');
  });

  it('deletes nothing it should keep when entries went behind its back (an earlier version trimmed them)', async () => {
    const { stream } = k('len-behind');
    await publishN('len-behind', 5);
    await redis.xdel(stream, '1-0', '2-0');
    await publishN('len-behind', 1);
    expect(await seqs('len-behind')).toEqual([3, 4, 5, 6]);
    await publishN('len-behind', 2);
    expect(await seqs('len-behind')).toEqual([4, 5, 6, 7, 8]);
  });

  it('starts the stream again when it holds ids past the seq (history of no epoch), and answers any other XADD error', async () => {
    const { meta, stream } = k('len-stale');
    await publishN('len-stale', 3);
    await redis.hset(meta, 'seq', '1');
    await publishN('len-stale', 1);
    expect(await seqs('len-stale')).toEqual([2]);
    await redis.del(stream);
    await redis.set(stream, 'not a stream');
    expect(await run('len-stale', 'm', '{}', size)).toBe('WRONGTYPE');
    expect(await redis.get(stream)).toBe('not a stream');
    expect(await redis.hget(meta, 'seq')).toBe('2');
  });

  it('keeps the bound across publishes without history (history size 0 leaves the stream as it is)', async () => {
    await publishN('len-older', 5);
    for (let i = 0; i < 3; i++) expect(await run('len-older', 'm', '{}', ['0'])).toBe('ok'); // history size 0: no entries
    expect(await seqs('len-older')).toEqual([1, 2, 3, 4, 5]);
    await publishN('len-older', 5);
    expect(await seqs('len-older')).toEqual([5, 9, 10, 11, 12, 13].slice(1));
  });

  it('counts again when first is past the seq (an epoch restarted by an earlier version)', async () => {
    await publishN('len-past', 3);
    await redis.hset(k('len-past').meta, 'first', '1000');
    await publishN('len-past', 4);
    expect(await seqs('len-past')).toEqual([3, 4, 5, 6, 7]);
  });

  it('starts counting again on a stream that expired, and after a frame too large to keep', async () => {
    await publishN('len-gone', 5);
    await redis.del(k('len-gone').stream);
    await publishN('len-gone', 6);
    expect(await seqs('len-gone')).toEqual([7, 8, 9, 10, 11]);
    const small = ['5', '', '', '', '', '400']; // ARGV[10]: 400 bytes kept (five of these frames)
    expect(await run('len-gone', 'm', `{"p":"${'x'.repeat(500)}"}`, small)).toBe('ok');
    expect(await redis.exists(k('len-gone').stream)).toBe(0);
    for (let i = 0; i < 7; i++) expect(await run('len-gone', 'm', '{}', small)).toBe('ok');
    expect(await seqs('len-gone')).toEqual([15, 16, 17, 18, 19]);
  });
});

describe('lua/publish.lua counts presence with the publish (ARGV[12], ARGV[13])', () => {
  const keysOf = (channel: string, idem?: string): string[] => {
    const base = `${prefix}:{${channel}}`;
    return [`${base}:meta`, `${base}:stream`, ...(idem === undefined ? [] : [`${base}:idem:${idem}`])];
  };
  const args = (channel: string, extra: Array<string | number> = []): Array<string | number> => [
    channel,
    'm',
    '{}',
    'e1',
    '',
    '',
    '',
    '',
    '0',
    '',
    '',
    ...extra,
  ];

  it("answers the channel's live subscribers and the user's live connections, for a new publish and for a duplicate", async () => {
    const now = Date.now();
    const members = `${prefix}:{user:cu1}:members`;
    const user = `${prefix}:user:{cu1}`;
    // Two live subscribers and one expired; three live connections of the user and one expired.
    await redis.zadd(members, now + 30_000, 'a', now + 30_000, 'b', now - 1, 'gone');
    await redis.zadd(user, now + 30_000, 'a', now + 30_000, 'b', now + 30_000, 'c', now - 1, 'gone');
    const both = [...keysOf('user:cu1', 'id1'), members, user];
    expect(await script.run(redis, both, args('user:cu1', [now, 2]))).toEqual([1, 'e1', 0, 2, 3]);
    expect(await script.run(redis, both, args('user:cu1', [now, 2]))).toEqual([1, 'e1', 1, 2, 3]);
    // Subscribers only (a Redis Cluster, where the user's key is on another slot), without an idempotency key.
    expect(await script.run(redis, [...keysOf('user:cu1'), members], args('user:cu1', [now, 1]))).toEqual([2, 'e1', 0, 2]);
    // Without ARGV[12] the reply is the outcome alone, as PHP and every other publisher call it.
    expect(await script.run(redis, keysOf('user:cu1'), args('user:cu1'))).toEqual([3, 'e1', 0]);
  });

  it("refuses presence keys that are not the channel's, and counts that do not match the keys, writing nothing", async () => {
    const now = Date.now();
    const code = async (keys: string[], extra: Array<string | number>): Promise<string> =>
      script.run(redis, keys, args('user:cu2', extra)).then(
        () => 'ok',
        (err: Error) => err.message.split(' ', 1)[0] as string,
      );
    const members = `${prefix}:{user:cu2}:members`;
    expect(await code([...keysOf('user:cu2'), `${prefix}:{other}:members`], [now, 1])).toBe('INVALID_ARGUMENT');
    expect(await code([...keysOf('user:cu2'), members, `${prefix}:user:{someone-else}`], [now, 2])).toBe('INVALID_ARGUMENT');
    expect(await code([...keysOf('news'), `${prefix}:{news}:members`], [now, 2])).toBe('INVALID_ARGUMENT');
    expect(await code([...keysOf('user:cu2'), members], [now, 3])).toBe('INVALID_ARGUMENT');
    expect(await code([...keysOf('user:cu2'), members], ['soon', 1])).toBe('INVALID_ARGUMENT');
    expect(await redis.exists(`${prefix}:{user:cu2}:meta`)).toBe(0);
    expect(await code([...keysOf('user:cu2'), members], [now, 1])).toBe('ok');
  });
});
