import { isValidChannel, MESSAGE_TYPE_RE, type ChannelName } from './channel.js';

/**
 * Channel namespaces. The delivery core carries every protocol's channels side by side; a channel outside the
 * native namespace has a core name `$<kind>.<id>:<name>`, e.g. `$pusher.app1:private-orders` for the Pusher
 * channel `private-orders` of app `app1`. `$` is in neither the native nor the Pusher channel charset, so no
 * client of either protocol can name a channel of another namespace. Every character allowed here is JSON-safe
 * (no quote, no backslash, no control character): the Redis publish script builds frames by concatenation.
 */

/** `<kind>`: lowercase letters; `<id>`: `[A-Za-z0-9_-]{1,64}`; `<name>`: an optional `#`, then `[A-Za-z0-9_\-=@,.;:]`. */
const NAMESPACED_RE = /^\$([a-z]{1,16})\.([A-Za-z0-9_-]{1,64}):(#?[A-Za-z0-9_\-=@,.;:]{1,200})$/;

/** Longest namespaced core channel name: `$` + 16 + `.` + 64 + `:` + 201. */
export const MAX_CORE_CHANNEL_LENGTH = 283;

/** Ids of namespace instances (a Pusher app id): `[A-Za-z0-9_-]{1,64}`. */
export const NAMESPACE_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

/** A parsed namespaced channel. */
export interface NamespacedChannel {
  kind: string;
  id: string;
  name: string;
}

/** Whether `name` is a namespaced core channel (`$<kind>.<id>:<name>`). */
export function isNamespacedChannel(name: unknown): name is ChannelName {
  return typeof name === 'string' && name.charCodeAt(0) === 0x24 && NAMESPACED_RE.test(name);
}

/**
 * Whether `name` is a channel the delivery core and the engines accept: a native channel
 * (`[A-Za-z0-9_\-:.@=]{1,200}`) or a namespaced one. Native clients are still held to `isValidChannel`.
 */
export function isValidCoreChannel(name: unknown): name is ChannelName {
  return isValidChannel(name) || isNamespacedChannel(name);
}

/** The core name of channel `name` in namespace `kind`/`id` (both assumed valid). */
export function namespacedChannel(kind: string, id: string, name: string): ChannelName {
  return `$${kind}.${id}:${name}`;
}

/** Splits a namespaced core channel; undefined for a native one. */
export function parseNamespacedChannel(channel: ChannelName): NamespacedChannel | undefined {
  const m = NAMESPACED_RE.exec(channel);
  if (!m) return undefined;
  return { kind: m[1] as string, id: m[2] as string, name: m[3] as string };
}

/**
 * Message types of namespaced channels: any event name of another protocol (Pusher's `App\Events\OrderShipped`),
 * written in the core envelope percent-encoded (UTF-8 bytes as `%XX`) so the type stays JSON-safe:
 * `[A-Za-z0-9_\-:.%]{1,600}`. A name already within the native type grammar is written as it is.
 */
export const NAMESPACED_TYPE_RE = /^[A-Za-z0-9_\-:.%]{1,600}$/;

const SAFE_TYPE_CHAR = /[A-Za-z0-9_\-:.]/;

/**
 * Encodes an event name as a namespaced message type (lossless: `decodeEventType` gives it back). Undefined
 * when the name cannot be encoded (empty, a lone surrogate, or longer than the type grammar allows).
 */
export function encodeEventType(name: string): string | undefined {
  if (name.length === 0) return undefined;
  if (MESSAGE_TYPE_RE.test(name)) return name;
  let out = '';
  for (const ch of name) {
    if (SAFE_TYPE_CHAR.test(ch)) {
      out += ch;
      continue;
    }
    const cp = ch.codePointAt(0) as number;
    if (cp >= 0xd800 && cp <= 0xdfff) return undefined;
    // encodeURIComponent writes UTF-8 bytes as %XX, except for a few ASCII marks (!'()*~) it leaves alone.
    const e = encodeURIComponent(ch);
    out += e.length > 1 ? e : `%${cp < 16 ? '0' : ''}${cp.toString(16).toUpperCase()}`;
  }
  return NAMESPACED_TYPE_RE.test(out) ? out : undefined;
}

/** The event name of a namespaced message type (the inverse of `encodeEventType`). */
export function decodeEventType(type: string): string {
  if (!type.includes('%')) return type;
  try {
    return decodeURIComponent(type);
  } catch {
    return type;
  }
}
