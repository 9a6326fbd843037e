/**
 * Pusher test helpers: a gateway with Pusher apps, a raw WebSocket client that queues Pusher frames, signatures
 * as an app server makes them, a signed HTTP API call, and pusher-js clients (the real, unmodified npm package)
 * that authorize through a local handler instead of an auth endpoint.
 */
import { createHmac } from 'node:crypto';
import PusherServerModule from 'pusher';
import PusherModule from 'pusher-js';
import type { ChannelAuthorizationCallback, UserAuthenticationCallback } from 'pusher-js';
import WebSocket from 'ws';
import type { GatewayOptions } from '../src/gateway/options.js';
import type { RouteHook } from '../src/http/handler.js';
import type { PusherAppOptions } from '../src/protocols/pusher/apps.js';
import { ManualClock, onCleanup, startGateway, type TestGateway } from './helpers.js';

/** The pusher-js client class (a CommonJS package: its default export, however the loader presents it). */
export const Pusher = ((PusherModule as { default?: unknown }).default ?? PusherModule) as typeof PusherModule.default;
/** The `pusher` server SDK class (CommonJS). */
export const PusherServer = ((PusherServerModule as { default?: unknown }).default ?? PusherServerModule) as typeof PusherServerModule;
/** A pusher-js client. */
export type Pusher = InstanceType<typeof PusherModule.default>;

export const APP: Required<Pick<PusherAppOptions, 'id' | 'key' | 'secret'>> = { id: 'app1', key: 'app-key-1', secret: 'app-secret-0123456789' };

/** A gateway with the test app (plus `apps`), on port 0. */
export async function startPusherGateway(opts: GatewayOptions & { app?: Partial<PusherAppOptions> } = {}): Promise<TestGateway & { port: number }> {
  const { app, ...rest } = opts;
  // The clock starts at the real time: HTTP API requests are signed with it (±600 s).
  const g = await startGateway({ pusherApps: [{ ...APP, ...app }], clock: new ManualClock(Date.now()), ...rest });
  return { ...g, port: g.gateway.address().port };
}

/** hex HMAC-SHA256, as app servers sign. */
export const hmac = (secret: string, text: string): string => createHmac('sha256', secret).update(text).digest('hex');

/** `key:signature` of a private channel subscription. */
export function privateAuth(socketId: string, channel: string, app = APP): string {
  return `${app.key}:${hmac(app.secret, `${socketId}:${channel}`)}`;
}

/** `{auth, channel_data}` of a presence subscription. */
export function presenceAuth(
  socketId: string,
  channel: string,
  member: { user_id: string | number; user_info?: unknown },
  app = APP,
): { auth: string; channel_data: string } {
  const channelData = JSON.stringify(member);
  return { auth: `${app.key}:${hmac(app.secret, `${socketId}:${channel}:${channelData}`)}`, channel_data: channelData };
}

/** `{auth, user_data}` of a sign-in. */
export function signinAuth(socketId: string, user: { id: string; user_info?: unknown }, app = APP): { auth: string; user_data: string } {
  const userData = JSON.stringify(user);
  return { auth: `${app.key}:${hmac(app.secret, `${socketId}::user::${userData}`)}`, user_data: userData };
}

/** A Pusher frame as received. */
export interface PFrame {
  event: string;
  channel?: string;
  data?: unknown;
  user_id?: string;
}

