import { isReservedType, isValidChannel, MESSAGE_TYPE_RE } from './channel.js';
import { ErrorCode } from './error-codes.js';
import type { ClientFrame, MessageFrame, Payload, ServerControlFrame, SubscribeRecovery } from './frames.js';

/** A failed parse: the error code and message to put in an `error` frame, and the request id when one could be read. */
export interface ParseFailure {
  ok: false;
  code: ErrorCode;
  message: string;
  id?: number;
  /** The channel the frame named (its first 200 characters), for an `invalid_channel` and a refused `publish`. */
  channel?: string;
}

export type ParseResult<T> = { ok: true; frame: T } | ParseFailure;

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(code: ErrorCode, message: string, id?: number): ParseFailure {
  return id === undefined ? { ok: false, code, message } : { ok: false, code, message, id };
}

/** The message of an `invalid_channel`: the rule a name breaks. */
export const INVALID_CHANNEL_MESSAGE = 'invalid channel name (1-200 characters of [A-Za-z0-9_-:.@=])';

/** An `invalid_channel` failure that echoes the channel, as the server's own `invalid_channel` frames do. */
function invalidChannel(channel: string, id: number | undefined): ParseFailure {
  return { ...fail(ErrorCode.InvalidChannel, INVALID_CHANNEL_MESSAGE, id), channel: channel.slice(0, 200) };
}

/** Whether `v` is a valid seq: a non-negative safe integer. */
export function isSeq(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Maximum length of a token in a connect frame. */
export const MAX_TOKEN_LENGTH = 8192;
/** Maximum length of an epoch string. */
export const MAX_EPOCH_LENGTH = 64;
/** Idempotency keys of client publishes: 1-64 characters of `[A-Za-z0-9_\-:.]`. */
export const PUBLISH_KEY_RE = /^[A-Za-z0-9_\-:.]{1,64}$/;
/** Most inbox ids in one `ack` frame. */
export const MAX_ACK_IDS = 100;
/** Longest inbox message id a client may send back. */
export const MAX_INBOX_ID_LENGTH = 64;

function readRecovery(v: unknown, where: string): SubscribeRecovery | string {
  if (!isObject(v)) return `${where} must be an object`;
  const r: SubscribeRecovery = {};
  if (v['since'] !== undefined) {
    if (!isSeq(v['since'])) return `${where}.since must be a non-negative integer`;
    r.since = v['since'];
  }
  if (v['epoch'] !== undefined) {
    if (typeof v['epoch'] !== 'string' || v['epoch'].length > MAX_EPOCH_LENGTH)
      return `${where}.epoch must be a string of at most ${MAX_EPOCH_LENGTH} characters`;
    r.epoch = v['epoch'];
  }
  return r;
}

/**
 * Parses and validates one client frame. Never throws: every problem comes back as a failure with the
 * documented error code (`invalid_json`, `invalid_frame`, `invalid_channel`, `unknown_type`).
 */
export function parseClientFrame(text: string): ParseResult<ClientFrame> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return fail(ErrorCode.InvalidJson, 'frame is not valid JSON');
  }
  if (!isObject(raw)) return fail(ErrorCode.InvalidFrame, 'frame must be a JSON object');
  const type = raw['type'];
  if (typeof type !== 'string') return fail(ErrorCode.InvalidFrame, 'frame.type must be a string');

  let id: number | undefined;
  if (raw['id'] !== undefined) {
    if (!isSeq(raw['id'])) return fail(ErrorCode.InvalidFrame, 'frame.id must be a non-negative integer');
    id = raw['id'];
  }

  switch (type) {
    case 'connect': {
      const token = raw['token'];
      if (token !== undefined && typeof token !== 'string') return fail(ErrorCode.InvalidFrame, 'connect.token must be a string');
      if (token !== undefined && token.length > MAX_TOKEN_LENGTH) {
        return fail(ErrorCode.InvalidFrame, `connect.token is longer than ${MAX_TOKEN_LENGTH} characters`);
      }
      const batch = raw['batch'];
      if (batch !== undefined && typeof batch !== 'boolean') return fail(ErrorCode.InvalidFrame, 'connect.batch must be a boolean');
      const frame: ClientFrame = { type: 'connect' };
      if (token !== undefined) frame.token = token;
      if (batch !== undefined) frame.batch = batch;
      const subs = raw['subs'];
      if (subs !== undefined) {
        if (!isObject(subs)) return fail(ErrorCode.InvalidFrame, 'connect.subs must be an object');
        // No prototype: "__proto__" is a valid channel name and must stay an ordinary key.
        const out = Object.create(null) as Record<string, SubscribeRecovery>;
        for (const [channel, rec] of Object.entries(subs)) {
          const r = readRecovery(rec, `connect.subs[${JSON.stringify(channel.slice(0, 50))}]`);
          if (typeof r === 'string') return fail(ErrorCode.InvalidFrame, r);
          out[channel] = r;
        }
        frame.subs = out;
      }
      return { ok: true, frame };
    }
    case 'subscribe':
    case 'unsubscribe': {
      const channel = raw['channel'];
      if (typeof channel !== 'string') return fail(ErrorCode.InvalidFrame, `${type}.channel must be a string`, id);
      if (!isValidChannel(channel)) return invalidChannel(channel, id);
      if (type === 'unsubscribe') {
        return { ok: true, frame: id === undefined ? { type, channel } : { type, channel, id } };
      }
      const r = readRecovery(raw, 'subscribe');
      if (typeof r === 'string') return fail(ErrorCode.InvalidFrame, r, id);
      const frame: ClientFrame = { type, channel, ...r };
      if (id !== undefined) frame.id = id;
      return { ok: true, frame };
    }
    case 'ping':
      return { ok: true, frame: id === undefined ? { type } : { type, id } };
    case 'ack': {
      const ids = raw['inbox'];
      if (!Array.isArray(ids) || ids.length === 0 || ids.length > MAX_ACK_IDS) {
        return fail(ErrorCode.InvalidFrame, `ack.inbox must be an array of 1-${MAX_ACK_IDS} message ids`, id);
      }
      if (!ids.every((x): x is string => typeof x === 'string' && x.length > 0 && x.length <= MAX_INBOX_ID_LENGTH)) {
        return fail(ErrorCode.InvalidFrame, 'ack.inbox holds an id that is not a message id', id);
      }
      return { ok: true, frame: { type, inbox: [...new Set(ids)] } };
    }
    case 'publish':
      return readPublish(raw, id);
    default:
      return fail(ErrorCode.UnknownType, 'unknown frame type', id);
  }
}

