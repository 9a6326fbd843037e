// A browser with several tabs, simulated without sleeping: one clock for the world, timers per tab, tasks
// (BroadcastChannel deliveries, Web Lock callbacks, socket frames) queued per tab, a Web Lock manager with
// queueing, steal, abort and query, and a small gateway with per-channel history and recovery. A tab can be
// frozen (nothing of it runs; its timers fire first when it thaws, the worst order for a leader that lost its
// lock) or killed (its locks released, its channel closed, its socket dropped). Time moves only in advance().
import type { BroadcastChannelLike, Clock, Environment, LockManagerLike, Message, StateChange } from '../../src/index.js';
import { createClient, type HeraldClient, type HeraldClientOptions } from '../../src/index.js';
import type { HeraldError } from '../../src/errors.js';
import { flush, RecordingLogger } from '../helpers.js';

type Task = { tab: Tab | undefined; fn: () => void };
type Timer = { id: number; at: number; tab: Tab; fn: () => void };

/** The simulated browser: time, tasks, timers, locks, channels and the gateway. */
export class World {
  now = 0;
  readonly tabs: Tab[] = [];
  readonly gateway = new FakeGateway(this);
  readonly locks = new LockTable(this);
  /** Every message posted on a BroadcastChannel, in order, with its poster. */
  readonly posted: Array<{ tab: Tab; data: any; at: number }> = [];
  private readonly _channels = new Set<FakeChannel>();
  private _tasks: Task[] = [];
  private _timers: Timer[] = [];
  private _seq = 0;

  /** Opens a tab whose client has `options` (defaults: the world's fakes, leaderTimeout 1000). */
  tab(name: string, options: Partial<HeraldClientOptions> = {}): Tab {
    const t = new Tab(this, name, options);
    this.tabs.push(t);
    return t;
  }

  /** When true, a lock is granted before the tab runs the tasks already queued (the browser does not order the two). */
  locksFirst = false;

  /** Queues a task for `tab` (undefined: the gateway's side); `urgent` ones go first. */
  task(tab: Tab | undefined, fn: () => void, urgent = false): void {
    if (urgent) this._tasks.unshift({ tab, fn });
    else this._tasks.push({ tab, fn });
  }

  clockOf(tab: Tab): Clock {
    return {
      now: () => this.now,
      setTimeout: (fn, ms) => {
        const id = ++this._seq;
        this._timers.push({ id, at: this.now + Math.max(0, ms), tab, fn });
        return id;
      },
      clearTimeout: (handle) => {
        this._timers = this._timers.filter((t) => t.id !== handle);
      },
    };
  }

  channel(tab: Tab, name: string): FakeChannel {
    const c = new FakeChannel(this, tab, name);
    this._channels.add(c);
    return c;
  }

  /** Delivers `data` to every open channel of that name except the poster's. */
  broadcast(from: FakeChannel, data: unknown): void {
    this.posted.push({ tab: from.tab, data: structuredClone(data), at: this.now });
    for (const c of this._channels) {
      if (c === from || c.name !== from.name || c.closed) continue;
      const copy = structuredClone(data);
      this.task(c.tab, () => c.closed || c.onmessage?.({ data: copy }));
    }
  }

  closeChannelsOf(tab: Tab): void {
    for (const c of this._channels) if (c.tab === tab) c.close();
  }

  /** Runs queued tasks and microtasks until nothing runnable is left; time does not move. */
  async settle(): Promise<void> {
    for (let i = 0; i < 100_000; i++) {
      await flush();
      const k = this._tasks.findIndex((t) => !t.tab || (!t.tab.frozen && !t.tab.dead));
      if (k < 0) {
        this._tasks = this._tasks.filter((t) => !t.tab?.dead);
        return;
      }
      const [task] = this._tasks.splice(k, 1);
      task?.fn();
    }
    throw new Error('the world does not settle');
  }

  /** Moves time forward by `ms`, firing due timers of running tabs in order and settling after each. */
  async advance(ms: number): Promise<void> {
    const end = this.now + ms;
    for (;;) {
      await this.settle();
      let next: Timer | undefined;
      for (const t of this._timers) if (t.at <= end && !t.tab.frozen && !t.tab.dead && (!next || t.at < next.at)) next = t;
      if (!next) break;
      this._timers = this._timers.filter((t) => t !== next);
      this.now = Math.max(this.now, next.at);
      next.fn();
    }
    this.now = end;
    await this.settle();
  }

