import {
  USER_CHANNEL_PREFIX,
  type ChannelName,
  type ClientFrame,
  type ConnectedFrame,
  type ErrorCode,
  type ErrorFrame,
  type JoinPayload,
  type LeavePayload,
  type MessageFrame,
  type AckFrame,
  type PublishFrame,
  type PublishedFrame,
  type PresenceMember,
  type ServerControlFrame,
  type ServerFrame,
  type SubscribeFrame,
  type SubscribeRecovery,
  type SubscribedFrame,
  type SubscriptionResult,
  type UnsubscribeFrame,
} from '@herald/protocol';
import type { LeaderBody, TabId } from './tab-messages.js';

/** The one transient subscribe error, retried by the tabs (a literal: the bundle skips the ErrorCode table). */
const RETRYABLE: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['engine_unavailable', 'too_many_channels']);

/** What the relay does: frames on the shared connection, posts to the tabs. */
export interface RelayPort {
  /** Sends a frame on the shared connection (dropped when it is not open). */
  upstream(f: ClientFrame): void;
  /** Posts to one tab (`tab`) or to every tab. */
  post(body: LeaderBody): void;
}

/** A tab's subscribe request waiting for an answer. `id` is the tab's own request id (none for a join). */
interface Waiter {
  tab: TabId;
  rec: SubscribeRecovery;
  id: number | undefined;
}

/** One channel of the shared connection. */
interface Entry {
  channel: ChannelName;
  /** The tabs subscribed to it: the reference count. */
  tabs: Set<TabId>;
  /** The connection's own `user:{id}` channel, which the server subscribes by itself: kept with no tab. */
  own: boolean;
  /** True once the server answered on the current connection. */
  ready: boolean;
  /** Every message up to this seq has been posted (or follows, oldest first, in a replay under way). */
  seq: number;
  /** The highest seq the server has told of. */
  head: number;
  epoch: string;
  /** The request that subscribes the channel on this connection: its id, 0 for the connect frame. */
  req: number | undefined;
  /** The position that request asked for. */
  rec: SubscribeRecovery;
  waiting: Waiter[];
  /** The tab whose own resubscribe is being replayed: messages already posted go to it alone. */
  replay: TabId | undefined;
  /** A presence channel's members (absent over the gateway's member limit) and their count, kept for late tabs. */
  members?: Map<string, PresenceMember> | undefined;
  count?: number;
}

/** Takes the tab's own id off an error frame, or puts another one on. */
function errorFor(f: ErrorFrame, channel: ChannelName | undefined, id: number | undefined): ErrorFrame {
  const e: ErrorFrame = { type: 'error', code: f.code, message: f.message };
  if (channel !== undefined) e.channel = channel;
  if (id !== undefined) e.id = id;
  return e;
}

const control = (frame: ServerControlFrame): ServerFrame => ({ kind: 'control', frame });

/**
 * The leader tab's multiplexer: many tabs' subscriptions over one connection. A pure state machine: tab
 * requests and server frames in, frames for the server and posts for the tabs out.
 *
 * Channels are reference-counted by tab: subscribed on the server when the first tab wants one, unsubscribed
 * when the last leaves. Messages go to every tab (each drops channels it does not follow); answers go to the
 * tab that asked.
 *
 * Each tab keeps its own position per channel, so a tab's subscribe is answered from what the relay has
 * already posted (`seq`): a tab at `seq` or beyond, or a new one, is answered at once and the messages that
 * follow are the ones it needs; a tab behind it gets its own resubscribe with its `since`, whose replay goes
 * to every tab (the others drop what they already have). After a reconnect or a leader change the connect
 * frame asks each channel from the lowest position a joining tab reported.
 */
