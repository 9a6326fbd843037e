import { namespacedChannel, type ChannelName } from '@herald/protocol';

/**
 * Pusher channel names and kinds. Names are `[A-Za-z0-9_\-=@,.;]{1,200}` (the SDKs' check; Pusher documents
 * 164), plus `#server-to-user-<id>`; the core name of a channel of app `a` is `$pusher.a:<name>`.
 */
const NAME_RE = /^[A-Za-z0-9_\-=@,.;]{1,200}$/;
/** The channel `sendToUser` publishes on; only a connection signed in as that user may subscribe. */
export const SERVER_TO_USER_PREFIX = '#server-to-user-';

/** What a channel is, from its prefix (pusher-js classifies the same way). */
export type PusherChannelKind = 'public' | 'private' | 'encrypted' | 'presence' | 'user';

/** A parsed Pusher channel name. */
export interface PusherChannel {
  name: string;
  kind: PusherChannelKind;
  /** `cache-`, `private-cache-`, `private-encrypted-cache-` or `presence-cache-`: the last event is replayed on subscribe. */
  cache: boolean;
}

/** The kind of a valid name. */
export function channelKindOf(name: string): PusherChannel {
  if (name.startsWith(SERVER_TO_USER_PREFIX)) return { name, kind: 'user', cache: false };
  if (name.startsWith('private-encrypted-')) return { name, kind: 'encrypted', cache: name.startsWith('private-encrypted-cache-') };
  if (name.startsWith('private-')) return { name, kind: 'private', cache: name.startsWith('private-cache-') };
  if (name.startsWith('presence-')) return { name, kind: 'presence', cache: name.startsWith('presence-cache-') };
  return { name, kind: 'public', cache: name.startsWith('cache-') };
}

/** Whether `name` is a valid Pusher channel name (`#server-to-user-<id>` included). */
export function isPusherChannel(name: unknown): name is string {
  if (typeof name !== 'string') return false;
  if (name.startsWith(SERVER_TO_USER_PREFIX)) return name.length > SERVER_TO_USER_PREFIX.length && NAME_RE.test(name.slice(1));
  return NAME_RE.test(name);
}

/** The core channel of Pusher channel `name` of app `appId`. */
export function coreChannel(appId: string, name: string): ChannelName {
  return namespacedChannel('pusher', appId, name);
}

/** The Pusher name of a core channel of this namespace (everything after the first `:`). */
export function pusherName(core: ChannelName): string {
  return core.slice(core.indexOf(':') + 1);
}

/** The user channel of user `id`. */
export function serverToUser(id: string): string {
  return SERVER_TO_USER_PREFIX + id;
}

/** The core user of a signed-in Pusher user: its own namespace, apart from native users and other apps. */
export function pusherUser(appId: string, id: string): string {
  return `$pusher.${appId}:${id}`;
}

/**
 * The core name under which a channel's occupancy is kept (engine Members with one pseudo-user): the first
 * subscriber anywhere in the cluster is `channel_occupied`, the last one gone `channel_vacated`.
 */
export function occupancyChannel(appId: string, name: string): ChannelName {
  return namespacedChannel('pusherocc', appId, name);
}

/** The occupancy pseudo-user: every connection of a channel joins its occupancy as it. */
export const OCCUPANT = '*';
