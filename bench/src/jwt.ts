import { createHmac } from 'node:crypto';
import { JWT_SECRET } from './kinds.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64url');
const HEADER = b64(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));

/** An HS256 token for user `sub`, valid for an hour (signed here: the load generator's cost stays out of the window). */
export function tokenFor(sub: string): string {
  const body = b64(JSON.stringify({ sub, exp: Math.floor(Date.now() / 1000) + 3600 }));
  const sig = createHmac('sha256', JWT_SECRET).update(`${HEADER}.${body}`).digest('base64url');
  return `${HEADER}.${body}.${sig}`;
}
