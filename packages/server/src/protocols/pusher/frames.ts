/**
 * Pusher frames: parsing what clients send (pusher-js, Laravel Echo, any Pusher client) and building what the
 * server sends. Control frames that carry a payload put it in `data` as a JSON string, except `pusher:error`
 * and `pusher:signin_success`, whose `data` is an object (as real Pusher sends them; see docs/pusher.md).
 */

/** A frame from a client: an event name, an optional channel, and data (an object, or a JSON string of one). */
export interface ClientFrame {
  event: string;
  channel: string | undefined;
  data: unknown;
}

/** Parses one text frame; undefined when it is not a JSON object with a string `event`. */
export function parseClientFrame(text: string): ClientFrame | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o['event'] !== 'string') return undefined;
  return { event: o['event'], channel: typeof o['channel'] === 'string' ? o['channel'] : undefined, data: o['data'] };
}

/** The data of a control event as an object: clients send an object, some a JSON string of one. */
export function dataObject(data: unknown): Record<string, unknown> {
  let v = data;
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v);
    } catch {
      return {};
    }
  }
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/** `{"event","data"}` with `data` a JSON string (or `channel` too). */
export function stringFrame(event: string, data: unknown, channel?: string): object {
  const f: Record<string, unknown> = { event, data: JSON.stringify(data) };
  if (channel !== undefined) f['channel'] = channel;
  return f;
}

/** `pusher:error` with `{code, message}` as an object (`code` null when there is no Pusher code for it). */
export function errorFrame(code: number | null, message: string): object {
  return { event: 'pusher:error', data: { code, message } };
}

/** `pusher:subscription_error` on `channel`: `{type, error, status}` as pusher-js reports an auth endpoint failure. */
export function subscriptionError(channel: string, type: string, error: string, status: number): object {
  return { event: 'pusher:subscription_error', channel, data: { type, error, status } };
}

/** The first frame of a connection. */
export function established(socketId: string, activityTimeout: number): object {
  return stringFrame('pusher:connection_established', { socket_id: socketId, activity_timeout: activityTimeout });
}

/** Prebuilt frames. */
export const PONG = Buffer.from('{"event":"pusher:pong","data":"{}"}');
export const PING = Buffer.from('{"event":"pusher:ping","data":"{}"}');
