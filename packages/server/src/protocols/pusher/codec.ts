import { decodeEventType } from '@herald/protocol';
import type { MessageCodec } from '../../delivery/protocol.js';
import type { EngineMessage } from '../../engine/types.js';
import { pusherName } from './names.js';
import { dataOfPayload } from './payload.js';

/** The parts of a core envelope `{"type","channel","payload","seq"[,"user"]}` a Pusher frame is made of. */
export interface Envelope {
  type: string;
  /** The payload's JSON text, exactly as published. */
  payload: string;
  user: string | undefined;
}

const TYPE_HEAD = '{"type":"';
const PAYLOAD = ',"payload":';
const SEQ = ',"seq":';

/**
 * Splits the canonical envelope without re-serializing the payload. Its layout is fixed (engine/message.ts and
 * lua/publish.lua write it): the type and channel are JSON-safe names, so the first `,"payload":` starts the
 * payload, and `,"seq":` can only occur once outside a string, after it.
 */
export function parseEnvelope(frame: Buffer): Envelope | undefined {
  const text = frame.toString('utf8');
  if (!text.startsWith(TYPE_HEAD)) return undefined;
  const typeEnd = text.indexOf('"', TYPE_HEAD.length);
  const p = text.indexOf(PAYLOAD, typeEnd);
  const s = text.lastIndexOf(SEQ);
  if (typeEnd < 0 || p < 0 || s < p) return undefined;
  let user: string | undefined;
  try {
    const tail = JSON.parse(`{${text.slice(s + 1)}`) as { user?: unknown };
    if (typeof tail.user === 'string') user = tail.user;
  } catch {
    return undefined;
  }
  return { type: text.slice(TYPE_HEAD.length, typeEnd), payload: text.slice(p + PAYLOAD.length, s), user };
}

/** The Pusher frame of a core message of a Pusher channel: `{"event","channel","data"[,"user_id"]}`. */
export function pusherFrame(msg: EngineMessage): Buffer {
  const env = parseEnvelope(msg.frame);
  if (!env) return Buffer.from(JSON.stringify({ event: 'pusher:error', data: { code: null, message: 'undecodable message' } }));
  const user = env.user === undefined ? '' : `,"user_id":${JSON.stringify(env.user)}`;
  const event = JSON.stringify(decodeEventType(env.type));
  return Buffer.from(`{"event":${event},"channel":${JSON.stringify(pusherName(msg.channel))},"data":${JSON.stringify(dataOfPayload(env.payload))}${user}}`);
}

/**
 * The Pusher codec: one per protocol instance, shared by every connection, memoizing the frame of the last
 * message (the hub hands the same message to every subscriber in a row). Pusher has no epochs: a channel that
 * starts over is not announced.
 */
export class PusherCodec implements MessageCodec {
  private last: EngineMessage | undefined;
  private lastFrame: Buffer = Buffer.alloc(0);

  frame(msg: EngineMessage): Buffer {
    if (msg !== this.last) {
      this.lastFrame = pusherFrame(msg);
      this.last = msg;
    }
    return this.lastFrame;
  }

  epochReset(): null {
    return null;
  }
}