/** A raw Pusher WebSocket client: frames queued in arrival order; `next`/`nextEvent` wait for them. */
export class PusherTestClient {
  readonly ws: WebSocket;
  readonly frames: PFrame[] = [];
  readonly raw: string[] = [];
  closeCode: number | undefined;
  private cursor = 0;
  private waiters: Array<() => void> = [];
  private readonly closedP: Promise<{ code: number; reason: string }>;
  socketId = '';

  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.ws.on('error', () => undefined);
    this.ws.on('message', (data) => {
      const text = (data as Buffer).toString('utf8');
      this.raw.push(text);
      this.frames.push(JSON.parse(text) as PFrame);
      this.wake();
    });
    this.closedP = new Promise((resolve) => {
      this.ws.once('close', (code, reason) => {
        this.closeCode = code;
        this.wake();
        resolve({ code, reason: reason.toString() });
      });
    });
    onCleanup(() => this.ws.terminate());
  }

  /** Connects to `/app/<key>?protocol=7...` and waits for `pusher:connection_established`. */
  static async connect(port: number, key = APP.key, query = 'protocol=7&client=js&version=8.6.0&flash=false'): Promise<PusherTestClient> {
    const c = new PusherTestClient(`ws://127.0.0.1:${port}/app/${key}?${query}`);
    const f = await c.nextEvent('pusher:connection_established');
    c.socketId = (JSON.parse(f.data as string) as { socket_id: string }).socket_id;
    return c;
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  async waitFor<T>(check: () => T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = check();
      if (v !== undefined) return v;
      if (this.closeCode !== undefined)
        throw new Error(`closed (${this.closeCode}) while waiting for ${what}; frames: ${JSON.stringify(this.frames.slice(-5))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; frames: ${JSON.stringify(this.frames.slice(-5))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** The next frame matching `pred` (frames before it are skipped). */
  nextWhere(pred: (f: PFrame) => boolean, what: string): Promise<PFrame> {
    return this.waitFor(() => {
      while (this.cursor < this.frames.length) {
        const f = this.frames[this.cursor++] as PFrame;
        if (pred(f)) return f;
      }
      return undefined;
    }, what);
  }

  nextEvent(event: string, channel?: string): Promise<PFrame> {
    return this.nextWhere((f) => f.event === event && (channel === undefined || f.channel === channel), `${event}${channel ? ` on ${channel}` : ''}`);
  }

  /** Frames of `event` received so far. */
  events(event: string, channel?: string): PFrame[] {
    return this.frames.filter((f) => f.event === event && (channel === undefined || f.channel === channel));
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** Subscribes and waits for success or an error; returns the answer. */
  async subscribe(channel: string, extra: Record<string, unknown> = {}): Promise<PFrame> {
    this.send({ event: 'pusher:subscribe', data: { auth: '', channel, ...extra } });
    return this.nextWhere(
      (f) => f.channel === channel && (f.event === 'pusher_internal:subscription_succeeded' || f.event === 'pusher:subscription_error'),
      `subscribe ${channel}`,
    );
  }

  /** A ping/pong round trip at the WebSocket level: every frame sent before it has been processed. */
  roundTrip(): Promise<void> {
    return new Promise((resolve) => {
      this.ws.once('pong', () => resolve());
      this.ws.ping();
    });
  }

  closed(timeoutMs = 10_000): Promise<{ code: number; reason: string }> {
    return Promise.race([this.closedP, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no close')), timeoutMs).unref())]);
  }
}

/** A pusher-js client (Node build) on the gateway: ws only, authorizing through local signatures. */
export function pusherJs(
  port: number,
  opts: { key?: string; user?: { id: string; user_info?: unknown }; member?: { user_id: string; user_info?: unknown }; app?: typeof APP } = {},
): Pusher {
  const app = opts.app ?? APP;
  const client = new Pusher(opts.key ?? app.key, {
    cluster: 'mt1',
    wsHost: '127.0.0.1',
    wsPort: port,
    forceTLS: false,
    enabledTransports: ['ws'],
    channelAuthorization: {
      endpoint: '/unused',
      transport: 'ajax',
      customHandler: ({ socketId, channelName }: { socketId: string; channelName: string }, callback: ChannelAuthorizationCallback) => {
        if (channelName.startsWith('presence-')) callback(null, presenceAuth(socketId, channelName, opts.member ?? { user_id: '1' }, app));
        else callback(null, { auth: privateAuth(socketId, channelName, app) });
      },
    },
    userAuthentication: {
      endpoint: '/unused',
      transport: 'ajax',
      customHandler: ({ socketId }: { socketId: string }, callback: UserAuthenticationCallback) =>
        callback(null, signinAuth(socketId, opts.user ?? { id: '1' }, app)),
    },
  });
  onCleanup(() => client.disconnect());
  return client;
}

/** Resolves once `client` reaches `state` (connected, disconnected, ...). */
export function pusherState(client: Pusher, state: string, timeoutMs = 10_000): Promise<void> {
  if (client.connection.state === state) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`pusher-js did not reach ${state} (is ${client.connection.state})`)), timeoutMs);
    const on = (change: { current: string }): void => {
      if (change.current !== state) return;
      clearTimeout(t);
      client.connection.unbind('state_change', on);
      resolve();
    };
    client.connection.bind('state_change', on);
  });
}

/** Resolves with the next `event` on `channel` of a pusher-js client. */
export function pusherEvent<T = unknown>(client: Pusher, channel: string, event: string, timeoutMs = 10_000): Promise<{ data: T; metadata: unknown }> {
  return new Promise((resolve, reject) => {
    const ch = client.channel(channel) ?? client.subscribe(channel);
    const t = setTimeout(() => reject(new Error(`no ${event} on ${channel}`)), timeoutMs);
    const on = (data: T, metadata: unknown): void => {
      clearTimeout(t);
      ch.unbind(event, on);
      resolve({ data, metadata });
    };
    ch.bind(event, on);
  });
}

/** The user a Laravel-style auth endpoint authorizes: who is logged in, and what the channel callbacks return. */
export interface AuthUser {
  id: string;
  info?: Record<string, unknown>;
  /** Channels the callbacks refuse (403). */
  deny?: readonly string[];
}

/**
 * `/broadcasting/auth` and `/broadcasting/user-auth` as Laravel's PusherBroadcaster answers them, signed by the
 * real `pusher` server SDK (authorizeChannel, authenticateUser): form-encoded `socket_id` and `channel_name` in,
 * `{auth[, channel_data]}` or `{auth, user_data}` out, 403 for a refused channel. `?as=<user id>` picks the
 * logged-in user (the first by default). Add it with `gateway.addRoute`.
 */
export function laravelAuthRoute(users: readonly AuthUser[], app = APP): RouteHook {
  const server = new PusherServer({ appId: app.id, key: app.key, secret: app.secret, host: '127.0.0.1', useTLS: false });
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    // `?as=<id>` stands in for the session cookie that tells Laravel who is logged in.
    const user = users.find((u) => u.id === url.searchParams.get('as')) ?? (users[0] as AuthUser);
    if (path !== '/broadcasting/auth' && path !== '/broadcasting/user-auth') return false;
    void req.body(65536).then((bytes) => {
      const form = new URLSearchParams(bytes.toString('utf8'));
      const socketId = form.get('socket_id') ?? '';
      const channel = form.get('channel_name') ?? '';
      const send = (status: number, body: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/json', 'access-control-allow-origin': '*' });
        res.end(JSON.stringify(body));
      };
      if (path === '/broadcasting/user-auth')
        return send(200, server.authenticateUser(socketId, { id: user.id, ...(user.info ? { user_info: user.info } : {}) }));
      if (user.deny?.some((d) => channel.endsWith(d))) return send(403, { message: 'This action is unauthorized.' });
      if (channel.startsWith('presence-')) {
        return send(200, server.authorizeChannel(socketId, channel, { user_id: user.id, ...(user.info ? { user_info: user.info } : {}) }));
      }
      return send(200, server.authorizeChannel(socketId, channel));
    });
    return true;
  };
}