export class Relay {
  private readonly _entries = new Map<ChannelName, Entry>();
  /** Tabs that want the connection. */
  private readonly _members = new Set<TabId>();
  /** Joins waiting for the connection, with the tabs' positions. */
  private readonly _joins = new Map<TabId, Map<ChannelName, SubscribeRecovery>>();
  /** Tabs that got their `connected` on the current connection. */
  private readonly _answered = new Set<TabId>();
  /** Subscribe requests in flight: the main one of a channel (no waiter), or a tab's own resubscribe. */
  private readonly _reqs = new Map<number, { channel: ChannelName; waiter?: Waiter }>();
  private _reqId = 0;
  private _up: ConnectedFrame | undefined;
  /** Tabs' publishes in flight on this connection, by the relay's request id: the tab and its own id. */
  private readonly _publishes = new Map<number, { tab: TabId; id: number | undefined }>();
  /** Inbox messages posted on this connection and not acknowledged yet: a tab that joins later gets them too. */
  private readonly _inbox = new Map<string, MessageFrame>();

  constructor(private readonly _port: RelayPort) {}

  /** How many tabs want the connection. */
  get members(): number {
    return this._members.size;
  }

  // ---- tabs --------------------------------------------------------------------------------------

  /** A tab wants the connection with these subscriptions (all of them: others it had are dropped). */
  join(tab: TabId, subs: Record<ChannelName, SubscribeRecovery>): void {
    this._members.add(tab);
    // A join that crossed the answer to an earlier one (the tab learned the leader's id meanwhile).
    if (this._answered.has(tab)) return;
    const wanted = new Map(Object.entries(subs));
    for (const e of [...this._entries.values()]) if (e.tabs.has(tab) && !wanted.has(e.channel)) this._drop(e, tab);
    for (const channel of wanted.keys()) this._entry(channel).tabs.add(tab);
    if (this._up) this._answer(tab, wanted);
    else this._joins.set(tab, wanted);
  }

  /** A tab is gone: its channels are released. */
  leave(tab: TabId): void {
    this._members.delete(tab);
    this._joins.delete(tab);
    this._answered.delete(tab);
    for (const e of [...this._entries.values()]) if (e.tabs.has(tab)) this._drop(e, tab);
  }

  /** Forgets every tab and channel (after a sign-out). */
  clear(): void {
    this._members.clear();
    this._entries.clear();
    this.lost();
  }

  /** A tab's subscribe or unsubscribe. Before its `connected` it is void: the tab joins again with all of them. */
  request(tab: TabId, f: SubscribeFrame | UnsubscribeFrame | AckFrame | PublishFrame): void {
    if (!this._up || !this._answered.has(tab)) return;
    // Inbox acknowledgements go up as they are; the server's `acked` is posted to every tab.
    if (f.type === 'ack') return this._port.upstream(f);
    if (f.type === 'publish') {
      // Under an id of the relay's; the answer goes back to the tab under its own. (A tab resends what a lost
      // connection left unanswered when it gets its next `connected`; the key keeps it published once.)
      const id = ++this._reqId;
      this._publishes.set(id, { tab, id: f.id });
      return this._port.upstream({ ...f, id });
    }
    if (f.type === 'unsubscribe') {
      const e = this._entries.get(f.channel);
      if (e) this._drop(e, tab);
      const answer: ServerControlFrame = { type: 'unsubscribed', channel: f.channel };
      if (f.id !== undefined) answer.id = f.id;
      return this._port.post({ t: 'frame', tab, f: control(answer) });
    }
    const rec: SubscribeRecovery = {};
    if (f.since !== undefined) rec.since = f.since;
    if (f.epoch !== undefined) rec.epoch = f.epoch;
    const e = this._entry(f.channel);
    e.tabs.add(tab);
    const r = this._evaluate(e, { tab, rec, id: f.id });
    if (r) this._answerSub(tab, e.channel, r, f.id);
  }

  // ---- the shared connection ---------------------------------------------------------------------

  /** The connect frame's `subs`: every channel a tab wants, from the lowest position reported. */
  connectSubs(): Record<ChannelName, SubscribeRecovery> {
    const out: Array<[ChannelName, SubscribeRecovery]> = [];
    for (const e of this._entries.values()) {
      if (e.tabs.size === 0 && !e.own) continue;
      e.req = 0;
      e.rec = this._lowest(e);
      out.push([e.channel, e.rec]);
    }
    // Object.fromEntries defines own properties, even for a channel named __proto__.
    return Object.fromEntries(out);
  }

