import { HeraldError } from '../util/errors.js';
import { parsePublishBody, type ChannelNamespaces, type PublishItem } from '../delivery/publish-request.js';

/** An ingested message: its items, or why it cannot be published. */
export type IngestParse = { ok: true; items: PublishItem[] } | { ok: false; error: { code: string; message: string; field?: string | undefined } };

/**
 * Parses the JSON of one ingested message exactly as `POST /api/publish` parses its body (one object or an
 * array), with the same size limit (`maxBytes`, UTF-8). `defaultId` becomes the idempotency key of items that
 * have none (`<defaultId>:<index>`).
 */
export function parseIngestMessage(msg: string, maxItems: number, defaultId?: string, namespaces?: ChannelNamespaces, maxBytes = Infinity): IngestParse {
  // UTF-8 takes 1 to 3 bytes per UTF-16 unit: the bytes are counted only when the length alone cannot tell.
  if (msg.length > maxBytes || (msg.length * 3 > maxBytes && Buffer.byteLength(msg) > maxBytes)) {
    return { ok: false, error: { code: 'body_too_large', message: `the message exceeds ${maxBytes} bytes (maxBodySize)` } };
  }
  let body: unknown;
  try {
    body = JSON.parse(msg.charCodeAt(0) === 0xfeff ? msg.slice(1) : msg);
  } catch {
    return { ok: false, error: { code: 'invalid_body', message: 'the message is not valid JSON' } };
  }
  try {
    const { items } = parsePublishBody(body, maxItems, namespaces);
    if (defaultId !== undefined) items.forEach((item, i) => (item.id ??= `${defaultId}:${i}`));
    return { ok: true, items };
  } catch (err) {
    if (err instanceof HeraldError) return { ok: false, error: { code: err.code, message: err.message, field: err.field } };
    throw err;
  }
}
