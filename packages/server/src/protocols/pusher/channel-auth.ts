import type { PusherApp } from './apps.js';
import type { PusherChannel } from './names.js';
import { channelAuthText, verifyAuth } from './signatures.js';

/** A presence member as the subscriber presents it: the user and its info (JSON text). */
export interface PresenceMember {
  user: string;
  infoJson: string;
}

/** A user signed in with `pusher:signin`. */
export interface SignedInUser {
  id: string;
  /** JSON text of `user_info` (`null` when absent). */
  infoJson: string;
}

/** The answer to a subscribe: allowed (with the member on a presence channel), or why not. */
export type ChannelAuthResult = { ok: true; member: PresenceMember | undefined } | { ok: false; status: number; message: string };

/** Longest user id Pusher accepts in a presence channel. */
const MAX_USER_ID = 128;

/** A user id from `channel_data.user_id` or `user_data.id`: a non-empty string (a number is taken as its text). */
export function userIdOf(v: unknown): string | undefined {
  const id = typeof v === 'number' && Number.isFinite(v) ? String(v) : v;
  return typeof id === 'string' && id.length > 0 && id.length <= MAX_USER_ID ? id : undefined;
}

/**
 * Decides a `pusher:subscribe`: public channels need nothing; `private-` and `private-encrypted-` a signature
 * of `socket_id:channel`; `presence-` a signature of `socket_id:channel:channel_data` (or of `socket_id:channel`
 * for a signed-in user without channel data); `#server-to-user-<id>` a sign-in as `<id>`. Signatures are
 * compared in constant time.
 */
export function authorizeChannel(
  app: PusherApp,
  socketId: string,
  ch: PusherChannel,
  data: Record<string, unknown>,
  user: SignedInUser | undefined,
): ChannelAuthResult {
  const denied = (message: string, status = 401): ChannelAuthResult => ({ ok: false, status, message });
  switch (ch.kind) {
    case 'public':
      return { ok: true, member: undefined };
    case 'user':
      return user !== undefined && ch.name === `#server-to-user-${user.id}` ? { ok: true, member: undefined } : denied('sign in as this user first', 403);
    case 'private':
    case 'encrypted':
      return verifyAuth(data['auth'], app.key, app.secret, channelAuthText(socketId, ch.name)) ? { ok: true, member: undefined } : denied('invalid signature');
    case 'presence': {
      const channelData = data['channel_data'];
      if (channelData === undefined && user !== undefined) {
        if (!verifyAuth(data['auth'], app.key, app.secret, channelAuthText(socketId, ch.name))) return denied('invalid signature');
        return { ok: true, member: { user: user.id, infoJson: user.infoJson } };
      }
      if (typeof channelData !== 'string') return denied('channel_data is required on a presence channel', 400);
      if (!verifyAuth(data['auth'], app.key, app.secret, channelAuthText(socketId, ch.name, channelData))) return denied('invalid signature');
      let parsed: unknown;
      try {
        parsed = JSON.parse(channelData);
      } catch {
        return denied('channel_data is not JSON', 400);
      }
      const o = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
      const id = userIdOf(o['user_id']);
      if (id === undefined) return denied(`channel_data.user_id must be a string or number of 1-${MAX_USER_ID} characters`, 400);
      return { ok: true, member: { user: id, infoJson: o['user_info'] === undefined ? 'null' : JSON.stringify(o['user_info']) } };
    }
  }
}