  /** The server accepted the connection. */
  connected(f: ConnectedFrame): void {
    this._up = f;
    const own = f.user === null ? undefined : USER_CHANNEL_PREFIX + f.user;
    for (const [channel, r] of Object.entries(f.subs)) {
      const e = this._entries.get(channel) ?? (channel === own ? this._entry(channel) : undefined);
      // Dropped by its last tab while the connect frame was in flight.
      if (!e) this._port.upstream({ type: 'unsubscribe', channel, id: ++this._reqId });
      else if (e.req === 0 || e.req === undefined) this._ready(e, r);
    }
    if (own !== undefined) this._entry(own).own = true;
    const joins = [...this._joins];
    this._joins.clear();
    for (const [tab, wanted] of joins) this._answer(tab, wanted);
  }

  /** The connection is gone: every answer and request in flight is void; tabs join again on the next one. */
  lost(): void {
    this._up = undefined;
    this._joins.clear();
    this._answered.clear();
    // The next connection replays whatever is still unacknowledged.
    this._inbox.clear();
    this._reqs.clear();
    this._publishes.clear();
    for (const e of this._entries.values()) {
      e.ready = false;
      e.req = e.replay = undefined;
      e.waiting = [];
    }
  }

  /** A frame from the server (other than `connected` and `pong`). */
  frame(f: ServerFrame): void {
    if (f.kind === 'message') return this._message(f.frame);
    const c = f.frame;
    const pub = (c.type === 'published' || c.type === 'error') && c.id !== undefined ? this._publishes.get(c.id) : undefined;
    if (pub) {
      const answer = { ...(c as PublishedFrame | ErrorFrame) };
      this._publishes.delete(answer.id as number);
      if (pub.id === undefined) delete answer.id;
      else answer.id = pub.id;
      this._port.post({ t: 'frame', tab: pub.tab, f: control(answer) });
    } else if (c.type === 'subscribed') this._subscribed(c);
    else if (c.type === 'error') this._error(c);
    else if (c.type === 'acked') {
      for (const id of c.inbox) this._inbox.delete(id);
      this._port.post({ t: 'frame', f });
    }
    // An unsubscribe of ours is answered with its id; without one, the server ended the subscription.
    else if (c.type === 'unsubscribed' && c.id === undefined && this._entries.delete(c.channel)) this._port.post({ t: 'frame', f });
  }

  // ---- internals ---------------------------------------------------------------------------------

  private _entry(channel: ChannelName): Entry {
    let e = this._entries.get(channel);
    if (!e) {
      e = { channel, tabs: new Set(), own: false, ready: false, seq: 0, head: 0, epoch: '', req: undefined, rec: {}, waiting: [], replay: undefined };
      this._entries.set(channel, e);
    }
    return e;
  }

  /** Where the connect frame resumes a channel: the lowest position, in one epoch, that a joining tab or the relay itself has. */
  private _lowest(e: Entry): SubscribeRecovery {
    const known: SubscribeRecovery[] = [];
    if (e.epoch !== '') known.push({ since: e.seq, epoch: e.epoch });
    for (const wanted of this._joins.values()) {
      const rec = wanted.get(e.channel);
      if (rec?.since !== undefined && rec.epoch !== undefined) known.push(rec);
    }
    const epoch = known[0]?.epoch;
    let since: number | undefined;
    for (const r of known) if (r.epoch === epoch && r.since !== undefined && (since === undefined || r.since < since)) since = r.since;
    return since === undefined || epoch === undefined ? {} : { since, epoch };
  }

