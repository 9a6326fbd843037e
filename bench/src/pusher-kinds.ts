/**
 * The Pusher Channels protocol kinds (issue 12): Herald's Pusher side on both transports, and Soketi, the
 * Pusher-compatible server Laravel applications run today. Their clients speak Pusher protocol 7 and their
 * publishes go through each server's signed Pusher HTTP API (pusher.ts).
 */
import { fileURLToPath } from 'node:url';

export const PUSHER_KINDS = ['herald-pusher', 'herald-pusher-uws', 'soketi'] as const;
export type PusherKind = (typeof PUSHER_KINDS)[number];

export const PUSHER_LABELS: Record<PusherKind, string> = {
  'herald-pusher': 'Herald, Pusher protocol (ws transport)',
  'herald-pusher-uws': 'Herald, Pusher protocol (uWS transport)',
  soketi: 'Soketi 1.6 (Pusher protocol, uWS)',
};

export function isPusherKind(kind: string): kind is PusherKind {
  return (PUSHER_KINDS as readonly string[]).includes(kind);
}

/** The one Pusher app every Pusher kind serves. */
export const PUSHER_APP = { id: 'bench', key: 'bench-key', secret: 'bench_pusher_secret_0123456789abcdef' } as const;

export const PUSHER_WS_PATH = `/app/${PUSHER_APP.key}?protocol=7&client=js&version=8.4.0&flash=false`;

/**
 * Where Soketi is installed: bench/soketi, a project of its own (not a workspace), with its own lockfile and
 * the override its uWebSockets.js needs, installed on demand (ensureSoketi in main.ts) so that the
 * repository's `npm ci` and `npm test` do not carry its 270 packages.
 */
export const SOKETI_DIR = fileURLToPath(new URL('../soketi/', import.meta.url));
