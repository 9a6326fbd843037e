/** A channel name: `[A-Za-z0-9_\-:.@=]{1,200}`. */
export type ChannelName = string;
/** A user id, the `sub` claim of a connection token. */
export type UserId = string;
/** A connection id assigned by the server. */
export type ClientId = string;

const CHANNEL_RE = /^[A-Za-z0-9_\-:.@=]{1,200}$/;

/** Whether `name` is a valid channel name. */
export function isValidChannel(name: unknown): name is ChannelName {
  return typeof name === 'string' && CHANNEL_RE.test(name);
}

/** Prefix of per-user channels: `user:42` reaches every connection of user 42. */
export const USER_CHANNEL_PREFIX = 'user:';
/** Prefix of private channels: subscribable only with a token that grants them. */
export const PRIVATE_CHANNEL_PREFIX = 'private:';
/** Prefix of the pseudo-channel carried by messages published to one connection (`client:<id>`); never subscribable. */
export const CLIENT_CHANNEL_PREFIX = 'client:';

/** The kind of a channel, which decides who may subscribe. */
export type ChannelKind = 'user' | 'private' | 'client' | 'public';

/** Classifies a (valid) channel name. */
export function channelKind(name: ChannelName): ChannelKind {
  if (name.startsWith(USER_CHANNEL_PREFIX)) return 'user';
  if (name.startsWith(PRIVATE_CHANNEL_PREFIX)) return 'private';
  if (name.startsWith(CLIENT_CHANNEL_PREFIX)) return 'client';
  return 'public';
}

/** The channel of user `id`. */
export function userChannel(id: UserId): ChannelName {
  return USER_CHANNEL_PREFIX + id;
}

/**
 * Frame types of the protocol itself. An application message may not use one of them as its `type`,
 * so a client can always tell protocol frames from application messages.
 */
export const RESERVED_TYPES: ReadonlySet<string> = new Set([
  'connect',
  'connected',
  'subscribe',
  'subscribed',
  'unsubscribe',
  'unsubscribed',
  'ping',
  'pong',
  'error',
  'publish',
  'ack',
]);

/** Valid application message types: 1-100 characters of `[A-Za-z0-9_\-:.]`, not reserved. */
export const MESSAGE_TYPE_RE = /^[A-Za-z0-9_\-:.]{1,100}$/;

/** Whether `type` is one of the protocol's reserved frame types. */
export function isReservedType(type: string): boolean {
  return RESERVED_TYPES.has(type);
}
