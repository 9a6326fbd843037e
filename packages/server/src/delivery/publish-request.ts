import {
  channelKind,
  isReservedType,
  isValidChannel,
  MAX_PAYLOAD_DEPTH,
  MESSAGE_TYPE_RE,
  userChannel,
  type ChannelName,
  type ClientId,
} from '@herald/protocol';
import { HeraldError } from '../util/errors.js';

/** One validated publish request. */
export interface PublishItem {
  target: { kind: 'channels'; channels: ChannelName[] } | { kind: 'client'; client: ClientId };
  type: string;
  payloadJson: string;
  id: string | undefined;
  /** A connection that must not receive it (a Pusher `socket_id`). */
  exclude?: ClientId;
}

const PUBLISH_FIELDS = new Set(['app', 'channel', 'channels', 'client', 'type', 'payload', 'id']);

/**
 * The channel namespaces of other protocols (a Pusher app), as the native API and the Redis ingest publish into
 * them with an `app` field: `channel`/`channels` are then that namespace's names and `type` one of its event
 * names. Methods throw a HeraldError naming `field` (an unknown app is `not_found`).
 */
export interface ChannelNamespaces {
  /** The core channel of `channel` in namespace `app`. */
  channel(app: string, channel: string, field: string): ChannelName;
  /** The core message type of event `type` in namespace `app`. */
  type(app: string, type: string, field: string): string;
}

/** No namespace configured: every `app` is unknown. */
export const NO_NAMESPACES: ChannelNamespaces = {
  channel: (app, _channel, field) => {
    throw new HeraldError('not_found', `no app ${app.slice(0, 64)}`, { field });
  },
  type: (app, _type, field) => {
    throw new HeraldError('not_found', `no app ${app.slice(0, 64)}`, { field });
  },
};
const MAX_ID_LENGTH = 200;

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A `missing_field` error naming `field`. */
export function missing(field: string): HeraldError {
  return new HeraldError('missing_field', `${field} is required`, { field });
}

/** An `invalid_field` error naming `field`. */
export function invalid(field: string, message: string): HeraldError {
  return new HeraldError('invalid_field', `${field} ${message}`, { field });
}

function channelField(v: unknown, field: string): ChannelName {
  if (typeof v !== 'string') throw invalid(field, 'must be a string');
  if (!isValidChannel(v)) throw new HeraldError('invalid_channel', `${field} is not a valid channel name ([A-Za-z0-9_-:.@=]{1,200})`, { field });
  // Nobody can subscribe to client: channels; a message for one connection uses the `client` field.
  if (channelKind(v) === 'client')
    throw new HeraldError('invalid_channel', `${field}: publish to one connection with "client", not a client: channel`, { field });
  if (channelKind(v) === 'gateway') throw new HeraldError('forbidden', `${field}: herald: channels are the gateway's own`, { field });
  return v;
}

/**
 * How deep `value` nests objects and arrays, counted without recursion (a payload 20 000 levels deep must
 * not overflow the stack here, nor in JSON.stringify after). Stops counting past `limit`.
 */
export function nestingDepth(value: unknown, limit: number): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (typeof v !== 'object' || v === null) continue;
    if (depth > max) max = depth;
    if (max > limit) return max;
    for (const child of Array.isArray(v) ? v : Object.values(v)) if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
  }
  return max;
}

/** Whether `id` can be a user id (so that `user:{id}` is a valid channel). */
export function isValidUserId(id: string): boolean {
  return id.length > 0 && isValidChannel(userChannel(id));
}