/** Reads a `publish` frame's fields (the payload's size and depth are the server's to check). */
function readPublish(raw: Obj, id: number | undefined): ParseResult<ClientFrame> {
  const { channel, event, payload, key, echo } = raw;
  if (typeof channel !== 'string') return fail(ErrorCode.InvalidFrame, 'publish.channel must be a string', id);
  if (!isValidChannel(channel)) return invalidChannel(channel, id);
  // From here the channel is valid: the error names it, as the server's own answers to a publish do.
  const refuse = (code: ErrorCode, message: string): ParseFailure => ({ ...fail(code, message, id), channel });
  if (typeof event !== 'string' || !MESSAGE_TYPE_RE.test(event)) {
    return refuse(ErrorCode.InvalidFrame, 'publish.event must be a message type of 1-100 characters of [A-Za-z0-9_-:.]');
  }
  if (isReservedType(event)) return refuse(ErrorCode.ReservedType, `publish.event ${event} is a reserved frame type`);
  if (typeof payload !== 'object' || payload === null) return refuse(ErrorCode.InvalidFrame, 'publish.payload must be a JSON object or array');
  if (key !== undefined && (typeof key !== 'string' || !PUBLISH_KEY_RE.test(key))) {
    return refuse(ErrorCode.InvalidFrame, 'publish.key must be 1-64 characters of [A-Za-z0-9_-:.]');
  }
  if (echo !== undefined && typeof echo !== 'boolean') return refuse(ErrorCode.InvalidFrame, 'publish.echo must be a boolean');
  const frame: ClientFrame = { type: 'publish', channel, event, payload: payload as Payload };
  if (id !== undefined) frame.id = id;
  if (key !== undefined) frame.key = key;
  if (echo !== undefined) frame.echo = echo;
  return { ok: true, frame };
}

/** A frame received by a client: a protocol control frame or an application message. */
export type ServerFrame = { kind: 'control'; frame: ServerControlFrame } | { kind: 'message'; frame: MessageFrame };

const CONTROL_TYPES = new Set(['connected', 'subscribed', 'unsubscribed', 'error', 'pong', 'acked', 'published']);

/**
 * Validates one parsed server frame (for SDKs). Application messages must carry the full envelope:
 * string `type`, valid `channel`, object or array `payload`, non-negative integer `seq`.
 * Returns a string describing the problem when the frame is malformed.
 */
export function validateServerFrame(raw: unknown): ServerFrame | string {
  if (!isObject(raw)) return 'frame is not an object';
  const type = raw['type'];
  if (typeof type !== 'string') return 'frame.type is not a string';
  if (CONTROL_TYPES.has(type)) {
    if (type === 'acked') return Array.isArray(raw['inbox']) ? { kind: 'control', frame: raw as unknown as ServerControlFrame } : 'acked.inbox is not an array';
    if (type !== 'pong' && type !== 'error' && typeof raw['channel'] !== 'string' && type !== 'connected') return `${type}.channel is not a string`;
    return { kind: 'control', frame: raw as unknown as ServerControlFrame };
  }
  // join and leave are a presence channel's member changes: unsequenced messages (seq 0) with a payload.
  if (isReservedType(type) && !((type === 'join' || type === 'leave') && raw['seq'] === 0)) return `unexpected frame type ${type}`;
  if (!isValidChannel(raw['channel'])) return 'message.channel is not a valid channel';
  const payload = raw['payload'];
  if (typeof payload !== 'object' || payload === null) return 'message.payload is not an object';
  if (!isSeq(raw['seq'])) return 'message.seq is not a non-negative integer';
  return { kind: 'message', frame: raw as unknown as MessageFrame };
}