  /** Answers a join: the connection's `connected` frame with what can be said of the tab's channels now. */
  private _answer(tab: TabId, wanted: Map<ChannelName, SubscribeRecovery>): void {
    const up = this._up as ConnectedFrame;
    this._answered.add(tab);
    // The server subscribes the user channel by itself: every tab tracks it, as its own connection would.
    const own = up.user === null ? undefined : USER_CHANNEL_PREFIX + up.user;
    if (own !== undefined && !wanted.has(own)) wanted.set(own, {});
    const subs: Array<[ChannelName, SubscriptionResult]> = [];
    for (const [channel, rec] of wanted) {
      const e = this._entry(channel);
      e.tabs.add(tab);
      const r = this._evaluate(e, { tab, rec, id: undefined });
      if (r) subs.push([channel, this._withMembers(e, r)]);
    }
    this._port.post({ t: 'connected', tab, f: { ...up, subs: Object.fromEntries(subs) } });
    // As a connection of its own would, the tab gets the user's unacknowledged inbox messages first.
    for (const frame of this._inbox.values()) this._port.post({ t: 'frame', tab, f: { kind: 'message', frame } });
  }

  /**
   * The answer to a tab's subscribe, when it can be given now. Otherwise the tab waits for the channel's
   * subscription, or gets a resubscribe of its own, and is answered later.
   */
  private _evaluate(e: Entry, w: Waiter): SubscriptionResult | undefined {
    if (!e.ready) {
      e.waiting.push(w);
      if (e.req === undefined && this._up) {
        const id = ++this._reqId;
        e.req = id;
        e.rec = w.rec;
        this._reqs.set(id, { channel: e.channel });
        this._port.upstream({ type: 'subscribe', channel: e.channel, ...w.rec, id });
      }
      return undefined;
    }
    const { since, epoch } = w.rec;
    // Without a position in the current epoch the server itself could not recover: the same answer.
    if (since === undefined || epoch !== e.epoch) return { seq: e.head, epoch: e.epoch, recovered: false };
    // Nothing after `since` has been posted yet: the messages it needs are still to come.
    if (since >= e.seq) return { seq: Math.max(e.head, since), epoch: e.epoch, recovered: true };
    const id = ++this._reqId;
    this._reqs.set(id, { channel: e.channel, waiter: w });
    this._port.upstream({ type: 'subscribe', channel: e.channel, since, epoch, id });
    return undefined;
  }

  /** Takes a presence channel's members from a subscription answer. */
  private _takeMembers(e: Entry, r: SubscriptionResult): void {
    if (r.count === undefined) return;
    e.count = r.count;
    e.members = r.members && new Map(r.members.map((m) => [m.user, m]));
  }

  /** The channel's subscription is confirmed: answer the tabs that waited for it. */
  private _ready(e: Entry, r: SubscriptionResult): void {
    this._takeMembers(e, r);
    e.req = undefined;
    e.ready = true;
    e.epoch = r.epoch;
    e.head = r.seq;
    // Recovered: the replay of everything after the requested `since` follows this answer.
    e.seq = r.recovered && e.rec.since !== undefined ? e.rec.since : r.seq;
    const waiting = e.waiting;
    e.waiting = [];
    for (const w of waiting) {
      const answer = this._evaluate(e, w);
      if (answer) this._answerSub(w.tab, e.channel, answer, w.id);
    }
  }

  private _answerSub(tab: TabId, channel: ChannelName, r: SubscriptionResult, id: number | undefined): void {
    const e = this._entries.get(channel);
    const frame: SubscribedFrame = { type: 'subscribed', channel, ...(e ? this._withMembers(e, r) : r) };
    if (id !== undefined) frame.id = id;
    this._port.post({ t: 'frame', tab, f: control(frame) });
  }

  /** A presence channel's answer carries its members (as the relay keeps them) and their count. */
  private _withMembers(e: Entry, r: SubscriptionResult): SubscriptionResult {
    if (e.count === undefined) return r;
    const out: SubscriptionResult = { ...r, count: e.count };
    if (e.members) out.members = [...e.members.values()];
    return out;
  }

