import { CloseCode, type ClientFrame, type ServerFrame } from '@herald/protocol';
import { Connection } from './connection.js';
import { Election, type ElectionPort } from './election.js';
import { ClientErrorCode, HeraldError } from './errors.js';
import type { Link, LinkHost, Transition } from './link.js';
import { fetchToken, type ResolvedOptions } from './options.js';
import { Relay } from './relay.js';
import { sharedName, tokenUser } from './shared-key.js';
import { isLeaderMessage, type LeaderMessage, type SharedMessage, type TabId, type TabMessage } from './tab-messages.js';
import type { BroadcastChannelConstructor, BroadcastChannelLike, ClientState, Environment, LockManagerLike } from './types.js';

/** An environment in which tabs can share a connection. */
export type SharingEnvironment = Environment & { locks: LockManagerLike; BroadcastChannel: BroadcastChannelConstructor };

/** The channel a frame is about, when the tabs that do not follow it should skip it. */
function channelOf(f: ServerFrame): string | undefined {
  if (f.kind === 'message') return f.frame.seq === 0 ? undefined : f.frame.channel;
  return 'channel' in f.frame ? f.frame.channel : undefined;
}

/**
 * A client's link when tabs share one connection (internal): the I/O around the pure {@link Election} and
 * {@link Relay}. It holds the BroadcastChannel and the Web Lock of the tabs that share (same origin, URL and
 * user), and drives its client from what the leader posts, in every tab including the leader's own, so that
 * all tabs behave alike.
 *
 * In the leader tab it also holds the one {@link Connection}, whose frames and states go through the relay
 * to the tabs. A tab's own view follows the leader's connection: `connecting` while it joins, `connected`
 * once the leader answers its join, `disconnected` when that connection drops or the leader changes.
 */
export class SharedLink implements Link, ElectionPort {
  private readonly _id: TabId = Math.random().toString(36).slice(2) + Date.now().toString(36);
  private readonly _el: Election;
  private _name = '';
  private _bc: BroadcastChannelLike | undefined;
  /** Leader: the relay and the shared connection. */
  private _relay: Relay | undefined;
  private _conn: Connection | undefined;
  /** Leader: the tab whose close() is closing the shared connection. */
  private _by: TabId | undefined;
  /** This tab wants the connection (between connect() and close() or a terminal close). */
  private _member = false;
  /** What this tab's client was last told. */
  private _st: ClientState = 'disconnected';
  /** The leader answered this tab's join on the current connection. */
  private _live = false;
  /** Bumped whenever this tab's view of the connection ends; a `connected` handler checks it. */
  private _session = 0;
  /** The newest token known: its own, or the last one the leader fetched. */
  private _token: string | undefined;
  private _retryTimer: unknown;
  private _tries = 0;
  private _unhook: Array<() => void> = [];
  /** The lock request: its generation (later callbacks of older ones are void), how to withdraw or release it. */
  private _gen = 0;
  private _abort: AbortController | undefined;
  private _free: (() => void) | undefined;
  /** Leader: the number of tabs last posted. */
  private _tabs = 0;

  constructor(
    private readonly _o: ResolvedOptions,
    private readonly _host: LinkHost,
    private readonly _env: SharingEnvironment,
  ) {
    this._token = _o.token;
    this._el = new Election(this._id, _o.clock, _o.leaderTimeout, this);
  }

  // ---- Link --------------------------------------------------------------------------------------

  connect(): void {
    if (this._member) {
      // Waiting for a retry: the leader retries now, as connect() does on a connection of one's own.
      if (this._st === 'disconnected') this._wake();
      return;
    }
    this._member = true;
    this._setState({ to: 'connecting' });
    if (this._bc) this._join();
    else this._open();
  }

  /** Sign-out: closes the shared connection in every tab. */
  close(): Promise<void> {
    if (this._member) {
      this._member = false;
      const bye: TabMessage = { t: 'close', from: this._id };
      // The leader closes at once, before it leaves the election below.
      if (this._relay) this._fromTab(bye);
      else this._bc?.postMessage(bye);
    }
    this._o.clock.clearTimeout(this._retryTimer);
    this._setState({ to: 'closed', code: CloseCode.Normal, reason: 'client closed' });
    this._quit();
    return Promise.resolve();
  }

  send(f: ClientFrame): void {
    if (this._live && f.type !== 'connect' && f.type !== 'ping') this._toLeader({ t: 'send', from: this._id, f });
  }

  // ---- ElectionPort: the Web Lock and the channel ------------------------------------------------

