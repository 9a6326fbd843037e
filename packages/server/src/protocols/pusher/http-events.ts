import { encodeEventType } from '@herald/protocol';
import { HeraldError } from '../../util/errors.js';
import type { PusherApp } from './apps.js';
import { channelKindOf, isPusherChannel } from './names.js';
import { payloadOfData } from './payload.js';

/** One validated event of `POST /events` or `batch_events`. */
export interface EventItem {
  channels: string[];
  /** The event name as a core message type (percent-encoded where needed). */
  type: string;
  payloadJson: string;
  socketId: string | undefined;
  /** Attributes asked for in the answer (`subscription_count`, `user_count`). */
  info: string[];
}

/** Most channels of one event (Pusher's limit, which both SDKs enforce too). */
export const MAX_EVENT_CHANNELS = 100;
/** Longest event name. */
const MAX_NAME = 200;
const SOCKET_ID = /^\d+\.\d+$/;

const field = (name: string, message: string): HeraldError => new HeraldError('invalid_field', `${name} ${message}`, { field: name });

/**
 * Validates one event body: `name` (1-200 characters), `data` (a string, at most the app's `maxEventSize` bytes:
 * 413 above), `channel` or `channels` (1-100 Pusher channel names; only `channel` in a batch), `socket_id`
 * (`<digits>.<digits>`: that connection does not receive the event), `info`.
 */
export function parseEventItem(raw: unknown, app: PusherApp, at: string, many: boolean): EventItem {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new HeraldError('invalid_body', `${at || 'the body'} must be a JSON object`);
  const o = raw as Record<string, unknown>;
  const name = o['name'];
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME) throw field(`${at}name`, `must be a string of 1-${MAX_NAME} characters`);
  const type = encodeEventType(name);
  if (type === undefined) throw field(`${at}name`, 'is not a valid event name');
  const data = o['data'];
  if (typeof data !== 'string') throw field(`${at}data`, 'must be a string');
  if (Buffer.byteLength(data) > app.maxEventSize) {
    throw new HeraldError('body_too_large', `${at}data exceeds ${app.maxEventSize} bytes`, { field: `${at}data`, extra: { limit: app.maxEventSize } });
  }
  let channels: unknown[];
  if (o['channels'] !== undefined && many) {
    if (!Array.isArray(o['channels']) || o['channels'].length === 0) throw field(`${at}channels`, 'must be a non-empty array');
    channels = o['channels'];
  } else if (o['channel'] !== undefined) {
    channels = [o['channel']];
  } else {
    throw new HeraldError('missing_field', `${at}channel is required`, { field: `${at}channel` });
  }
  if (channels.length > MAX_EVENT_CHANNELS) throw field(`${at}channels`, `must have at most ${MAX_EVENT_CHANNELS} channels`);
  for (const c of channels) {
    if (!isPusherChannel(c))
      throw new HeraldError('invalid_channel', `${at}channels: ${String(c).slice(0, 200)} is not a valid channel name`, { field: `${at}channels` });
  }
  const names = [...new Set(channels as string[])];
  if (names.length > 1 && names.some((c) => channelKindOf(c).kind === 'encrypted')) {
    throw field(`${at}channels`, 'an event to an encrypted channel must have that one channel only');
  }
  const socketId = o['socket_id'];
  if (socketId !== undefined && (typeof socketId !== 'string' || !SOCKET_ID.test(socketId)))
    throw field(`${at}socket_id`, 'must be a socket id (<digits>.<digits>)');
  const info = o['info'];
  if (info !== undefined && typeof info !== 'string') throw field(`${at}info`, 'must be a comma-separated string');
  return {
    channels: names,
    type,
    payloadJson: payloadOfData(data),
    socketId,
    info: info === undefined ? [] : info.split(',').filter((a) => a.length > 0),
  };
}
