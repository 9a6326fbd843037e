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
  /** Keep it in the inbox of each (user) channel's user until acknowledged (docs/inbox.md). */
  inbox?: InboxRequest;
  /** A connection that must not receive it (a Pusher `socket_id`). */
  exclude?: ClientId;
}

/** The inbox part of a publish: `"inbox": true`, with `"ttl"` (seconds) and `"receipt"`. */
export interface InboxRequest {
  /** How long it is kept unless acknowledged, in ms; undefined: the gateway's default. */
  ttl: number | undefined;
  receipt: boolean;
}

const TARGET_FIELDS = ['channel', 'channels', 'client', 'user'] as const;
const INBOX_FIELDS = ['ttl', 'receipt'] as const;
/** Fields of a native publish that a publish into an app's namespace (`app`) refuses. */
const APP_REFUSED = ['client', 'user', 'inbox', 'ttl', 'receipt'] as const;
const PUBLISH_FIELDS = new Set(['app', 'channel', 'channels', 'client', 'user', 'type', 'payload', 'id', 'inbox', 'ttl', 'receipt']);
/** Longest inbox TTL a publish may ask for, in seconds (a year). */
export const MAX_INBOX_TTL_SECONDS = 31_536_000;

/**
 * The channel namespaces of other protocols (a Pusher app), as the native API and the Redis ingest publish into
 * them with an `app` field: `channel`/`channels` are then that namespace's names and `type` one of its event
 * names. Methods throw a HeraldError naming `field` (an unknown app is `not_found`).
 */
export interface ChannelNamespaces {
  /** Whether `app` is a namespace (a configured app). */
  has(app: string): boolean;
  /** The core channel of `channel` in namespace `app`. */
  channel(app: string, channel: string, field: string): ChannelName;
  /** The core message type of event `type` in namespace `app`. */
  type(app: string, type: string, field: string): string;
}