  acquire(steal: boolean): void {
    this.release();
    const gen = this._gen;
    const abort = steal ? undefined : new AbortController();
    this._abort = abort;
    this._env.locks
      .request(this._name, abort ? { signal: abort.signal } : { steal }, () => {
        // Withdrawn meanwhile: give the lock back at once.
        if (gen !== this._gen) return undefined;
        this._abort = undefined;
        return new Promise<void>((resolve) => {
          this._free = resolve;
          this._el.granted();
        });
      })
      .then(undefined, () => {
        // An AbortError: stolen while held (or withdrawn by release(), which changed the generation).
        if (gen !== this._gen || !this._free) return;
        this._free = undefined;
        this._el.lost();
      });
  }

  release(): void {
    this._gen++;
    this._abort?.abort();
    this._free?.();
    this._abort = this._free = undefined;
  }

  verify(): void {
    this._env.locks.query().then(
      (s) => {
        const holder = (name: string): string | undefined => s.held?.find((l) => l.name === name)?.clientId;
        // This tab's own lock tells its clientId; without clientIds, only a steal already seen tells.
        const me = holder(`${this._name}/${this._id}`);
        this._el.verified(this._free !== undefined && (me === undefined || holder(this._name) === me));
      },
      () => this._el.verified(this._free !== undefined),
    );
  }

  post(m: LeaderMessage | TabMessage): void {
    this._bc?.postMessage(m);
    // The leader's own tab hears it too, after the current call (as the others would), unless it stepped down.
    if (isLeaderMessage(m) && m.t !== 'beat') {
      void Promise.resolve().then(() => this._el.role === 'leader' && this._el.term === m.term && this._fromLeader(m));
    }
  }

  lead(): void {
    this._o.logger.debug('this tab holds the shared connection');
    this._end('leader changed');
    const relay = new Relay({ upstream: (f) => conn.send(f), post: (body) => this._el.send(body) });
    const mine = (): boolean => this._conn === conn;
    const conn: Connection = new Connection(
      { ...this._o, token: this._token, environment: null },
      {
        state: (s) => {
          if (!mine()) return;
          if (s.to === 'closed') relay.clear();
          else if (s.to === 'disconnected') relay.lost();
          this._el.send(s.to === 'closed' ? { t: 'state', s, by: this._by } : { t: 'state', s });
          this._by = undefined;
        },
        connected: (f) => mine() && relay.connected(f),
        frame: (f) => mine() && relay.frame(f),
        error: (e, logged) => mine() && this._host.error(e, logged),
        subs: () => relay.connectSubs(),
        has: () => true,
      },
      (token) => {
        this._token = token;
        this._el.send({ t: 'token', token });
      },
    );
    this._relay = relay;
    this._conn = conn;
    this._tabs = 0;
    this._join();
  }

  follow(): void {
    const conn = this._conn;
    this._relay = this._conn = undefined;
    if (conn) {
      // Stepped down: the old connection goes without a word (its handlers are disarmed above).
      this._o.logger.debug('this tab no longer holds the shared connection');
      void conn.close();
    }
    this._end('leader changed');
    if (this._el.leader !== undefined) this._join();
  }

  // ---- this tab ----------------------------------------------------------------------------------

  /** Finds the tabs to share with (calling getToken first when only it tells who the user is), then joins. */
  private _open(): void {
    const o = this._o;
    const getToken = o.getToken;
    const user = o.sharedKey !== undefined ? 'key:' + o.sharedKey : this._token !== undefined ? tokenUser(this._token) : getToken ? undefined : '';
    if (user !== undefined || !getToken) return this._start(sharedName(o.url, user ?? ''));
    const failed = (cause: unknown): void => {
      if (!this._member || this._bc) return;
      this._host.error(new HeraldError(ClientErrorCode.Token, 'getToken() failed', { cause }));
      const attempt = this._tries++;
      const delay = Math.max(0, o.backoff(attempt)) || 0;
      this._setState({ to: 'disconnected', reason: 'token refresh failed', attempt, delay });
      this._retryTimer = o.clock.setTimeout(() => {
        if (!this._member || this._bc) return;
        this._setState({ to: 'connecting', attempt });
        this._open();
      }, delay);
    };
    fetchToken(o).then((token) => {
      this._token = token;
      if (this._member && !this._bc) this._open();
    }, failed);
  }

