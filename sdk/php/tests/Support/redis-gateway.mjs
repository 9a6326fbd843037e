// Starts a Redis-engine gateway for the PHP tests (the gateway CLI runs the memory engine only) and prints
// the CLI's "gateway listening" JSON line, so the runner treats both gateways alike. SIGTERM closes it.
// Environment: HERALD_TEST_REDIS_URL (or HERALD_TEST_REDIS_CLUSTER: host:port,host:port of a Redis Cluster),
// HERALD_TEST_REDIS_PREFIX, HERALD_TEST_API_KEY, HERALD_TEST_JWT_SECRET.
import { fileURLToPath } from 'node:url';

const dist = new URL('../../../../packages/server/dist/', import.meta.url);
const server = await import(new URL('index.js', dist).href);
const createRedisEngine = server.createRedisEngine ?? (await import(new URL('engine/redis.js', dist).href)).createRedisEngine;
if (typeof createRedisEngine !== 'function') {
  process.stderr.write(`no createRedisEngine in ${fileURLToPath(dist)}\n`);
  process.exit(1);
}

const env = (name) => {
  const v = process.env[name];
  if (!v) {
    process.stderr.write(`${name} is required\n`);
    process.exit(2);
  }
  return v;
};

const logger = server.createLogger('info');
const gateway = await server.createGateway({
  port: 0,
  host: '127.0.0.1',
  apiKeys: [env('HERALD_TEST_API_KEY')],
  jwtSecrets: [env('HERALD_TEST_JWT_SECRET')],
  allowAnonymous: true,
  shutdownTimeout: 2000,
  logger,
  engine: createRedisEngine({
    ...(process.env.HERALD_TEST_REDIS_CLUSTER ? { cluster: process.env.HERALD_TEST_REDIS_CLUSTER } : { url: env('HERALD_TEST_REDIS_URL') }),
    prefix: env('HERALD_TEST_REDIS_PREFIX'),
    logger,
  }),
});
const { address, port } = gateway.address();
logger.info({ url: `http://${address}:${port}`, wsPaths: gateway.options.wsPaths, engine: gateway.engine.name }, 'gateway listening');

const stop = () =>
  gateway.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
