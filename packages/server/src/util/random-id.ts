import { randomFillSync } from 'node:crypto';

const POOL_BYTES = 6144;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let offset = POOL_BYTES;

/**
 * `bytes` bytes from the CSPRNG as base64url, drawn from a pool refilled 6 KiB at a time: one CSPRNG call
 * per few hundred ids instead of one each (ids are made per connection and, with Redis, per publish).
 */
export function randomId(bytes: number): string {
  if (bytes > POOL_BYTES) throw new RangeError(`randomId: at most ${POOL_BYTES} bytes`);
  if (offset + bytes > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const id = pool.toString('base64url', offset, offset + bytes);
  offset += bytes;
  return id;
}

/** A new connection id: 12 random bytes (96 bits, unguessable), 16 characters of base64url. */
export function newClientId(): string {
  return randomId(12);
}

/** A new random epoch: identifies one continuous history of a channel (6 bytes, 8 characters). */
export function newEpoch(): string {
  return randomId(6);
}

/**
 * A connection id in Pusher's `<digits>.<digits>` form (what the Pusher SDKs require of a `socket_id`): two
 * unsigned 32-bit integers from the CSPRNG, 64 random bits, so ids of different nodes do not collide.
 */
export function newSocketId(): string {
  if (offset + 8 > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const id = `${pool.readUInt32BE(offset)}.${pool.readUInt32BE(offset + 4)}`;
  offset += 8;
  return id;
}