/** Validates one publish object; `at` prefixes field names inside an array (`[2].`). */
export function parsePublishItem(raw: unknown, at: string, maxChannels: number, namespaces: ChannelNamespaces = NO_NAMESPACES): PublishItem {
  if (!isObject(raw)) throw new HeraldError('invalid_body', `${at || 'the body'} must be a JSON object`, at ? { field: at.slice(0, -1) } : {});
  for (const k of Object.keys(raw)) if (!PUBLISH_FIELDS.has(k)) throw invalid(at + k, 'is not a known field');
  const app = raw['app'];
  if (app !== undefined) {
    if (typeof app !== 'string' || app.length === 0) throw invalid(`${at}app`, 'must be an app id');
    return parseAppItem(raw, app, at, maxChannels, namespaces);
  }
  const targets = ['channel', 'channels', 'client'].filter((k) => raw[k] !== undefined);
  if (targets.length === 0) throw missing(`${at}channel`);
  if (targets.length > 1) throw invalid(at + (targets[1] as string), 'cannot be combined with ' + (targets[0] as string));

  let target: PublishItem['target'];
  if (raw['channel'] !== undefined) {
    target = { kind: 'channels', channels: [channelField(raw['channel'], `${at}channel`)] };
  } else if (raw['channels'] !== undefined) {
    const list = raw['channels'];
    if (!Array.isArray(list) || list.length === 0) throw invalid(`${at}channels`, 'must be a non-empty array');
    if (list.length > maxChannels) throw invalid(`${at}channels`, `must have at most ${maxChannels} channels`);
    const channels = list.map((c, i) => channelField(c, `${at}channels[${i}]`));
    target = { kind: 'channels', channels: [...new Set(channels)] };
  } else {
    const client = raw['client'];
    if (typeof client !== 'string' || client.length === 0 || client.length > 100) throw invalid(`${at}client`, 'must be a client id');
    target = { kind: 'client', client };
  }

  const type = raw['type'];
  if (type === undefined) throw missing(`${at}type`);
  if (typeof type !== 'string') throw invalid(`${at}type`, 'must be a string');
  if (isReservedType(type)) throw new HeraldError('reserved_type', `type ${type} is reserved by the protocol`, { field: `${at}type` });
  if (!MESSAGE_TYPE_RE.test(type)) throw invalid(`${at}type`, 'must be 1-100 characters of [A-Za-z0-9_-:.]');

  if (!('payload' in raw)) throw missing(`${at}payload`);
  const payload = raw['payload'];
  if (typeof payload !== 'object' || payload === null) throw invalid(`${at}payload`, 'must be a JSON object or array');
  if (nestingDepth(payload, MAX_PAYLOAD_DEPTH) > MAX_PAYLOAD_DEPTH) {
    throw new HeraldError('payload_too_deep', `${at}payload nests deeper than ${MAX_PAYLOAD_DEPTH} levels`, {
      field: `${at}payload`,
      extra: { limit: MAX_PAYLOAD_DEPTH },
    });
  }

  const id = raw['id'];
  if (id !== undefined && (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID_LENGTH)) {
    throw invalid(`${at}id`, `must be a string of 1-${MAX_ID_LENGTH} characters`);
  }
  return { target, type, payloadJson: JSON.stringify(payload), id };
}

/** A publish into another protocol's namespace (`app`): its channel names, any of its event names, a payload. */
function parseAppItem(raw: Obj, app: string, at: string, maxChannels: number, namespaces: ChannelNamespaces): PublishItem {
  if (raw['client'] !== undefined) throw invalid(`${at}client`, 'cannot be combined with app');
  let names: unknown[];
  if (raw['channel'] !== undefined && raw['channels'] !== undefined) throw invalid(`${at}channels`, 'cannot be combined with channel');
  if (raw['channel'] !== undefined) names = [raw['channel']];
  else if (Array.isArray(raw['channels']) && raw['channels'].length > 0) names = raw['channels'];
  else if (raw['channels'] !== undefined) throw invalid(`${at}channels`, 'must be a non-empty array');
  else throw missing(`${at}channel`);
  if (names.length > maxChannels) throw invalid(`${at}channels`, `must have at most ${maxChannels} channels`);
  const channels = names.map((c, i) => {
    const field = raw['channel'] !== undefined ? `${at}channel` : `${at}channels[${i}]`;
    if (typeof c !== 'string') throw invalid(field, 'must be a string');
    return namespaces.channel(app, c, field);
  });
  const type = raw['type'];
  if (type === undefined) throw missing(`${at}type`);
  if (typeof type !== 'string') throw invalid(`${at}type`, 'must be a string');
  const coreType = namespaces.type(app, type, `${at}type`);
  if (!('payload' in raw)) throw missing(`${at}payload`);
  const payload = raw['payload'];
  if (typeof payload !== 'object' || payload === null) throw invalid(`${at}payload`, 'must be a JSON object or array');
  const id = raw['id'];
  if (id !== undefined && (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID_LENGTH)) {
    throw invalid(`${at}id`, `must be a string of 1-${MAX_ID_LENGTH} characters`);
  }
  return { target: { kind: 'channels', channels: [...new Set(channels)] }, type: coreType, payloadJson: JSON.stringify(payload), id };
}

/** Validates a publish body: one object, or an array of at most `maxItems` objects. All or nothing. */
export function parsePublishBody(body: unknown, maxItems: number, namespaces: ChannelNamespaces = NO_NAMESPACES): { items: PublishItem[]; many: boolean } {
  if (Array.isArray(body)) {
    if (body.length === 0) throw new HeraldError('invalid_body', 'the publish array is empty');
    if (body.length > maxItems) throw new HeraldError('invalid_body', `at most ${maxItems} publishes in one request`);
    return { items: body.map((b, i) => parsePublishItem(b, `[${i}].`, maxItems, namespaces)), many: true };
  }
  return { items: [parsePublishItem(body, '', maxItems, namespaces)], many: false };
}
