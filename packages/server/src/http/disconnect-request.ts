import { CloseCode } from '@herald/protocol';
import { invalid, isValidUserId, missing } from '../delivery/publish-request.js';
import { HeraldError } from '../util/errors.js';

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A disconnect request. */
export interface DisconnectRequest {
  user?: string;
  client?: string;
  code: number;
  reason: string;
}

/** Validates `{"user"|"client","code"?,"reason"?}`. Codes: 1000 or 4000-4999; default 4509. */
export function parseDisconnect(body: unknown): DisconnectRequest {
  if (!isObject(body)) throw new HeraldError('invalid_body', 'the body must be a JSON object');
  for (const k of Object.keys(body)) if (!['user', 'client', 'code', 'reason'].includes(k)) throw invalid(k, 'is not a known field');
  const { user, client, code, reason } = body;
  if (user === undefined && client === undefined) throw missing('user');
  if (user !== undefined && client !== undefined) throw invalid('client', 'cannot be combined with user');
  const out: DisconnectRequest = { code: CloseCode.DisconnectedByServer, reason: 'disconnected by the server' };
  if (user !== undefined) {
    if (typeof user !== 'string' || !isValidUserId(user)) throw invalid('user', 'must be a user id');
    out.user = user;
  }
  if (client !== undefined) {
    if (typeof client !== 'string' || client.length === 0 || client.length > 100) throw invalid('client', 'must be a client id');
    out.client = client;
  }
  if (code !== undefined) {
    if (typeof code !== 'number' || !Number.isInteger(code) || !(code === 1000 || (code >= 4000 && code <= 4999))) {
      throw invalid('code', 'must be 1000 or 4000-4999');
    }
    out.code = code;
  }
  if (reason !== undefined) {
    if (typeof reason !== 'string' || Buffer.byteLength(reason) > 123) throw invalid('reason', 'must be a string of at most 123 bytes');
    out.reason = reason;
  }
  return out;
}
