/**
 * Soketi 1.6 (`@soketi/soketi` from the npm registry) as its CLI (`soketi start`) runs it, in this process so
 * the harness measures it like every other kind: the array app manager with the bench's Pusher app, the local
 * adapter, memory cache, sync queue, local rate limiter (all of Soketi's defaults), no metrics, no per-app
 * limits. Installed in bench/soketi (see SOKETI_DIR), where its uWebSockets.js is overridden by
 * @trufflesuite/uws-js-unofficial 20.30 (the GitHub dependency Soketi names is not on the registry; that
 * build has Node 20 native binaries, and Soketi 1.6 needs a uWS of its time: newer ones changed the API).
 */
import { createRequire } from 'node:module';
import { PUSHER_APP, SOKETI_DIR } from '../pusher-kinds.js';
import type { Running } from './types.js';

interface SoketiServer {
  start(callback: (server: SoketiServer) => void): Promise<void>;
  stop(): Promise<void>;
}
interface SoketiModule {
  Server: new (options: Record<string, unknown>) => SoketiServer;
  Log: { log: (message: unknown, ...styles: string[]) => void; br: () => void };
}

export async function startSoketi(port: number): Promise<Running> {
  // Its aws-sdk v2 (SQS queues, DynamoDB apps; unused here) warns about its end of support when loaded.
  process.env['AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE'] = '1';
  // Soketi is CommonJS; required lazily so other kinds never load it (nor its uWS build).
  const soketi = createRequire(`${SOKETI_DIR}package.json`)('@soketi/soketi') as SoketiModule;
  // Soketi prints a banner on start and stop: keep only its errors.
  const log = soketi.Log.log.bind(soketi.Log);
  soketi.Log.br = () => undefined;
  soketi.Log.log = (message, ...styles) => {
    if (styles.includes('red') || styles.includes('bgRed')) log(message, ...styles);
  };
  // The keys its CLI sets from SOKETI_* environment variables (SOKETI_DEFAULT_APP_ID, SOKETI_PORT, ...).
  const server = new soketi.Server({
    'appManager.array.apps.0.id': PUSHER_APP.id,
    'appManager.array.apps.0.key': PUSHER_APP.key,
    'appManager.array.apps.0.secret': PUSHER_APP.secret,
    'appManager.array.apps.0.maxConnections': -1,
    'appManager.array.apps.0.enableClientMessages': false,
    'appManager.array.apps.0.maxBackendEventsPerSecond': -1,
    'appManager.array.apps.0.maxClientEventsPerSecond': -1,
    'appManager.array.apps.0.maxReadRequestsPerSecond': -1,
    host: '127.0.0.1',
    port,
    'metrics.enabled': false,
    // Soketi always listens for /usage on its metrics port: any free one. Its node discovery (UDP) gets the
    // bench port so it never meets another Soketi on this machine.
    'metrics.port': 0,
    'metrics.host': '127.0.0.1',
    'cluster.port': port,
    shutdownGracePeriod: 0,
  });
  await new Promise<void>((resolve) => void server.start(() => resolve()));
  return { stop: () => server.stop() };
}
