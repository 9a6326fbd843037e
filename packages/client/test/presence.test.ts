// Presence channels through the SDK in Node against a real gateway: `subscription.members`, `memberCount`, and
// the `join`/`leave` events, kept right across the gateway's coalesced frames.
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { handshake, result, setup } from './helpers.js';
import { sdkApp, Signal, startGateway } from './support/harness.js';

const SECRET = 'presence_test_secret_0123456789_abcdefgh';
const token = (sub: string, name: string): Promise<string> =>
  new SignJWT({ channels: ['presence:*'], info: { name } }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).sign(new TextEncoder().encode(SECRET));

describe('presence channels in the SDK', () => {
  it('keeps members and count, and tells the app who joined and left', async () => {
    const { ws } = await startGateway({ jwtSecrets: [SECRET] });
    const signal = new Signal();
    const ann = sdkApp(ws, 'presence:room', { token: await token('ann', 'Ann') }, { name: 'ann', signal });
    const room = ann.client.subscribe('presence:room');
    const events: string[] = [];
    room.on('join', (e) => {
      events.push(`join ${(e.users ?? []).map((u) => u.user).join(',')} ${e.count}`);
      signal.notify();
    });
    room.on('leave', (e) => {
      events.push(`leave ${(e.users ?? []).join(',')} ${e.count}`);
      signal.notify();
    });
    await signal.until(() => room.state === 'subscribed', 'ann subscribed');
    expect([...room.members]).toEqual([['ann', { name: 'Ann' }]]);
    expect(room.memberCount).toBe(1);

    const bob = sdkApp(ws, 'presence:room', { token: await token('bob', 'Bob') }, { name: 'bob', signal });
    const bobRoom = bob.client.subscribe('presence:room');
    await signal.until(() => room.members.has('bob'), 'bob to join');
    expect(events).toEqual(['join bob 2']);
    expect(room.members.get('bob')).toEqual({ name: 'Bob' });
    expect(room.memberCount).toBe(2);
    expect([...bobRoom.members.keys()].sort()).toEqual(['ann', 'bob']);

    bob.client.close();
    await signal.until(() => !room.members.has('bob'), 'bob to leave');
    expect(events).toEqual(['join bob 2', 'leave bob 1']);
    expect(room.memberCount).toBe(1);
  });

  it('tells only what changes the members: a join or leave that reaches it after its subscribed counted it changes nothing', async () => {
    const h = setup();
    const room = h.client.subscribe('presence:room');
    const events: string[] = [];
    room.on('join', (e) => events.push(`join ${(e.users ?? []).map((u) => u.user).join(',')} ${e.count}`));
    room.on('leave', (e) => events.push(`leave ${(e.users ?? []).join(',')} ${e.count}`));
    h.client.connect();
    const members = [{ user: 'ann', info: { name: 'Ann' } }, { user: 'bob' }];
    handshake(h.socket(), { 'presence:room': { ...result(0, 'e1', false), members, count: 2 } as ReturnType<typeof result> });
    const presence = (type: string, users: unknown, count: number) => h.socket().receive({ type, channel: 'presence:room', payload: { users, count }, seq: 0 });
    // Ann's join, published before bob's subscription was answered, arrives after it (its count older).
    presence('join', [{ user: 'ann', info: { name: 'Ann' } }], 1);
    presence('leave', ['carl'], 1);
    expect(events).toEqual([]);
    expect(room.memberCount).toBe(2);
    // A join naming a known user beside a new one, a leave naming a member beside a stranger: the change only.
    presence('join', [{ user: 'bob' }, { user: 'carl', info: { name: 'Carl' } }], 3);
    presence('leave', ['carl', 'dave'], 2);
    expect(events).toEqual(['join carl 3', 'leave carl 2']);
    expect([...room.members]).toEqual([
      ['ann', { name: 'Ann' }],
      ['bob', undefined],
    ]);
    expect(room.memberCount).toBe(2);
    // Over the gateway's member limit (counts only) nothing can be compared: every frame counts.
    presence('join', undefined, 150);
    presence('join', [{ user: 'ann', info: { name: 'Ann' } }], 151);
    expect(events.slice(2)).toEqual(['join  150', 'join ann 151']);
    expect(room.memberCount).toBe(151);
  });
});