  private _start(name: string): void {
    const env = this._env;
    this._name = name;
    const bc = (this._bc = new env.BroadcastChannel(name));
    bc.onmessage = (ev) => this._receive(ev.data as SharedMessage);
    // Held until the tab leaves: verify() finds this tab's clientId through it.
    let own: (() => void) | undefined;
    env.locks.request(`${name}/${this._id}`, {}, () => new Promise<void>((resolve) => (own = resolve))).then(undefined, () => undefined);
    this._unhook = [
      () => own?.(),
      env.onLeave?.(() => this._member && !this._relay && bc.postMessage({ t: 'bye', from: this._id })) ?? (() => undefined),
      env.onVisible(() => this._wake()),
      env.onOnline(() => this._wake()),
    ];
    this._el.start();
    this._join();
  }

  /**
   * A closed tab leaves the election and the channel (a signed-out app that drops its client leaves nothing
   * running); connect() starts over. A message posted just before stays delivered: the channel is not
   * closed, only no longer listened to.
   */
  private _quit(): void {
    const bc = this._bc;
    if (!bc) return;
    bc.onmessage = null;
    this._bc = undefined;
    for (const off of this._unhook) off();
    this._unhook = [];
    this._el.stop();
    const conn = this._conn;
    this._relay = this._conn = undefined;
    if (conn) void conn.close();
  }

  /** Asks the leader for the connection, with every subscription and its position. */
  private _join(): void {
    if (!this._member || this._live) return;
    if (this._st !== 'connecting') this._setState({ to: 'connecting' });
    this._toLeader({ t: 'join', from: this._id, subs: this._host.subs() });
  }

  private _wake(): void {
    if (this._conn) this._conn.wake();
    else if (this._member) this._bc?.postMessage({ t: 'wake', from: this._id });
  }

  /** This tab's view of the connection ended (a new leader). */
  private _end(reason: string): void {
    if (this._member && this._st === 'connected') this._setState({ to: 'disconnected', reason });
    this._live = false;
    this._session++;
  }

  private _setState(s: Transition): void {
    if (s.to !== 'connecting') {
      this._live = false;
      this._session++;
    }
    this._st = s.to;
    this._host.state(s);
  }

  private _toLeader(m: TabMessage): void {
    if (this._relay) void Promise.resolve().then(() => this._fromTab(m));
    else this._bc?.postMessage(m);
  }

  private _receive(m: SharedMessage): void {
    if (isLeaderMessage(m)) {
      // A sign-out or a terminal close counts even from a leader already replaced: the tab next in the lock's
      // queue may be granted it before it reads this message. (A replaced leader posts nothing else.)
      if (this._el.heard(m.from, m.term) || (m.t === 'state' && m.s.to === 'closed')) this._fromLeader(m);
    } else {
      this._fromTab(m);
    }
  }

  /** What the leader posted (this tab may be the leader). */
  private _fromLeader(m: LeaderMessage): void {
    if (m.t === 'token') this._token = m.token;
    if (!this._member || (m.tab !== undefined && m.tab !== this._id)) return;
    if (m.t === 'tabs') return this._host.sharing?.({ tabs: m.n, leader: this._relay !== undefined });
    if (m.t === 'state') {
      // The echo of this tab's own close() (it may have connected again since).
      if (m.by === this._id) return;
      this._setState(m.s);
      if (m.s.to === 'connecting') this._join();
      else if (m.s.to === 'closed') {
        this._member = false;
        this._quit();
      }
    } else if (m.t === 'connected') {
      if (this._live) return;
      this._live = true;
      this._st = 'connected';
      const session = this._session;
      this._host.connected(m.f, () => session === this._session);
    } else if (m.t === 'frame' && this._live) {
      const channel = channelOf(m.f);
      if (m.tab === undefined && channel !== undefined && !this._host.has(channel)) return;
      this._host.frame(m.f);
    }
  }

  /** Leader: tells the tabs how many share the connection, when that changed. */
  private _count(relay: Relay): void {
    if (relay.members === this._tabs) return;
    this._tabs = relay.members;
    this._el.send({ t: 'tabs', n: relay.members });
  }

  /** What a tab asked of the leader; ignored unless this tab leads. */
  private _fromTab(m: TabMessage): void {
    const relay = this._relay;
    const conn = this._conn;
    if (!relay || !conn) return;
    switch (m.t) {
      case 'join':
        relay.join(m.from, m.subs);
        this._count(relay);
        // Starts the connection for its first member (retries now when waiting, as connect() does).
        return conn.connect();
      case 'send':
        return relay.request(m.from, m.f);
      case 'bye':
        // The connection stays: the leader's own tab is a member for as long as it leads.
        relay.leave(m.from);
        return this._count(relay);
      case 'close':
        this._by = m.from;
        relay.clear();
        void conn.close();
        return;
      case 'wake':
        return conn.wake();
      case 'probe':
        return this._el.probed();
    }
  }
}