  private _message(m: MessageFrame): void {
    let tab: TabId | undefined;
    if (m.inbox !== undefined) this._inbox.set(m.inbox, m);
    if (m.seq === 0 && (m.type === 'join' || m.type === 'leave')) this._presence(m);
    if (m.seq !== 0) {
      const e = this._entries.get(m.channel);
      // Not (or no longer) subscribed: a late message of a channel every tab left.
      if (!e) return;
      // Already posted: the replay one tab asked for (the server replays before any live message).
      if (m.seq <= e.seq) tab = e.replay;
      else e.replay = undefined;
      e.seq = Math.max(e.seq, m.seq);
      e.head = Math.max(e.head, m.seq);
    }
    this._port.post({ t: 'frame', tab, f: { kind: 'message', frame: m } });
  }

  /** Keeps a presence channel's members current for tabs that subscribe later. */
  private _presence(m: MessageFrame): void {
    const e = this._entries.get(m.channel);
    if (!e || e.count === undefined) return;
    const p = m.payload as Partial<JoinPayload & LeavePayload>;
    if (typeof p.count === 'number') e.count = p.count;
    if (!Array.isArray(p.users)) e.members = undefined;
    else if (m.type === 'join') for (const u of p.users as PresenceMember[]) e.members?.set(u.user, u);
    else for (const u of p.users as string[]) e.members?.delete(u);
  }

  private _subscribed(f: SubscribedFrame): void {
    const req = f.id === undefined ? undefined : this._reqs.get(f.id);
    if (f.id !== undefined) this._reqs.delete(f.id);
    const e = this._entries.get(f.channel);
    if (!e) return;
    if (f.id === undefined) {
      // The server lost the channel's history (new epoch): every tab resets, then live messages follow.
      e.seq = e.head = f.seq;
      e.epoch = f.epoch;
      return this._port.post({ t: 'frame', f: control(f) });
    }
    if (!req) return;
    const w = req.waiter;
    if (!w) {
      if (e.req === f.id) this._ready(e, f);
      return;
    }
    if (!e.tabs.has(w.tab)) return;
    e.head = Math.max(e.head, f.seq);
    if (e.ready && f.epoch !== e.epoch) {
      // A tab's resubscribe found a new epoch: the server will not tell this connection again, so the
      // relay tells the other tabs of the channel.
      e.epoch = f.epoch;
      e.seq = e.head = f.seq;
      for (const tab of e.tabs) if (tab !== w.tab) this._answerSub(tab, e.channel, { seq: f.seq, epoch: f.epoch, recovered: false }, undefined);
    }
    e.replay = w.tab;
    this._takeMembers(e, f);
    this._answerSub(w.tab, e.channel, { seq: f.seq, epoch: f.epoch, recovered: f.recovered }, w.id);
  }

  private _error(f: ErrorFrame): void {
    const req = f.id === undefined ? undefined : this._reqs.get(f.id);
    if (f.id !== undefined) this._reqs.delete(f.id);
    const channel = f.channel ?? req?.channel;
    const e = channel === undefined ? undefined : this._entries.get(channel);
    const fatal = !RETRYABLE.has(f.code);
    const w = req?.waiter;
    if (w) {
      // One tab's resubscribe failed; the channel stays subscribed for the others.
      this._port.post({ t: 'frame', tab: w.tab, f: control(errorFor(f, channel, w.id)) });
      if (fatal && e) this._drop(e, w.tab);
      return;
    }
    // The answer to an unsubscribe, or to a request of an earlier connection.
    if (f.id !== undefined && (!req || e?.req !== f.id)) return;
    if (e) {
      // The channel's subscription failed: its tabs retry (engine_unavailable) or drop it.
      e.req = undefined;
      e.waiting = [];
      if (fatal) this._entries.delete(e.channel);
    } else if (channel !== undefined) {
      return;
    }
    this._port.post({ t: 'frame', f: control(errorFor(f, channel, undefined)) });
  }

  /** Takes a tab off a channel; the last one out unsubscribes it. */
  private _drop(e: Entry, tab: TabId): void {
    e.tabs.delete(tab);
    e.waiting = e.waiting.filter((w) => w.tab !== tab);
    if (e.tabs.size > 0 || e.own) return;
    this._entries.delete(e.channel);
    if (this._up) this._port.upstream({ type: 'unsubscribe', channel: e.channel, id: ++this._reqId });
  }
}
