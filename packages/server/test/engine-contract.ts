/**
 * The engine contract: one suite every Engine implementation must pass (memory now, Redis too).
 * `make` builds a fresh, isolated engine (its own key space) with the given limits.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { DisconnectTarget, Engine, EngineHandlers, EngineMessage } from '../src/engine/types.js';
import type { InboxMessage } from '../src/engine/inbox.js';
import type { OutboxJob } from '../src/engine/outbox.js';

export interface ContractLimits {
  historySize?: number;
  historyTtl?: number;
  historyMaxBytes?: number;
  idempotencyTtl?: number;
}

export interface ContractFactory {
  make(limits?: ContractLimits): Promise<Engine>;
  /** Moves the engine's notion of time forward (a manual clock, or real waiting for engines that use server time). */
  advance?(ms: number): Promise<void>;
}

class Recorder implements EngineHandlers {
  readonly messages: EngineMessage[] = [];
  readonly directs: Array<[string, string]> = [];
  /** The messages handed to `direct`, as they came. */
  readonly directMessages: EngineMessage[] = [];
  readonly disconnects: DisconnectTarget[] = [];
  local = new Set<string>();
  /** The user of each local client (for the count `disconnect` answers). */
  readonly users = new Map<string, string>();
  private waiters: Array<() => void> = [];
  message(msg: EngineMessage): void {
    this.messages.push(msg);
    this.wake();
  }
  direct(client: string, msg: EngineMessage): boolean {
    if (!this.local.has(client)) return false;
    this.directs.push([client, msg.frame.toString()]);
    this.directMessages.push(msg);
    this.wake();
    return true;
  }
  readonly inboxes: InboxMessage[] = [];
  inbox(msg: InboxMessage): void {
    this.inboxes.push(msg);
    this.wake();
  }
  disconnect(target: DisconnectTarget): number {
    this.disconnects.push(target);
    this.wake();
    if (target.client !== undefined) return this.local.has(target.client) ? 1 : 0;
    return [...this.local].filter((c) => this.users.get(c) === target.user).length;
  }
  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
  async until(pred: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
}

const frameOf = (m: EngineMessage) => JSON.parse(m.frame.toString()) as Record<string, unknown>;

export function engineContract(name: string, factory: ContractFactory): void {
  describe(`engine contract: ${name}`, () => {
    const open: Engine[] = [];
    afterEach(async () => {
      for (const e of open.splice(0)) await e.close();
    });
    const start = async (limits?: ContractLimits) => {
      const engine = await factory.make(limits);
      open.push(engine);
      const rec = new Recorder();
      await engine.start(rec);
      return { engine, rec };
    };

    it("bounds each channel's history by bytes: oldest first, and a message over the bound is published but not kept", async () => {
      const { engine } = await start({ historySize: 100, historyMaxBytes: 2500 });
      const payload = (n: number): string => JSON.stringify({ pad: 'x'.repeat(n) });
      for (let i = 0; i < 5; i++) await engine.broker.publish({ channel: 'b', type: 't', payloadJson: payload(900) });
      const p = await engine.history.position('b');
      // ~950-byte frames under 2500 bytes: the newest two are kept; recovery from further back fails.
      expect((await engine.history.read('b', { limit: 100 })).messages.map((m) => m.seq)).toEqual([4, 5]);
      expect((await engine.history.recover('b', 3, p.epoch)).messages.map((m) => m.seq)).toEqual([4, 5]);
      expect((await engine.history.recover('b', 2, p.epoch)).recovered).toBe(false);
      const big = await engine.broker.publish({ channel: 'b', type: 't', payloadJson: payload(3000) });
      expect(big.seq).toBe(6);
      // Not kept, and the history before it is of no use: nothing across it recovers; after it, all does.
      expect((await engine.history.recover('b', 5, p.epoch)).recovered).toBe(false);
      await engine.broker.publish({ channel: 'b', type: 't', payloadJson: payload(10) });
      expect((await engine.history.recover('b', 6, p.epoch)).messages.map((m) => m.seq)).toEqual([7]);
    });

    it('recovers a position of 0 in any epoch (it holds nothing), and no other position across epochs', async () => {
      const { engine } = await start();
      await engine.broker.publish({ channel: 'z', type: 't', payloadJson: '{"n":1}' });
      await engine.broker.publish({ channel: 'z', type: 't', payloadJson: '{"n":2}' });
      const fromZero = await engine.history.recover('z', 0, 'some-old-epoch');
      expect(fromZero.recovered).toBe(true);
      expect(fromZero.messages.map((m) => m.seq)).toEqual([1, 2]);
      expect((await engine.history.recover('z', 1, 'some-old-epoch')).recovered).toBe(false);
    });

    it('assigns seq 1, 2, 3 per channel with one epoch, and hands messages to subscribed nodes only', async () => {
      const { engine, rec } = await start();
      await engine.broker.subscribe('a');
      const r1 = await engine.broker.publish({ channel: 'a', type: 't', payloadJson: '{"n":1}' });
      const r2 = await engine.broker.publish({ channel: 'a', type: 't', payloadJson: '{"n":2}' });
      const other = await engine.broker.publish({ channel: 'b', type: 't', payloadJson: '{}' });
      expect([r1.seq, r2.seq, other.seq]).toEqual([1, 2, 1]);
      expect(r1.epoch).toBe(r2.epoch);
      expect(r1.duplicate).toBe(false);
      await rec.until(() => rec.messages.length >= 2, 'two messages');
      expect(rec.messages.map((m) => [m.channel, m.seq, m.epoch])).toEqual([
        ['a', 1, r1.epoch],
        ['a', 2, r1.epoch],
      ]);
      expect(frameOf(rec.messages[0] as EngineMessage)).toEqual({ type: 't', channel: 'a', payload: { n: 1 }, seq: 1 });
      await engine.broker.unsubscribe('a');
      await engine.broker.subscribe('b');
      await engine.broker.publish({ channel: 'a', type: 't', payloadJson: '{}' });
      await engine.broker.publish({ channel: 'b', type: 't', payloadJson: '{}' });
      await rec.until(() => rec.messages.some((m) => m.channel === 'b'), 'message on b');
      expect(rec.messages.filter((m) => m.channel === 'a')).toHaveLength(2);
    });

    it('keeps payload bytes intact (emoji, CJK, escapes)', async () => {
      const { engine, rec } = await start();
      await engine.broker.subscribe('u');
      const payloadJson = JSON.stringify({ t: 'héllo 😀 中文 "q" \\ \u2028' });
      await engine.broker.publish({ channel: 'u', type: 't', payloadJson });
      await rec.until(() => rec.messages.length === 1, 'message');
      expect(frameOf(rec.messages[0] as EngineMessage).payload).toEqual(JSON.parse(payloadJson));
      const page = await engine.history.read('u', { limit: 10 });
      expect(frameOf(page.messages[0] as EngineMessage).payload).toEqual(JSON.parse(payloadJson));
    });

    it('reports a position for channels never published to', async () => {
      const { engine } = await start();
      const p = await engine.history.position('fresh');
      expect(p.seq).toBe(0);
      expect(typeof p.epoch).toBe('string');
      expect((await engine.history.position('fresh')).epoch).toBe(p.epoch);
      const r = await engine.broker.publish({ channel: 'fresh', type: 't', payloadJson: '{}' });
      expect(r).toMatchObject({ seq: 1, epoch: p.epoch });
    });

    it('recovers everything after since, or nothing (recovered:false): never partial', async () => {
      const { engine } = await start({ historySize: 5 });
      let epoch = '';
      for (let i = 1; i <= 8; i++) epoch = (await engine.broker.publish({ channel: 'h', type: 't', payloadJson: `{"i":${i}}` })).epoch;
      const ok = await engine.history.recover('h', 3, epoch);
      expect(ok.recovered).toBe(true);
      expect(ok.position).toEqual({ seq: 8, epoch });
      expect(ok.messages.map((m) => m.seq)).toEqual([4, 5, 6, 7, 8]);
      expect(frameOf(ok.messages[0] as EngineMessage)).toEqual({ type: 't', channel: 'h', payload: { i: 4 }, seq: 4 });
      expect(await engine.history.recover('h', 2, epoch)).toMatchObject({ recovered: false, messages: [] });
      expect(await engine.history.recover('h', 8, epoch)).toMatchObject({ recovered: true, messages: [] });
      expect(await engine.history.recover('h', 9, epoch)).toMatchObject({ recovered: false, messages: [] });
      expect(await engine.history.recover('h', 6, 'other')).toMatchObject({ recovered: false, messages: [] });
    });

    it('reads pages of history', async () => {
      const { engine } = await start();
      for (let i = 1; i <= 6; i++) await engine.broker.publish({ channel: 'p', type: 't', payloadJson: `{"i":${i}}` });
      expect((await engine.history.read('p', { limit: 3 })).messages.map((m) => m.seq)).toEqual([4, 5, 6]);
      const page = await engine.history.read('p', { since: 1, limit: 2 });
      expect(page).toMatchObject({ complete: true, position: { seq: 6 } });
      expect(page.messages.map((m) => m.seq)).toEqual([2, 3]);
      expect((await engine.history.read('p', { since: 1, epoch: 'nope', limit: 2 })).complete).toBe(false);
    });

    it('publishes once per idempotency key and channel', async () => {
      const { engine } = await start();
      const a = await engine.broker.publish({ channel: 'i', type: 't', payloadJson: '{}', idempotencyKey: 'k1' });
      const b = await engine.broker.publish({ channel: 'i', type: 't', payloadJson: '{}', idempotencyKey: 'k1' });
      const c = await engine.broker.publish({ channel: 'j', type: 't', payloadJson: '{}', idempotencyKey: 'k1' });
      expect(a).toMatchObject({ seq: 1, duplicate: false });
      expect(b).toMatchObject({ seq: 1, duplicate: true, epoch: a.epoch });
      expect(c).toMatchObject({ seq: 1, duplicate: false });
      expect((await engine.history.position('i')).seq).toBe(1);
    });

    if (factory.advance) {
      const advance = factory.advance;
      it('expires history after its TTL (recovered:false), keeping seq and epoch', async () => {
        const { engine } = await start({ historyTtl: 1000 });
        const r = await engine.broker.publish({ channel: 'x', type: 't', payloadJson: '{}' });
        await engine.broker.publish({ channel: 'x', type: 't', payloadJson: '{}' });
        await advance(1500);
        expect(await engine.history.recover('x', 1, r.epoch)).toMatchObject({ recovered: false, position: { seq: 2, epoch: r.epoch } });
        expect((await engine.broker.publish({ channel: 'x', type: 't', payloadJson: '{}' })).seq).toBe(3);
      });
    }

    it('delivers direct messages to the node that has the client, and says when none has', async () => {
      const { engine, rec } = await start();
      rec.local.add('c1');
      expect(await engine.broker.publishDirect({ client: 'c1', type: 'd', payloadJson: '{"x":1}' })).toBe(true);
      expect(JSON.parse((rec.directs[0] as [string, string])[1])).toEqual({ type: 'd', channel: 'client:c1', payload: { x: 1 }, seq: 0 });
      expect(await engine.broker.publishDirect({ client: 'ghost', type: 'd', payloadJson: '{}' })).toBe(false);
      // What the handler gets: the pseudo-channel of the client, seq 0, no epoch.
      expect(rec.directMessages).toHaveLength(1);
      expect(rec.directMessages[0]).toMatchObject({ channel: 'client:c1', seq: 0, epoch: '' });
    });

    it('delivers a direct message once per idempotency key and client; a key that found no client may be used again', async () => {
      const { engine, rec } = await start();
      rec.local.add('c1');
      const once = { client: 'c1', type: 'd', payloadJson: '{"n":1}', idempotencyKey: 'k1' };
      expect(await engine.broker.publishDirect(once)).toBe(true);
      expect(await engine.broker.publishDirect(once)).toBe(true);
      expect(rec.directs.map(([c]) => c)).toEqual(['c1']);
      // Only deliveries are remembered: "no such client" leaves the key free for the retry.
      const retried = { client: 'c2', type: 'd', payloadJson: '{"n":2}', idempotencyKey: 'k2' };
      expect(await engine.broker.publishDirect(retried)).toBe(false);
      rec.local.add('c2');
      expect(await engine.broker.publishDirect(retried)).toBe(true);
      expect(await engine.broker.publishDirect(retried)).toBe(true);
      // The key is per client.
      expect(await engine.broker.publishDirect({ ...once, client: 'c2' })).toBe(true);
      expect(rec.directs.map(([c, f]) => [c, (JSON.parse(f) as { payload: unknown }).payload])).toEqual([
        ['c1', { n: 1 }],
        ['c2', { n: 2 }],
        ['c2', { n: 1 }],
      ]);
    });

    it('hands a disconnect to the node with its target, by user and by client, and resolves how many connections it concerns', async () => {
      const { engine, rec } = await start();
      const conns: Array<[string, string]> = [
        ['c1', 'u1'],
        ['c2', 'u1'],
        ['c3', 'u2'],
      ];
      for (const [client, user] of conns) {
        rec.local.add(client);
        rec.users.set(client, user);
        await engine.presence.add({ client, user });
      }
      const byUser: DisconnectTarget = { user: 'u1', code: 4509, reason: 'banned' };
      expect(await engine.broker.disconnect(byUser)).toBe(2);
      await rec.until(() => rec.disconnects.length === 1, 'the disconnect by user');
      expect(rec.disconnects[0]).toEqual(byUser);
      const byClient: DisconnectTarget = { client: 'c3', code: 4000, reason: 'bye' };
      expect(await engine.broker.disconnect(byClient)).toBe(1);
      await rec.until(() => rec.disconnects.length === 2, 'the disconnect by client');
      expect(rec.disconnects[1]).toEqual(byClient);
      expect(await engine.broker.disconnect({ client: 'ghost', code: 4000, reason: 'bye' })).toBe(0);
      expect(await engine.broker.disconnect({ user: 'nobody', code: 4509, reason: 'bye' })).toBe(0);
    });

    it('tracks presence: users online with connection counts, channel subscribers', async () => {
      const { engine } = await start();
      const c1 = { client: 'c1', user: '42' };
      const c2 = { client: 'c2', user: '42' };
      const c3 = { client: 'c3', user: null };
      for (const c of [c1, c2, c3]) await engine.presence.add(c);
      await engine.presence.join('room', c1);
      await engine.presence.join('room', c3);
      expect(await engine.presence.online(['42', '43'])).toEqual(
        new Map([
          ['42', 2],
          ['43', 0],
        ]),
      );
      expect(await engine.presence.subscribers('room')).toBe(2);
      await engine.presence.leave('room', c1);
      await engine.presence.remove(c1);
      expect(await engine.presence.online(['42'])).toEqual(new Map([['42', 1]]));
      expect(await engine.presence.subscribers('room')).toBe(1);
      expect(await engine.presence.subscribers('empty')).toBe(0);
    });

    it('answers a publish with counts with the subscribers and the user connections Presence reports', async () => {
      const { engine } = await start();
      const c1 = { client: 'k1', user: '42' };
      const c2 = { client: 'k2', user: '42' };
      const c3 = { client: 'k3', user: null };
      for (const c of [c1, c2, c3]) await engine.presence.add(c);
      for (const c of [c1, c2]) await engine.presence.join('user:42', c);
      await engine.presence.join('room', c3);
      const toUser = await engine.broker.publish({ channel: 'user:42', type: 't', payloadJson: '{}', counts: true, idempotencyKey: 'once' });
      expect([toUser.subscribers, toUser.online]).toEqual([2, 2]);
      const toRoom = await engine.broker.publish({ channel: 'room', type: 't', payloadJson: '{}', counts: true });
      expect(toRoom.subscribers).toBe(1);
      expect(toRoom.online).toBeUndefined();
      const nobody = await engine.broker.publish({ channel: 'user:43', type: 't', payloadJson: '{}', counts: true });
      expect([nobody.subscribers, nobody.online]).toEqual([0, 0]);
      // Without counts, nothing is counted.
      const plain = await engine.broker.publish({ channel: 'user:42', type: 't', payloadJson: '{}' });
      expect([plain.subscribers, plain.online]).toEqual([undefined, undefined]);
      // A duplicate may answer counts too; when it does, they are the current ones.
      await engine.presence.remove(c2);
      const again = await engine.broker.publish({ channel: 'user:42', type: 't', payloadJson: '{}', counts: true, idempotencyKey: 'once' });
      expect(again.duplicate).toBe(true);
      if (again.online !== undefined) expect(again.online).toBe(1);
    });

    it('answers presence for 1000 users at once', async () => {
      const { engine } = await start();
      const users = Array.from({ length: 1000 }, (_, i) => `u${i}`);
      for (let i = 0; i < 1000; i += 3) await engine.presence.add({ client: `c${i}`, user: `u${i}` });
      const online = await engine.presence.online(users);
      expect(online.size).toBe(1000);
      expect([...online.values()].filter((n) => n > 0)).toHaveLength(334);
    });

    it('accepts namespaced channels ($<kind>.<id>:<name>) with percent-encoded types, as native ones', async () => {
      const { engine, rec } = await start();
      const channel = '$pusher.app-1:presence-room,a;b';
      await engine.broker.subscribe(channel);
      const r = await engine.broker.publish({ channel, type: 'App%5CEvents%5CShipped', payloadJson: '{"a":1}' });
      expect(r.seq).toBe(1);
      await rec.until(() => rec.messages.length === 1, 'namespaced message');
      expect(frameOf(rec.messages[0] as EngineMessage)).toEqual({ type: 'App%5CEvents%5CShipped', channel, payload: { a: 1 }, seq: 1 });
      expect((await engine.history.read(channel, { limit: 10 })).messages.map((m) => m.seq)).toEqual([1]);
    });

    it('marks a publish with the connection it excludes, live only (history keeps the message)', async () => {
      const { engine, rec } = await start();
      await engine.broker.subscribe('ex');
      await engine.broker.publish({ channel: 'ex', type: 't', payloadJson: '{}', exclude: 'c1.2' });
      await engine.broker.publish({ channel: 'ex', type: 't', payloadJson: '{}' });
      await rec.until(() => rec.messages.length === 2, 'two messages');
      expect(rec.messages.map((m) => [m.seq, m.exclude])).toEqual([
        [1, 'c1.2'],
        [2, undefined],
      ]);
      const page = await engine.history.read('ex', { limit: 10 });
      expect(page.messages.map((m) => [m.seq, m.exclude])).toEqual([
        [1, undefined],
        [2, undefined],
      ]);
    });

    it('broadcasts unsequenced messages (seq 0, no epoch, not in history) to subscribed nodes, with exclude and user', async () => {
      const { engine, rec } = await start();
      const channel = '$pusher.a:private-chat';
      await engine.broker.subscribe(channel);
      await engine.broker.publish({ channel, type: 't', payloadJson: '{"n":1}' });
      await engine.broker.broadcast({ channel, type: 'client-typing', payloadJson: '{"t":1}', exclude: '12.34', user: 'u"1' });
      await engine.broker.broadcast({ channel, type: 'x', payloadJson: '[]' });
      await engine.broker.broadcast({ channel: '$pusher.a:nobody', type: 'x', payloadJson: '{}' });
      await engine.broker.publish({ channel, type: 't', payloadJson: '{"n":2}' });
      await rec.until(() => rec.messages.length >= 4, 'four messages');
      expect(rec.messages.map((m) => [m.seq, m.exclude])).toEqual([
        [1, undefined],
        [0, '12.34'],
        [0, undefined],
        [2, undefined],
      ]);
      const b = rec.messages[1] as EngineMessage;
      expect(b.epoch).toBe('');
      expect(frameOf(b)).toEqual({ type: 'client-typing', channel, payload: { t: 1 }, seq: 0, user: 'u"1' });
      expect(frameOf(rec.messages[2] as EngineMessage)).toEqual({ type: 'x', channel, payload: [], seq: 0 });
      expect((await engine.history.position(channel)).seq).toBe(2);
      expect((await engine.history.read(channel, { limit: 10 })).messages.map((m) => m.seq)).toEqual([1, 2]);
    });

    it('keeps channel members: first connection and last disconnection per user, info, one entry per user', async () => {
      const { engine } = await start();
      const m = engine.members;
      const ch = '$pusher.a:presence-room';
      expect(await m.join(ch, 'c1', { user: '1', infoJson: '{"name":"A"}' })).toEqual({ first: true });
      expect(await m.join(ch, 'c2', { user: '1', infoJson: '{"name":"A2"}' })).toEqual({ first: false });
      expect(await m.join(ch, 'c3', { user: '2', infoJson: 'null' })).toEqual({ first: true });
      expect(await m.join('$pusher.a:presence-other', 'c1', { user: '1', infoJson: '{}' })).toEqual({ first: true });
      expect(await m.count(ch)).toBe(2);
      const list = (await m.list(ch)).sort((a, b) => (a.user < b.user ? -1 : 1));
      expect(list).toEqual([
        { user: '1', infoJson: '{"name":"A2"}' },
        { user: '2', infoJson: 'null' },
      ]);
      expect(await m.leave(ch, 'c1')).toEqual({ user: '1', last: false });
      expect(await m.leave(ch, 'c1')).toBeNull();
      expect(await m.leave(ch, 'c2')).toEqual({ user: '1', last: true });
      expect(await m.count(ch)).toBe(1);
      expect(await m.leave(ch, 'c3')).toEqual({ user: '2', last: true });
      expect(await m.list(ch)).toEqual([]);
      expect(await m.count('$pusher.a:presence-other')).toBe(1);
      // The same connection joining again as the same user is not a new member.
      expect(await m.join(ch, 'c4', { user: '3', infoJson: '{}' })).toEqual({ first: true });
      expect(await m.join(ch, 'c4', { user: '3', infoJson: '{}' })).toEqual({ first: false });
      expect(await m.count(ch)).toBe(1);
      expect(await m.leave(ch, 'c4')).toEqual({ user: '3', last: true });
    });

    it('reports itself ready while running', async () => {
      const { engine } = await start();
      await expect(engine.check()).resolves.toBeUndefined();
    });

    // ---- inbox ----------------------------------------------------------------------------------------

    const opts = { max: 1000, idempotencyTtl: 300_000 };
    const put = (engine: Engine, user: string, n: number, extra: Partial<Parameters<Engine['inbox']['put']>[0]> = {}) =>
      engine.inbox.put({ user, type: 'note', payloadJson: JSON.stringify({ n }), ttl: 60_000, receipt: false, ...extra }, opts);
    const payloads = (list: InboxMessage[]) => list.map((m) => (JSON.parse(m.frame.toString()) as { payload: { n: number } }).payload.n);

    it('keeps inbox messages per user in order until removed, with the canonical frame; shared by every reader', async () => {
      const { engine } = await start();
      const a = await put(engine, '42', 1);
      const b = await put(engine, '42', 2);
      await put(engine, '43', 9);
      expect(a).toMatchObject({ duplicate: false, live: false, dropped: 0 });
      expect(a.id).not.toBe(b.id);
      const list = await engine.inbox.list('42', 100);
      expect(payloads(list)).toEqual([1, 2]);
      const frame = JSON.parse((list[0] as InboxMessage).frame.toString()) as Record<string, unknown>;
      expect(frame).toEqual({ type: 'note', channel: 'user:42', payload: { n: 1 }, seq: 0, inbox: a.id, time: expect.any(Number) });
      expect(list[0]).toMatchObject({ id: a.id, user: '42', receipt: false });
      expect((list[0] as InboxMessage).expires).toBe((list[0] as InboxMessage).time + 60_000);
      expect((await engine.inbox.remove('42', [a.id, 'unknown'])).map((m) => m.id)).toEqual([a.id]);
      expect(payloads(await engine.inbox.list('42', 100))).toEqual([2]);
      expect(await engine.inbox.remove('42', [a.id])).toEqual([]);
      expect((await engine.inbox.remove('43', 'all')).length).toBe(1);
      expect(await engine.inbox.list('43', 100)).toEqual([]);
    });

    it('hands new inbox messages to a node that watches the user, and says so (live)', async () => {
      const { engine, rec } = await start();
      await engine.inbox.watch('42');
      const live = await put(engine, '42', 1);
      expect(live.live).toBe(true);
      await rec.until(() => rec.inboxes.length === 1, 'the inbox message');
      expect(rec.inboxes[0]).toMatchObject({ id: live.id, user: '42', receipt: false });
      expect(payloads(rec.inboxes)).toEqual([1]);
      await engine.inbox.unwatch('42');
      expect((await put(engine, '42', 2)).live).toBe(false);
      await put(engine, '43', 3);
      await engine.inbox.watch('42');
      const again = await put(engine, '42', 4);
      await rec.until(() => rec.inboxes.length === 2, 'the second inbox message');
      expect(rec.inboxes.map((m) => m.id)).toEqual([live.id, again.id]);
    });

    it("caps a user's inbox, dropping the oldest and counting them; stores once per idempotency key", async () => {
      const { engine } = await start();
      const small = { max: 3, idempotencyTtl: 300_000 };
      const outcomes = [];
      for (let n = 1; n <= 5; n++)
        outcomes.push(await engine.inbox.put({ user: 'u', type: 't', payloadJson: JSON.stringify({ n }), ttl: 60_000, receipt: false }, small));
      expect(outcomes.map((o) => o.dropped)).toEqual([0, 0, 0, 1, 1]);
      expect(payloads(await engine.inbox.list('u', 100))).toEqual([3, 4, 5]);
      expect(payloads(await engine.inbox.list('u', 2))).toEqual([3, 4]);
      const first = await put(engine, 'k', 1, { idempotencyKey: 'same' });
      const second = await put(engine, 'k', 2, { idempotencyKey: 'same' });
      expect(second).toMatchObject({ id: first.id, duplicate: true });
      expect(payloads(await engine.inbox.list('k', 100))).toEqual([1]);
    });

    if (factory.advance) {
      const advance = factory.advance;
      it('expires inbox messages after their own TTL', async () => {
        const { engine } = await start();
        await put(engine, 'ttl', 1, { ttl: 300 });
        await put(engine, 'ttl', 2, { ttl: 60_000 });
        await advance(500);
        expect(payloads(await engine.inbox.list('ttl', 100))).toEqual([2]);
      });
    }

    it('keeps delivery receipts from the store on: delivered to N connections, acknowledged once (first acknowledgement wins)', async () => {
      const { engine } = await start();
      const plain = await put(engine, '42', 0);
      expect(await engine.inbox.receipt(plain.id)).toBeNull();
      const { id } = await put(engine, '42', 1, { receipt: true, ttl: 60_000 });
      const r = await engine.inbox.receipt(id);
      expect(r).toMatchObject({ id, user: '42', delivered: 0, deliveredAt: null, acked: null });
      expect((r as { expires: number; created: number }).expires - (r as { created: number }).created).toBe(60_000);
      await engine.inbox.delivered([id], 2, 2000);
      await engine.inbox.delivered([id, plain.id], 1, 3000);
      expect(await engine.inbox.acked([id, plain.id], 'c1', 4000)).toEqual([id]);
      expect(await engine.inbox.acked([id], 'c2', 5000)).toEqual([]);
      expect(await engine.inbox.receipt(id)).toMatchObject({ delivered: 3, deliveredAt: 2000, acked: { at: 4000, client: 'c1' } });
      // A repeated publish id stores nothing, and makes no second receipt.
      const again = await put(engine, '42', 1, { receipt: true, idempotencyKey: 'k' });
      const twice = await put(engine, '42', 1, { receipt: true, idempotencyKey: 'k' });
      expect(twice).toMatchObject({ id: again.id, duplicate: true });
      expect(await engine.inbox.receipt(again.id)).toMatchObject({ id: again.id, acked: null });
    });

    // ---- outbox -------------------------------------------------------------------------------------

    const ev = (id: string, type = 'user.online') => JSON.stringify({ id, type, time: 1, data: { user: '42' } });

    it('fans outbox events out once into one job per endpoint, leases jobs to one claimer at a time, settles them', async () => {
      const { engine } = await start();
      const now = 1_000_000;
      await engine.outbox.publish([ev('e1'), ev('e2', 'channel.occupied')]);
      expect((await engine.outbox.stats()).queued).toBe(2);
      const routed: string[] = [];
      const fanned = await engine.outbox.fanOut((e) => (routed.push(e), JSON.parse(e).type === 'user.online' ? ['a', 'b'] : ['a']), 100, now);
      expect(fanned).toBe(2);
      expect(await engine.outbox.fanOut(() => ['a'], 100, now)).toBe(0);
      const jobs = await engine.outbox.claim(now, 10_000, 100);
      expect(jobs.map((j) => [j.endpoint, JSON.parse(j.event).id, j.attempt, j.created]).sort()).toEqual([
        ['a', 'e1', 0, now],
        ['a', 'e2', 0, now],
        ['b', 'e1', 0, now],
      ]);
      expect(await engine.outbox.stats()).toMatchObject({ queued: 3, dead: 0, oldest: now });
      // Leased: nobody else gets them until the lease runs out.
      expect(await engine.outbox.claim(now + 5000, 10_000, 100)).toEqual([]);
      const [j1, j2, j3] = jobs as [OutboxJob, OutboxJob, OutboxJob];
      await engine.outbox.settle(j1, { kind: 'done' }, now);
      await engine.outbox.settle(j2, { kind: 'retry', due: now + 20_000 }, now);
      await engine.outbox.settle(j3, { kind: 'dead', reason: 'status 500' }, now + 1);
      // j2 is due at +20 s, j3 gone; nothing before.
      expect(await engine.outbox.claim(now + 19_000, 10_000, 100)).toEqual([]);
      const retried = await engine.outbox.claim(now + 20_000, 10_000, 100);
      expect(retried.map((j) => [j.id, j.attempt])).toEqual([[j2.id, 1]]);
      // A claimer that died: the lease runs out and the job is claimed again.
      expect((await engine.outbox.claim(now + 30_001, 10_000, 100)).map((j) => j.id)).toEqual([j2.id]);
      const dead = await engine.outbox.deadLetters(10);
      expect(dead).toHaveLength(1);
      expect(dead[0]).toMatchObject({ endpoint: j3.endpoint, event: j3.event, reason: 'status 500', died: now + 1, attempt: 1 });
      expect(await engine.outbox.stats()).toMatchObject({ queued: 1, dead: 1 });
      expect(await engine.outbox.replay('all', now + 40_000)).toBe(1);
      expect(await engine.outbox.deadLetters(10)).toEqual([]);
      const replayed = await engine.outbox.claim(now + 41_000, 10_000, 100);
      expect(replayed.map((j) => [j.endpoint, j.event, j.attempt]).sort()).toEqual(
        [
          [j2.endpoint, j2.event, 1],
          [j3.endpoint, j3.event, 0],
        ].sort(),
      );
    });

    it('defers an outbox job without counting an attempt, and dead-letters an untried one with its attempts as they were', async () => {
      const { engine } = await start();
      const now = 1_000_000;
      await engine.outbox.publish([ev('d1'), ev('d2')]);
      await engine.outbox.fanOut(() => ['a'], 100, now);
      const [j1, j2] = (await engine.outbox.claim(now, 10_000, 100)) as [OutboxJob, OutboxJob];
      await engine.outbox.settle(j1, { kind: 'retry', due: now + 1000 }, now);
      await engine.outbox.settle(j2, { kind: 'defer', due: now + 1000, keep: 60_000 }, now);
      expect(await engine.outbox.claim(now + 999, 10_000, 100)).toEqual([]);
      const again = await engine.outbox.claim(now + 1000, 10_000, 100);
      expect(again.map((j) => [j.id, j.attempt]).sort()).toEqual(
        [
          [j1.id, 1],
          [j2.id, 0],
        ].sort(),
      );
      const k1 = again.find((j) => j.id === j1.id) as OutboxJob;
      const k2 = again.find((j) => j.id === j2.id) as OutboxJob;
      await engine.outbox.settle(k1, { kind: 'defer', due: now + 5000, keep: 60_000 }, now + 1000);
      await engine.outbox.settle(k2, { kind: 'dead', reason: 'connect ECONNREFUSED', untried: true }, now + 1000);
      expect((await engine.outbox.claim(now + 5000, 10_000, 100)).map((j) => [j.id, j.attempt])).toEqual([[j1.id, 1]]);
      expect(await engine.outbox.deadLetters(10)).toEqual([expect.objectContaining({ event: j2.event, reason: 'connect ECONNREFUSED', attempt: 0 })]);
    });

    it("releases an endpoint's deferred jobs (due at once), but not one leased since, retried, or of another endpoint", async () => {
      const { engine } = await start();
      const box = engine.outbox;
      const now = 1_000_000;
      await box.publish([ev('r1'), ev('r2'), ev('r3'), ev('r4')]);
      await box.fanOut((e) => [(JSON.parse(e) as { id: string }).id === 'r4' ? 'b' : 'a'], 100, now);
      const jobs = await box.claim(now, 10_000, 100);
      const byEvent = (id: string) => jobs.find((j) => (JSON.parse(j.event) as { id: string }).id === id) as OutboxJob;
      const [j1, j2, j3, j4] = ['r1', 'r2', 'r3', 'r4'].map(byEvent) as [OutboxJob, OutboxJob, OutboxJob, OutboxJob];
      await box.settle(j1, { kind: 'defer', due: now + 60_000, keep: 60_000 }, now);
      await box.settle(j2, { kind: 'defer', due: now + 2000, keep: 60_000 }, now);
      await box.settle(j3, { kind: 'retry', due: now + 60_000 }, now);
      await box.settle(j4, { kind: 'defer', due: now + 60_000, keep: 60_000 }, now);
      // j2 comes due and is leased (a node is sending it): a release must not hand it to another, even one whose
      // clock is behind (its `now` before j2's deferral ended).
      expect((await box.claim(now + 2000, 10_000, 100)).map((j) => j.id)).toEqual([j2.id]);
      expect(await box.release('a', now + 1000)).toBe(1);
      expect((await box.claim(now + 1000, 10_000, 100)).map((j) => [j.id, j.attempt])).toEqual([[j1.id, 0]]);
      expect(await box.release('a', now + 3000)).toBe(0);
      expect(await box.release('b', now + 4000)).toBe(1);
      expect((await box.claim(now + 4000, 10_000, 100)).map((j) => j.id)).toEqual([j4.id]);
    });

    it('holds outbox events back until due, drops the ones cancelled in time, replaces one held under the same key', async () => {
      const { engine } = await start();
      const now = 1_000_000;
      const box = engine.outbox;
      await box.hold('vacated:a', ev('h1', 'channel.vacated'), now + 3000);
      await box.hold('vacated:b', ev('h2', 'channel.vacated'), now + 3000);
      await box.hold('offline:42', ev('h3'), now + 1000);
      await box.hold('offline:42', ev('h4'), now + 2000);
      await box.publish([ev('p1')]);
      expect(await box.stats()).toMatchObject({ queued: 1, held: 3 });
      const routed: string[] = [];
      const route = (e: string): string[] => (routed.push((JSON.parse(e) as { id: string }).id), ['a']);
      expect(await box.fanOut(route, 100, now + 1500)).toBe(1);
      expect(routed).toEqual(['p1']);
      expect(await box.cancel('vacated:b')).toBe(true);
      expect(await box.cancel('vacated:b')).toBe(false);
      expect(await box.cancel('never')).toBe(false);
      expect(await box.fanOut(route, 100, now + 3000)).toBe(2);
      // In due order; the replaced event is gone, the cancelled one never comes.
      expect(routed).toEqual(['p1', 'h4', 'h1']);
      // Queued already: too late to cancel.
      expect(await box.cancel('vacated:a')).toBe(false);
      expect(await box.stats()).toMatchObject({ queued: 3, held: 0 });
      const jobs = await box.claim(now + 3000, 10_000, 100);
      expect(jobs.map((j) => JSON.parse(j.event).id).sort()).toEqual(['h1', 'h4', 'p1']);
    });
  });
}
