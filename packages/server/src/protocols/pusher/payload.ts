/**
 * How a Pusher `data` string is carried in the core envelope, losslessly. A string that is a JSON object or array
 * is the payload itself, byte for byte (so `{"payload":...}` holds the publisher's exact text: encrypted channels
 * and PHP's `\/` escapes come out unchanged). Any other string (plain text, a number, a quoted string, invalid
 * JSON) is wrapped as `{"$pusher_data":"<the string>"}`; so is an object that is itself exactly such a wrapper,
 * which keeps the mapping one-to-one. A native publish whose payload is such a wrapper sends that string as `data`.
 */
const WRAP_KEY = '$pusher_data';
const WRAP_HEAD = '{"$pusher_data":';

/** The single string of a wrapper object, or undefined when `v` is not exactly a wrapper. */
function wrapped(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const keys = Object.keys(v);
  const s = (v as Record<string, unknown>)[WRAP_KEY];
  return keys.length === 1 && keys[0] === WRAP_KEY && typeof s === 'string' ? s : undefined;
}

/** The payload JSON text that carries `data` (see the file comment). */
export function payloadOfData(data: string): string {
  const t = data.trimStart();
  const c = t.charCodeAt(0);
  if (c === 0x7b || c === 0x5b) {
    try {
      const v: unknown = JSON.parse(data);
      if (typeof v === 'object' && v !== null && wrapped(v) === undefined) return data;
    } catch {
      // Not JSON: wrapped below.
    }
  }
  return JSON.stringify({ [WRAP_KEY]: data });
}

/** The `data` string a payload JSON text carries (the inverse of `payloadOfData`). */
export function dataOfPayload(payload: string): string {
  if (!payload.startsWith(WRAP_HEAD)) return payload;
  try {
    return wrapped(JSON.parse(payload)) ?? payload;
  } catch {
    return payload;
  }
}