/** No namespace configured: every `app` is unknown. */
export const NO_NAMESPACES: ChannelNamespaces = {
  has: () => false,
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

/** The `not_found` of an `app` that is not a configured namespace, naming `field`. */
export function unknownApp(app: string, field: string): HeraldError {
  return new HeraldError('not_found', `no app ${app.slice(0, 64)}`, { field });
}

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
  if (typeof value !== 'object' || value === null) return 0;
  // The common payload: one flat object or array (nothing to stack).
  let flat = true;
  for (const child of Array.isArray(value) ? value : Object.values(value)) {
    if (typeof child === 'object' && child !== null) {
      flat = false;
      break;
    }
  }
  if (flat) return 1;
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
  if (!isObject(raw)) throw new HeraldError('invalid_body', `${at ? at.slice(0, -1) : 'the body'} must be a JSON object`, at ? { field: at.slice(0, -1) } : {});
  for (const k of Object.keys(raw)) if (!PUBLISH_FIELDS.has(k)) throw invalid(at + k, 'is not a known field');
  const app = raw['app'];
  if (app !== undefined) {
    if (typeof app !== 'string' || app.length === 0) throw invalid(`${at}app`, 'must be an app id');
    return parseAppItem(raw, app, at, maxChannels, namespaces);
  }
  // Which of the target fields are there (counted without building a list: this runs for every publish).
  let first: string | undefined;
  for (const k of TARGET_FIELDS) {
    if (raw[k] === undefined) continue;
    if (first !== undefined) throw invalid(at + k, 'cannot be combined with ' + first);
    first = k;
  }
  if (first === undefined) throw missing(`${at}channel`);

  let target: PublishItem['target'];
  if (raw['channel'] !== undefined) {
    target = { kind: 'channels', channels: [channelField(raw['channel'], `${at}channel`)] };
  } else if (raw['channels'] !== undefined) {
    const list = raw['channels'];
    if (!Array.isArray(list) || list.length === 0) throw invalid(`${at}channels`, 'must be a non-empty array');
    if (list.length > maxChannels) throw invalid(`${at}channels`, `must have at most ${maxChannels} channels`);
    const channels = list.map((c, i) => channelField(c, `${at}channels[${i}]`));
    target = { kind: 'channels', channels: [...new Set(channels)] };
  } else if (raw['user'] !== undefined) {
    const user = raw['user'];
    // A number is taken as the id it reads as: PHP and JSON backends often hold user ids as integers.
    const id = typeof user === 'number' && Number.isSafeInteger(user) ? String(user) : user;
    if (typeof id !== 'string' || !isValidUserId(id)) throw invalid(`${at}user`, 'must be a user id');
    target = { kind: 'channels', channels: [userChannel(id)] };
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

  const item: PublishItem = { target, type, payloadJson: payloadField(raw, at), id: idField(raw, at) };
  const inbox = parseInbox(raw, at, target);
  if (inbox) item.inbox = inbox;
  return item;
}

/** The inbox fields of a publish (`inbox`, `ttl`, `receipt`), checked against its target. */
function parseInbox(raw: Obj, at: string, target: PublishItem['target']): InboxRequest | undefined {
  const inbox = raw['inbox'];
  if (inbox !== undefined && typeof inbox !== 'boolean') throw invalid(`${at}inbox`, 'must be true or false');
  if (inbox !== true) {
    for (const k of INBOX_FIELDS) if (raw[k] !== undefined) throw invalid(at + k, 'needs "inbox": true');
    return undefined;
  }
  if (target.kind !== 'channels' || target.channels.some((c) => channelKind(c) !== 'user')) {
    throw invalid(`${at}inbox`, 'is for users: publish to "user" or to user: channels');
  }
  const ttl = raw['ttl'];
  if (ttl !== undefined && (typeof ttl !== 'number' || !Number.isSafeInteger(ttl) || ttl < 1 || ttl > MAX_INBOX_TTL_SECONDS)) {
    throw invalid(`${at}ttl`, `must be a number of seconds, 1-${MAX_INBOX_TTL_SECONDS}`);
  }
  const receipt = raw['receipt'];
  if (receipt !== undefined && typeof receipt !== 'boolean') throw invalid(`${at}receipt`, 'must be true or false');
  return { ttl: ttl === undefined ? undefined : ttl * 1000, receipt: receipt === true };
}

/** A publish into another protocol's namespace (`app`): its channel names, any of its event names, a payload. */
function parseAppItem(raw: Obj, app: string, at: string, maxChannels: number, namespaces: ChannelNamespaces): PublishItem {
  if (!namespaces.has(app)) throw unknownApp(app, `${at}app`);
  // One connection, a native user and the inbox are native notions: an app's channels are its own names.
  for (const k of APP_REFUSED) if (raw[k] !== undefined) throw invalid(at + k, 'cannot be combined with app');
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
  return { target: { kind: 'channels', channels: [...new Set(channels)] }, type: coreType, payloadJson: payloadField(raw, at), id: idField(raw, at) };
}

/** The payload of a publish, serialized: a JSON object or array nesting at most MAX_PAYLOAD_DEPTH levels. */
function payloadField(raw: Obj, at: string): string {
  if (!('payload' in raw)) throw missing(`${at}payload`);
  const payload = raw['payload'];
  if (typeof payload !== 'object' || payload === null) throw invalid(`${at}payload`, 'must be a JSON object or array');
  if (nestingDepth(payload, MAX_PAYLOAD_DEPTH) > MAX_PAYLOAD_DEPTH) {
    throw new HeraldError('payload_too_deep', `${at}payload nests deeper than ${MAX_PAYLOAD_DEPTH} levels`, {
      field: `${at}payload`,
      extra: { limit: MAX_PAYLOAD_DEPTH },
    });
  }
  return JSON.stringify(payload);
}

/** A lone UTF-16 surrogate (`\ud800` in JSON): no character, and no key name a Redis engine could store apart. */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * The idempotency id of a publish: 1-200 characters of well-formed text. A lone surrogate is refused: the Redis
 * engine stores ids as UTF-8, where every lone surrogate becomes U+FFFD, so `x\ud800` and `x\udc00` would be
 * one id there and two in memory.
 */
function idField(raw: Obj, at: string): string | undefined {
  const id = raw['id'];
  if (id === undefined) return undefined;
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID_LENGTH || LONE_SURROGATE.test(id)) {
    throw invalid(`${at}id`, `must be a string of 1-${MAX_ID_LENGTH} characters`);
  }
  return id;
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