  /** Advances in steps until `check` holds (at most `max` ms). */
  async until(check: () => boolean, what: string, max = 60_000, step = 50): Promise<void> {
    for (let waited = 0; !check(); waited += step) {
      if (waited > max) throw new Error(`timed out (simulated) waiting for ${what}`);
      await this.advance(step);
    }
  }

  /** Thaws a frozen tab: its overdue timers fire first, then its queued tasks. */
  async thaw(tab: Tab): Promise<void> {
    tab.frozen = false;
    const due = this._timers.filter((t) => t.tab === tab && t.at <= this.now).sort((a, b) => a.at - b.at);
    for (const t of due) {
      if (!this._timers.includes(t)) continue;
      this._timers = this._timers.filter((x) => x !== t);
      t.fn();
    }
    await this.settle();
  }

  dropTimersOf(tab: Tab): void {
    this._timers = this._timers.filter((t) => t.tab !== tab);
  }
}

/** A BroadcastChannel of one tab. */
export class FakeChannel implements BroadcastChannelLike {
  onmessage: ((event: { data: unknown }) => void) | null = null;
  closed = false;
  constructor(
    private readonly world: World,
    readonly tab: Tab,
    readonly name: string,
  ) {}
  postMessage(message: unknown): void {
    if (this.closed) throw new Error('InvalidStateError: channel closed');
    this.world.broadcast(this, message);
  }
  close(): void {
    this.closed = true;
  }
}

class AbortError extends Error {
  override name = 'AbortError';
}

interface LockRequest {
  tab: Tab;
  name: string;
  callback: () => Promise<void> | undefined;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  /** Held: whether its release already happened (stolen, or the callback settled). */
  done: boolean;
}

/** The browser's lock manager: one holder per name, a FIFO queue, steal, abort and query. */
export class LockTable {
  readonly held = new Map<string, LockRequest>();
  private readonly queues = new Map<string, LockRequest[]>();
  /** Every grant, in order: `<tab> <name>`. */
  readonly grants: string[] = [];
  /** The tabs that queried, in order. */
  readonly queries: string[] = [];

  constructor(private readonly world: World) {}

  managerOf(tab: Tab): LockManagerLike {
    return {
      request: (name, options, callback) =>
        new Promise((resolve, reject) => {
          const r: LockRequest = { tab, name, callback, resolve, reject, done: false };
          const signal = options.signal as AbortSignal | undefined;
          if (options.steal) {
            const old = this.held.get(name);
            if (old) {
              old.done = true;
              this.held.delete(name);
              this.world.task(old.tab, () => old.reject(new AbortError('stolen')));
            }
            this.grant(r);
            return;
          }
          const q = this.queues.get(name) ?? [];
          this.queues.set(name, q);
          q.push(r);
          signal?.addEventListener('abort', () => {
            const i = q.indexOf(r);
            if (i < 0) return;
            q.splice(i, 1);
            this.world.task(tab, () => reject(new AbortError('aborted')));
          });
          this.next(name);
        }),
      query: () =>
        new Promise((resolve) => {
          this.queries.push(tab.name);
          this.world.task(tab, () => resolve({ held: [...this.held.values()].map((r) => ({ name: r.name, clientId: r.tab.name })) }));
        }),
    };
  }

  /** The tab is gone: its locks are released and its requests dropped. */
  releaseAll(tab: Tab): void {
    for (const [name, r] of [...this.held]) {
      if (r.tab !== tab) continue;
      r.done = true;
      this.held.delete(name);
      this.next(name);
    }
    for (const [name, q] of this.queues) {
      this.queues.set(
        name,
        q.filter((r) => r.tab !== tab),
      );
    }
  }

  holder(name: string): string | undefined {
    return this.held.get(name)?.tab.name;
  }

  private next(name: string): void {
    if (this.held.has(name)) return;
    const r = this.queues.get(name)?.shift();
    if (r) this.grant(r);
  }

  private grant(r: LockRequest): void {
    this.held.set(r.name, r);
    this.grants.push(`${r.tab.name} ${r.name}`);
    this.world.task(
      r.tab,
      () => {
        const settle = (): void => {
          if (!r.done) {
            r.done = true;
            this.held.delete(r.name);
            this.next(r.name);
          }
          r.resolve(undefined);
        };
        const p = r.callback();
        if (p) p.then(settle, settle);
        else settle();
      },
      this.world.locksFirst,
    );
  }
}

