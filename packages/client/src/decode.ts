import { isSeq, isValidChannel, validateServerFrame, type ServerFrame } from '@herald/protocol';
import { ClientErrorCode, HeraldError } from './errors.js';

/** One decoded frame, or why it could not be used. */
export type Decoded = { frame: ServerFrame } | { error: HeraldError };

type Obj = Record<string, unknown>;

const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A presence list, where present: members (`{user,…}`) or user ids, in an array (what the client iterates). */
const isUsers = (l: unknown): boolean =>
  l === undefined || (Array.isArray(l) && l.every((u) => typeof u === 'string' || typeof (u as { user?: unknown } | null)?.user === 'string'));

/** Whether `r` is a subscription result (a `subscribed` frame or an entry of `connected.subs`). */
const isResult = (r: unknown): boolean =>
  isObject(r) && isSeq(r['seq']) && typeof r['epoch'] === 'string' && typeof r['recovered'] === 'boolean' && isUsers(r['members']);

/**
 * The protocol's `validateServerFrame` checks the message envelope fully but control frames only by
 * type; the client relies on their fields, so it checks those it reads.
 */
function isControl(f: Obj): boolean {
  switch (f['type']) {
    case 'connected': {
      const subs = f['subs'];
      return typeof f['client'] === 'string' && (f['user'] === null || typeof f['user'] === 'string') && isObject(subs) && Object.values(subs).every(isResult);
    }
    case 'subscribed':
      return isValidChannel(f['channel']) && isResult(f);
    case 'error':
      return typeof f['code'] === 'string' && typeof f['message'] === 'string';
    default:
      return true;
  }
}

/**
 * Turns the data of one WebSocket message into frames. Never throws: binary data, invalid JSON and
 * malformed frames come back as errors carrying the raw data. With `batch:true` the server may put
 * several JSON objects in one frame, separated by `\n` (JSON text never contains a raw newline).
 */
export function decode(data: unknown): Decoded[] {
  if (typeof data !== 'string') {
    return [{ error: new HeraldError(ClientErrorCode.BinaryFrame, 'binary frame received; expected JSON text', { data }) }];
  }
  const out: Decoded[] = [];
  for (const line of data.split('\n')) {
    if (line.trim() === '') continue;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch (cause) {
      out.push({ error: new HeraldError(ClientErrorCode.InvalidJson, 'frame is not valid JSON', { data: line, cause }) });
      continue;
    }
    const frame = validateServerFrame(raw);
    if (typeof frame === 'string') {
      out.push({ error: new HeraldError(ClientErrorCode.InvalidFrame, `invalid frame: ${frame}`, { data: line }) });
    } else if (
      frame.kind === 'control'
        ? !isControl(raw as Obj)
        : // A presence change (join and leave are reserved: no application message has these types).
          (frame.frame.type === 'join' || frame.frame.type === 'leave') && !(isObject(frame.frame.payload) && isUsers(frame.frame.payload['users']))
    ) {
      out.push({ error: new HeraldError(ClientErrorCode.InvalidFrame, `invalid ${frame.frame.type} frame`, { data: line }) });
    } else {
      out.push({ frame });
    }
  }
  return out;
}
