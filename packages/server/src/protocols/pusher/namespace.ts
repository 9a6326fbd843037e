import { encodeEventType } from '@herald/protocol';
import type { ChannelNamespaces } from '../../delivery/publish-request.js';
import { HeraldError } from '../../util/errors.js';
import type { PusherApps } from './apps.js';
import { coreChannel, isPusherChannel } from './names.js';

/**
 * The Pusher apps as channel namespaces of the native API and the Redis ingest (`{"app":"app1","channel":
 * "private-orders","type":"OrderShipped","payload":{...}}`): `app` is an app id, `channel` a Pusher channel name,
 * `type` any Pusher event name (pusher-js receives it as the event, the payload as its data).
 */
export function pusherNamespaces(apps: PusherApps): ChannelNamespaces {
  const app = (id: string): string => {
    const found = apps.id(id);
    if (!found) throw new HeraldError('not_found', `no app ${id.slice(0, 64)}`, { field: 'app' });
    return found.id;
  };
  return {
    has: (id) => apps.id(id) !== undefined,
    channel(id, channel, field) {
      const appId = app(id);
      if (!isPusherChannel(channel)) throw new HeraldError('invalid_channel', `${field} is not a valid Pusher channel name`, { field });
      return coreChannel(appId, channel);
    },
    type(id, type, field) {
      app(id);
      const t = type.length <= 200 ? encodeEventType(type) : undefined;
      if (t === undefined) throw new HeraldError('invalid_field', `${field} must be an event name of 1-200 characters`, { field });
      return t;
    },
  };
}
