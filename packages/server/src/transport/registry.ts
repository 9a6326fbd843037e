import type { TransportFactory } from './types.js';
import { createUwsTransport } from './uws/transport.js';
import { createWsTransport } from './ws/transport.js';

/** The transports the `transport` option chooses from (uWebSockets.js is loaded only when chosen). */
export const TRANSPORTS: Readonly<Record<'ws' | 'uws', TransportFactory>> = {
  ws: createWsTransport,
  uws: createUwsTransport,
};
