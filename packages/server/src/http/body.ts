import { bodyTooLarge, type HttpRequest } from '../transport/http.js';
import { HeraldError } from '../util/errors.js';

export { ClientAbortedError } from '../transport/http.js';

/**
 * Reads a JSON request body. The content type must be `application/json` (415 otherwise); bodies over
 * `maxBytes` are refused with 413 before they are read whole. The bytes are decoded as UTF-8 with invalid
 * sequences replaced by U+FFFD (never rejected), so emoji and CJK text pass through unchanged.
 */
export function readJsonBody(req: HttpRequest, maxBytes: number): Promise<unknown> {
  // Not an async function: this is on the path of every publish, and each async frame is an allocation.
  const contentType = req.headers['content-type'];
  if (contentType !== 'application/json' && !isJsonType(contentType)) {
    return Promise.reject(new HeraldError('unsupported_media_type', 'the request body must be application/json', { field: 'content-type' }));
  }
  if (contentType !== 'application/json' && !isUtf8(contentType)) {
    return Promise.reject(
      new HeraldError('unsupported_media_type', 'the request body must be UTF-8 (JSON is): its charset would be read as UTF-8', { field: 'content-type' }),
    );
  }
  const length = req.headers['content-length'];
  if (length !== undefined && Number(length) > maxBytes) return Promise.reject(bodyTooLarge(maxBytes));
  return req.body(maxBytes).then(parseJson);
}

/** The body's JSON value; a BOM is skipped. */
function parseJson(bytes: Buffer): unknown {
  const text = bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? bytes.toString('utf8', 3) : bytes.toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new HeraldError('invalid_body', 'the request body is not valid JSON');
  }
}

/**
 * Whether a JSON content type says nothing of its charset or says UTF-8: another charset (`iso-8859-1`, from a
 * backend that never converted its text) would be decoded as UTF-8, its accents replaced by U+FFFD, unseen.
 */
function isUtf8(value: string | undefined): boolean {
  const charset = /;\s*charset\s*=\s*"?([^";\s]*)/i.exec(value ?? '')?.[1];
  return charset === undefined || /^utf-?8$/i.test(charset);
}

function isJsonType(value: string | undefined): boolean {
  return (value ?? '').split(';', 1)[0]?.trim().toLowerCase() === 'application/json';
}
