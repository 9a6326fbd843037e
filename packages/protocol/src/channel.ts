/** A channel name: `[A-Za-z0-9_\-:.@=]{1,200}`. */
export type ChannelName = string;
/** A user id, the `sub` claim of a connection token. */
export type UserId = string;
/** A connection id assigned by the server. */
export type ClientId = string;

const CHANNEL_RE = /^[A-Za-z0-9_\-:.@=]{1,200}$/;

/**
 * Whether `name` is a valid channel name: `[A-Za-z0-9_\-:.@=]{1,200}`, and not a lookalike of a reserved
 * prefix (`USER:42`, `Private:x`): reserved prefixes are lowercase, and a name that differs from one only in
 * case would be a public channel that people and code take for a protected one.
 */
export function isValidChannel(name: unknown): name is ChannelName {
  if (typeof name !== 'string' || !CHANNEL_RE.test(name)) return false;
  const colon = name.indexOf(':');
  if (colon < 0) return true;
  const prefix = name.slice(0, colon + 1);
  const lower = prefix.toLowerCase();
  return lower === prefix || !RESERVED_PREFIXES.has(lower);
}

/** Prefix of per-user channels: `user:42` reaches every connection of user 42. */
export const USER_CHANNEL_PREFIX = 'user:';
/** Prefix of private channels: subscribable only with a token that grants them. */
export const PRIVATE_CHANNEL_PREFIX = 'private:';
/**
 * Prefix of presence channels: authorized like private ones (and only for connections with a user); their
 * subscribers see who else is there (members in `subscribed`, then `join` and `leave` frames).
 */
export const PRESENCE_CHANNEL_PREFIX = 'presence:';
/** Prefix of the pseudo-channel carried by messages published to one connection (`client:<id>`); never subscribable. */
export const CLIENT_CHANNEL_PREFIX = 'client:';
/**
 * Prefix of the gateway's own channels (the admin dashboard's feed): no token claim grants them and no
 * backend publishes to them; only a credential made for one (an admin token) subscribes.
 */
export const GATEWAY_CHANNEL_PREFIX = 'herald:';

/** Prefixes with a meaning; names that differ from them only in case are invalid (see isValidChannel). */
export const RESERVED_PREFIXES: ReadonlySet<string> = new Set([
  USER_CHANNEL_PREFIX,
  PRIVATE_CHANNEL_PREFIX,
  PRESENCE_CHANNEL_PREFIX,
  CLIENT_CHANNEL_PREFIX,
  GATEWAY_CHANNEL_PREFIX,
]);

/** The kind of a channel, which decides who may subscribe. */
export type ChannelKind = 'user' | 'private' | 'presence' | 'client' | 'gateway' | 'public';

/** Classifies a (valid) channel name. */
export function channelKind(name: ChannelName): ChannelKind {
  if (name.startsWith(USER_CHANNEL_PREFIX)) return 'user';
  if (name.startsWith(PRIVATE_CHANNEL_PREFIX)) return 'private';
  if (name.startsWith(PRESENCE_CHANNEL_PREFIX)) return 'presence';
  if (name.startsWith(CLIENT_CHANNEL_PREFIX)) return 'client';
  if (name.startsWith(GATEWAY_CHANNEL_PREFIX)) return 'gateway';
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
  'published',
  'ack',
  'acked',
  'join',
  'leave',
]);

/**
 * How deep a payload may nest objects and arrays (`{"a":[{"b":1}]}` is 3 deep). Deeper payloads are refused
 * (`payload_too_deep`) on every publish path: they cost stack in every JSON parser that reads them.
 */
export const MAX_PAYLOAD_DEPTH = 64;

/** Valid application message types: 1-100 characters of `[A-Za-z0-9_\-:.]`, not reserved. */
export const MESSAGE_TYPE_RE = /^[A-Za-z0-9_\-:.]{1,100}$/;

/** Whether `type` is one of the protocol's reserved frame types. */
export function isReservedType(type: string): boolean {
  return RESERVED_TYPES.has(type);
}
