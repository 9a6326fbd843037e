/**
 * Swapped in for the gateway's `./transport/ws-transport.js` by the bench build (build.mjs), so the
 * `herald-uws` server runs the real gateway on the uWebSockets.js transport until `createGateway` takes
 * `transport: 'uws'` itself (see packages/server/test/uws-gateway.ts).
 */
import { attachWsTransport as real } from '../../../packages/server/src/transport/ws-transport.js';
import { withUws } from '../../../packages/server/test/uws-gateway.js';

export * from '../../../packages/server/src/transport/ws-transport.js';
export const attachWsTransport = withUws(real);