/** One tab: its client, its fakes, and what its app saw. */
export class Tab {
  frozen = false;
  dead = false;
  readonly client: HeraldClient;
  readonly logger = new RecordingLogger();
  readonly states: StateChange[] = [];
  readonly errors: HeraldError[] = [];
  /** `<channel> <seq>` for every message the app's handlers got, in order. */
  readonly seen: string[] = [];
  readonly env: Environment;
  readonly onlineHooks = new Set<() => void>();
  readonly visibleHooks = new Set<() => void>();
  readonly leaveHooks = new Set<() => void>();

  constructor(
    readonly world: World,
    readonly name: string,
    options: Partial<HeraldClientOptions>,
  ) {
    const gw = world.gateway;
    const channelOf = (name: string): FakeChannel => world.channel(this, name);
    const hook = (set: Set<() => void>) => (fn: () => void) => {
      set.add(fn);
      return () => set.delete(fn);
    };
    this.env = {
      onOnline: hook(this.onlineHooks),
      onVisible: hook(this.visibleHooks),
      onLeave: hook(this.leaveHooks),
      locks: world.locks.managerOf(this),
      BroadcastChannel: class {
        constructor(name: string) {
          return channelOf(name);
        }
      } as unknown as Environment['BroadcastChannel'],
    };
    this.client = createClient({
      url: 'ws://herald.test/ws',
      WebSocket: gw.socketClass(this),
      clock: world.clockOf(this),
      logger: this.logger,
      environment: this.env,
      random: () => 0.5,
      leaderTimeout: 1000,
      minDelay: 100,
      maxDelay: 100,
      ...options,
    });
    this.client.on('state', (s) => this.states.push(s));
    this.client.on('error', (e) => this.errors.push(e));
    this.client.on('message', (m: Message) => this.seen.push(`${m.channel} ${m.seq}`));
  }

  /** The seqs the app got on `channel`. */
  seqs(channel: string): number[] {
    return this.seen.filter((s) => s.startsWith(channel + ' ')).map((s) => Number(s.slice(channel.length + 1)));
  }

  /** The page goes away (pagehide); kill() then makes it gone. */
  leave(): void {
    for (const fn of this.leaveHooks) fn();
  }

  /** The page becomes visible again. */
  show(): void {
    for (const fn of this.visibleHooks) fn();
  }

  /** The tab is closed or crashes: nothing of it runs again, its locks are released, its socket drops. */
  kill(): void {
    this.dead = true;
    this.world.dropTimersOf(this);
    this.world.closeChannelsOf(this);
    this.world.locks.releaseAll(this);
    this.world.gateway.dropSocketsOf(this);
  }
}

interface History {
  epoch: string;
  messages: Array<{ type: string; channel: string; payload: object; seq: number }>;
}

/** A gateway socket as the client sees it. */
export class GatewaySocket {
  readyState = 0;
  onopen: ((ev: object) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: object) => void) | null = null;
  /** Every frame the client sent, parsed. */
  readonly frames: any[] = [];
  subs = new Set<string>();
  user: string | null = null;
  closedWith: number | undefined;
  id = '';

  constructor(
    private readonly gw: FakeGateway,
    readonly tab: Tab,
    readonly url: string,
  ) {}

  send(data: string): void {
    if (this.readyState !== 1) throw new Error('InvalidStateError: not open');
    const frame = JSON.parse(data);
    this.frames.push(frame);
    this.gw.world.task(undefined, () => this.gw.handle(this, frame));
  }

  close(code = 1000, reason = ''): void {
    if (this.readyState >= 2) return;
    this.readyState = 2;
    this.gw.world.task(undefined, () => this.gw.closed(this, code, reason));
  }

  /** Delivers frames from the server to the tab (a task of the tab, so a frozen tab gets them later). */
  deliver(frames: object[]): void {
    const data = frames.map((f) => JSON.stringify(f)).join('\n');
    this.gw.world.task(this.tab, () => this.readyState === 1 && this.onmessage?.({ data }));
  }
}

/**
 * A small gateway: tokens are JWT-like (`sub` decides the user), channels keep their whole history, a
 * subscribe with `since` and the current epoch replays what follows, and publish() reaches every open
 * socket subscribed to the channel.
 */
export class FakeGateway {
  readonly sockets: GatewaySocket[] = [];
  readonly history = new Map<string, History>();
  private n = 0;

  constructor(readonly world: World) {}

