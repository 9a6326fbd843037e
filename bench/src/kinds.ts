/** The servers the bench runs side by side, and what each one's clients speak. */
export const KINDS = ['herald', 'herald-redis', 'herald-uws', 'ws', 'socket.io', 'uws', 'socket.io-redis'] as const;
export type Kind = (typeof KINDS)[number];

export const LABELS: Record<Kind, string> = {
  herald: 'Herald (ws transport, memory engine)',
  'herald-redis': 'Herald (ws transport, Redis engine)',
  'herald-uws': 'Herald (uWS transport, memory engine)',
  ws: 'minimal ws broadcast',
  'socket.io': 'Socket.IO 4.8 (rooms)',
  uws: 'minimal uWebSockets.js topic publish',
  'socket.io-redis': 'Socket.IO 4.8 (rooms, Redis adapter)',
};

/** Client protocol family of a kind. */
export type Flavor = 'herald' | 'plain' | 'socket.io';

export function flavorOf(kind: Kind): Flavor {
  if (kind.startsWith('herald')) return 'herald';
  return kind.startsWith('socket.io') ? 'socket.io' : 'plain';
}

export function wsPath(kind: Kind): string {
  const f = flavorOf(kind);
  if (f === 'herald') return '/ws';
  if (f === 'socket.io') return '/socket.io/?EIO=4&transport=websocket';
  return '/';
}

export const API_KEY = 'bench_api_key_0123456789abcdef';
export const JWT_SECRET = 'bench_jwt_secret_0123456789_0123456789_abcdef';
