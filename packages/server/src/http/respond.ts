import type { ServerResponse } from 'node:http';
import { errorBody, type HeraldError } from '../util/errors.js';

/** Writes a JSON response (the body is already serialized). */
export function sendJson(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(body);
}

/** Writes `{"error":{"code","message","field"?}}` with the error's status. */
export function sendError(res: ServerResponse, err: HeraldError, headers: Record<string, string> = {}): void {
  sendJson(res, err.status, errorBody(err), headers);
}
