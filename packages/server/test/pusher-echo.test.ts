/**
 * Laravel Echo 2 (the real npm package) over pusher-js 8 in Node, configured as Laravel's docs configure it for
 * Reverb (`broadcaster: 'reverb'`) and for Pusher (`broadcaster: 'pusher'` with a cluster), authorizing at a
 * Laravel-style `/broadcasting/auth` signed by the `pusher` server SDK, publishing as Laravel's PusherBroadcaster
 * does (`trigger` with the event's class name, `socket_id` for `toOthers()`).
 */
import Echo from 'laravel-echo';
import { describe, expect, it } from 'vitest';
import { onCleanup } from './helpers.js';
import { APP, laravelAuthRoute, Pusher, PusherServer, startPusherGateway } from './pusher-helpers.js';

type EchoClient = InstanceType<typeof Echo>;

/** An Echo client as a Laravel front end makes one, logged in as `user` (the auth endpoint's `?as=`). */
function echoAs(port: number, broadcaster: 'reverb' | 'pusher', user: string): EchoClient {
  const echo = new Echo({
    broadcaster,
    key: APP.key,
    ...(broadcaster === 'pusher' ? { cluster: 'mt1' } : {}),
    wsHost: '127.0.0.1',
    wsPort: port,
    wssPort: port,
    forceTLS: false,
    enabledTransports: ['ws', 'wss'],
    authEndpoint: `http://127.0.0.1:${port}/broadcasting/auth?as=${user}`,
    Pusher,
  } as never) as EchoClient;
  onCleanup(() => echo.disconnect());
  return echo;
}

const socketIdOf = (echo: EchoClient): Promise<string> =>
  new Promise((resolve) => {
    const pusher = (echo.connector as unknown as { pusher: InstanceType<typeof Pusher> }).pusher;
    if (pusher.connection.state === 'connected') resolve(pusher.connection.socket_id);
    else pusher.connection.bind('connected', () => resolve(pusher.connection.socket_id));
  });

describe('Laravel Echo 2 in Node', () => {
  it.each(['reverb', 'pusher'] as const)(
    'broadcaster %s: private listen, presence here/joining/leaving, whispers, toOthers, refused channels',
    async (broadcaster) => {
      const { port, gateway } = await startPusherGateway();
      gateway.addRoute(
        laravelAuthRoute([
          { id: '1', info: { name: 'Ann' }, deny: ['private-admin'] },
          { id: '2', info: { name: 'Bob' } },
        ]),
      );
      const backend = new PusherServer({ appId: APP.id, key: APP.key, secret: APP.secret, host: '127.0.0.1', port: String(port), useTLS: false });
      const ann = echoAs(port, broadcaster, '1');
      const annSocket = await socketIdOf(ann);

      const shipped = new Promise<unknown>((resolve) => ann.private('orders.1').listen('OrderShipped', resolve));
      await new Promise<void>((resolve) => ann.private('orders.1').subscribed(() => resolve()));
      // Laravel: broadcast(new OrderShipped($order)) -> trigger(['private-orders.1'], 'App\\Events\\OrderShipped', payload).
      await backend.trigger(['private-orders.1'], 'App\\Events\\OrderShipped', { order: { id: 1, url: 'https://x.test/a' } });
      expect(await shipped).toEqual({ order: { id: 1, url: 'https://x.test/a' } });

      const refused = new Promise<{ status?: number }>((resolve) => ann.private('admin').error(resolve));
      expect((await refused).status).toBe(403);

      expect(await new Promise<unknown[]>((resolve) => ann.join('room').here(resolve))).toEqual([{ name: 'Ann' }]);
      const joining = new Promise<unknown>((resolve) => ann.join('room').joining(resolve));
      const bob = echoAs(port, broadcaster, '2');
      const bobHere = new Promise<unknown[]>((resolve) => bob.join('room').here(resolve));
      expect(await joining).toEqual({ name: 'Bob' });
      expect(((await bobHere) as Array<{ name: string }>).map((m) => m.name).sort()).toEqual(['Ann', 'Bob']);

      const whisper = new Promise<unknown>((resolve) => bob.join('room').listenForWhisper('typing', resolve));
      ann.join('room').whisper('typing', { who: 'Ann' });
      expect(await whisper).toEqual({ who: 'Ann' });

      // toOthers(): Laravel passes the X-Socket-ID of Ann's request as socket_id.
      const bobGot = new Promise<unknown>((resolve) => bob.join('room').listen('.chat', resolve));
      // Events of a channel arrive in order: Ann's first chat event being the second one proves the exclusion.
      const annFirst = new Promise<unknown>((resolve) => ann.join('room').listen('.chat', resolve));
      await backend.trigger('presence-room', 'chat', { text: 'hi' }, { socket_id: annSocket });
      await backend.trigger('presence-room', 'chat', { text: 'all' });
      expect(await bobGot).toEqual({ text: 'hi' });
      expect(await annFirst).toEqual({ text: 'all' });

      const leaving = new Promise<unknown>((resolve) => ann.join('room').leaving(resolve));
      bob.leave('room');
      expect(await leaving).toEqual({ name: 'Bob' });
    },
  );
});
