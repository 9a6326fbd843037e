import { channelKind, userChannel, type ChannelName, type ErrorCode } from '@herald/protocol';
import type { Identity } from './types.js';

const compiled = new Map<string, RegExp>();

/**
 * Compiles a channel pattern: `*` matches any run of characters, `?` exactly one; everything else is
 * literal. Compiled patterns are cached (a token's patterns repeat across connections).
 */
export function compilePattern(pattern: string): RegExp {
  let re = compiled.get(pattern);
  if (!re) {
    const body = pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.');
    re = new RegExp(`^${body}$`);
    if (compiled.size > 10_000) compiled.clear();
    compiled.set(pattern, re);
  }
  return re;
}

/** Whether `channel` matches one of the glob `patterns`. */
export function matchesAny(channel: ChannelName, patterns: readonly string[]): boolean {
  return patterns.some((p) => compilePattern(p).test(channel));
}

/**
 * Decides whether `identity` may subscribe to `channel` (a valid name). Returns null when allowed, or
 * the error code to answer with:
 * - `user:{id}`: only the connection's own user;
 * - `private:*`: only when the token's `channels` claim has a matching pattern;
 * - `presence:*`: the same, and only for a connection with a user;
 * - `client:*`: never (messages to one connection need no subscription);
 * - `herald:*`: the gateway's own channels, only by exact name to a credential made for it (admin tokens);
 * - anything else is public.
 */
export function checkSubscribe(identity: Identity, channel: ChannelName): ErrorCode | null {
  switch (channelKind(channel)) {
    case 'user':
      return identity.user !== null && channel === userChannel(identity.user) ? null : 'forbidden';
    case 'private':
      return matchesAny(channel, identity.channels) ? null : 'forbidden';
    case 'presence':
      // Members are users: a connection without one cannot be a member, whatever it is granted.
      return identity.user !== null && matchesAny(channel, identity.channels) ? null : 'forbidden';
    case 'client':
      return 'forbidden';
    case 'gateway':
      // Granted by name to a credential made for it, never by a pattern of the `channels` claim.
      return identity.gateway.includes(channel) ? null : 'forbidden';
    case 'public':
      return null;
  }
}

/**
 * Decides whether `identity` may publish to `channel` (a valid name) from the client. Every kind needs a pattern
 * of the token's `publish` claim, public channels too (a client publish is an application's decision, never a
 * default); `client:*` and the gateway's `herald:*` channels never. A user channel (another user's, or the
 * connection's own) follows the same grants.
 */
export function checkPublish(identity: Identity, channel: ChannelName): ErrorCode | null {
  const kind = channelKind(channel);
  if (kind === 'client' || kind === 'gateway') return 'forbidden';
  const granted = identity.publish;
  return granted !== undefined && matchesAny(channel, granted) ? null : 'forbidden';
}
