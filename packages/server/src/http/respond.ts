import type { HttpResponse } from '../transport/http.js';
import { errorBody, type HeraldError } from '../util/errors.js';

/** Writes a JSON response (the body is already serialized). */
export function sendJson(res: HttpResponse, status: number, body: string, headers?: Record<string, string>): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const head: Record<string, string | number> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  };
  if (headers !== undefined) for (const k of Object.keys(headers)) head[k] = headers[k] as string;
  res.writeHead(status, head);
  res.end(body);
}

/** Writes `{"error":{"code","message","field"?}}` with the error's status. */
export function sendError(res: HttpResponse, err: HeraldError, headers: Record<string, string> = {}): void {
  sendJson(res, err.status, errorBody(err), headers);
}