  socketClass(tab: Tab): new (url: string) => GatewaySocket {
    const created = (s: GatewaySocket): void => {
      this.sockets.push(s);
      // The upgrade completes in a later task.
      this.world.task(undefined, () => {
        if (s.readyState !== 0) return;
        s.readyState = 1;
        this.world.task(tab, () => s.onopen?.({}));
      });
    };
    const gw = (): FakeGateway => this;
    return class extends GatewaySocket {
      constructor(url: string) {
        super(gw(), tab, url);
        created(this);
      }
    };
  }

  /** Sockets open now. */
  open(): GatewaySocket[] {
    return this.sockets.filter((s) => s.readyState === 1);
  }

  channel(name: string): History {
    let h = this.history.get(name);
    if (!h) this.history.set(name, (h = { epoch: 'e1', messages: [] }));
    return h;
  }

  /** Publishes `count` messages on `channel`; returns the last seq. */
  publish(channel: string, count = 1): number {
    const h = this.channel(channel);
    for (let i = 0; i < count; i++) {
      const m = { type: 'update', channel, payload: { n: h.messages.length + 1 }, seq: h.messages.length + 1 };
      h.messages.push(m);
      for (const s of this.open()) if (s.subs.has(channel)) s.deliver([m]);
    }
    return h.messages.length;
  }

  /** The gateway lost its history of `channel`: a new epoch from seq 0. */
  resetHistory(channel: string, epoch: string): void {
    this.history.set(channel, { epoch, messages: [] });
  }

  /** Closes a socket from the server side. */
  kick(s: GatewaySocket, code: number, reason = ''): void {
    this.closed(s, code, reason);
  }

  dropSocketsOf(tab: Tab): void {
    for (const s of this.sockets) if (s.tab === tab && s.readyState < 2) s.readyState = 3;
  }

  closed(s: GatewaySocket, code: number, reason: string): void {
    if (s.readyState === 3) return;
    s.readyState = 3;
    s.closedWith = code;
    this.world.task(s.tab, () => s.onclose?.({ code, reason }));
  }

  private result(
    channel: string,
    since: number | undefined,
    epoch: string | undefined,
  ): { r: { seq: number; epoch: string; recovered: boolean }; replay: object[] } {
    const h = this.channel(channel);
    const seq = h.messages.length;
    if (since !== undefined && epoch === h.epoch && since <= seq) return { r: { seq, epoch: h.epoch, recovered: true }, replay: h.messages.slice(since) };
    return { r: { seq, epoch: h.epoch, recovered: false }, replay: [] };
  }

  handle(s: GatewaySocket, f: any): void {
    if (s.readyState !== 1) return;
    if (f.type === 'connect') {
      s.id = `c${++this.n}`;
      s.user = typeof f.token === 'string' ? userOf(f.token) : null;
      const subs: Record<string, object> = {};
      const replay: object[] = [];
      const wanted: Record<string, { since?: number; epoch?: string }> = { ...(f.subs ?? {}) };
      if (s.user !== null) wanted[`user:${s.user}`] = wanted[`user:${s.user}`] ?? {};
      for (const [channel, rec] of Object.entries(wanted)) {
        const { r, replay: more } = this.result(channel, rec.since, rec.epoch);
        subs[channel] = r;
        replay.push(...more);
        s.subs.add(channel);
      }
      s.deliver([{ type: 'connected', client: s.id, user: s.user, ping: 25_000, subs }, ...replay]);
    } else if (f.type === 'subscribe') {
      const { r, replay } = this.result(f.channel, f.since, f.epoch);
      s.subs.add(f.channel);
      s.deliver([{ type: 'subscribed', channel: f.channel, ...r, ...(f.id === undefined ? {} : { id: f.id }) }, ...replay]);
    } else if (f.type === 'unsubscribe') {
      s.subs.delete(f.channel);
      s.deliver([{ type: 'unsubscribed', channel: f.channel, ...(f.id === undefined ? {} : { id: f.id }) }]);
    } else if (f.type === 'ping') {
      s.deliver([{ type: 'pong' }]);
    }
  }
}

/** A JWT-like token for `sub` (the client reads the claim; the fake gateway trusts it). */
export function tokenFor(sub: string, salt = ''): string {
  const b64 = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64({ alg: 'none' })}.${b64({ sub, salt })}.sig`;
}

function userOf(token: string): string | null {
  try {
    return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()).sub ?? null;
  } catch {
    return null;
  }
}
