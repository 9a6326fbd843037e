#!/usr/bin/env node
// Runs the PHP SDK's PHPUnit suite (sdk/php/tests) against real gateways, as `npm test` does after vitest.
// It builds nothing (the build already ran): it starts the gateway CLI from packages/server/dist on free
// ports with known secrets, runs phpunit with environment variables that say where everything is, writes
// test-artifacts/php-summary.json ({"passed":N,"failed":M,...}) from PHPUnit's JUnit report, stops
// everything it started (also on failure or Ctrl-C), and exits non-zero on any failure.
//
// Usage: node scripts/php-tests.mjs [phpunit arguments, e.g. --filter TokenTest]
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startRedisCluster } from './redis-cluster.mjs';
import { deleteRedisKeys } from './redis-keys.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ART = join(ROOT, 'test-artifacts');
const SUMMARY = join(ART, 'php-summary.json');
const JUNIT = join(ART, 'php-junit.xml');
const CLI = join(ROOT, 'packages/server/bin/herald.js');
const PHPUNIT = process.env.PHPUNIT ?? 'phpunit';
const START_TIMEOUT_MS = 30_000;

const API_KEY = `php_test_key_${randomBytes(12).toString('hex')}`;
const JWT_SECRET = randomBytes(32).toString('hex');
const REDIS_URL = process.env.HERALD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const REDIS_PREFIX = `herald-php-test-${randomBytes(6).toString('hex')}`;

/** Every child process started here, stopped in `stopAll()`. */
const children = new Set();

function log(msg) {
  process.stdout.write(`[php-tests] ${msg}\n`);
}

/** The environment for a gateway: ours, minus every HERALD_* variable (the CLI refuses unknown ones). */
function gatewayEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HERALD_')) env[k] = v;
  return { ...env, HERALD_API_KEY: API_KEY, HERALD_JWT_SECRET: JWT_SECRET, HERALD_LOG_LEVEL: 'info', ...extra };
}

/** Starts the gateway CLI (memory engine) on a free port (--port 0). */
function startGateway(name, args = [], env = {}) {
  return waitListening(name, [CLI, '--port', '0', '--host', '127.0.0.1', '--allow-anonymous', ...args], gatewayEnv(env));
}

/**
 * The Redis-engine gateway, kept apart: the CLI runs the memory engine only, so a support script builds
 * one with createGateway() + createRedisEngine() from packages/server/dist. Its keys use a prefix of its
 * own, deleted at the end.
 */
function startRedisGateway(redisUrl, prefix, cluster = undefined, name = 'redis') {
  const env = {
    ...gatewayEnv({}),
    HERALD_TEST_REDIS_URL: redisUrl,
    ...(cluster === undefined ? {} : { HERALD_TEST_REDIS_CLUSTER: cluster }),
    HERALD_TEST_REDIS_PREFIX: prefix,
    HERALD_TEST_API_KEY: API_KEY,
    HERALD_TEST_JWT_SECRET: JWT_SECRET,
  };
  return waitListening(name, [join(ROOT, 'sdk/php/tests/Support/redis-gateway.mjs')], env);
}

/**
 * Runs `node <args>` and resolves with the gateway's URLs once it logs "gateway listening" (the JSON log
 * line carries the URL, as the CLI prints it). Its output goes to test-artifacts/php-gateway-<name>.log.
 */
function waitListening(name, args, env) {
  return new Promise((resolvePromise, reject) => {
    const logFile = join(ART, `php-gateway-${name}.log`);
    const out = createWriteStream(logFile);
    const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    child.stderr.pipe(out, { end: false });
    let settled = false;
    const fail = (why) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error(`gateway ${name} did not start: ${why} (see ${logFile})`));
    };
    const timer = setTimeout(() => fail(`no "gateway listening" line within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
    child.once('exit', (code, signal) => {
      children.delete(child);
      fail(`exited with ${code ?? signal}`);
    });
    createInterface({ input: child.stdout }).on('line', (line) => {
      out.write(`${line}\n`);
      if (settled) return;
      let entry;
      try {
        entry = JSON.parse(line);
      } catch {
        return;
      }
      if (entry.msg === 'gateway listening' && typeof entry.url === 'string') {
        settled = true;
        clearTimeout(timer);
        const wsPath = Array.isArray(entry.wsPaths) && entry.wsPaths[0] ? entry.wsPaths[0] : '/ws';
        resolvePromise({ name, url: entry.url, ws: `${entry.url.replace(/^http/, 'ws')}${wsPath}`, child });
      }
    });
  });
}

/** Stops one child: SIGTERM (graceful), then SIGKILL if it is still there after 10 s. */
function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(kill);
      done();
    });
    child.kill('SIGTERM');
  });
}

async function stopAll() {
  await Promise.all([...children].map(stop));
  children.clear();
}

/** Runs phpunit; resolves with its exit code. */
function runPhpunit(env, extraArgs) {
  return new Promise((done) => {
    const args = ['--configuration', join(ROOT, 'sdk/php/phpunit.xml.dist'), '--log-junit', JUNIT, ...extraArgs];
    log(`${PHPUNIT} ${args.join(' ')}`);
    const child = spawn(PHPUNIT, args, { cwd: join(ROOT, 'sdk/php'), env: { ...process.env, ...env }, stdio: 'inherit' });
    children.add(child);
    child.once('error', (err) => {
      log(`cannot run ${PHPUNIT}: ${err.message}`);
      done(127);
    });
    child.once('exit', (code, signal) => {
      children.delete(child);
      done(code ?? (signal ? 128 : 1));
    });
  });
}

/** Counts from PHPUnit's JUnit XML: the attributes of the first (outermost) <testsuite>. */
function readJunit() {
  if (!existsSync(JUNIT)) return undefined;
  const xml = readFileSync(JUNIT, 'utf8');
  const tag = /<testsuite\b([^>]*)>/.exec(xml);
  if (!tag) return { tests: 0, failures: 0, errors: 0, warnings: 0, skipped: 0 };
  const attr = (name) => Number(new RegExp(`\\b${name}="(\\d+)"`).exec(tag[1])?.[1] ?? 0);
  return { tests: attr('tests'), failures: attr('failures'), errors: attr('errors'), warnings: attr('warnings'), skipped: attr('skipped') };
}

async function main() {
  mkdirSync(ART, { recursive: true });
  rmSync(SUMMARY, { force: true });
  rmSync(JUNIT, { force: true });
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);

  const memory = await startGateway('memory');
  log(`memory gateway at ${memory.url}`);
  const redis = await startRedisGateway(REDIS_URL, REDIS_PREFIX);
  log(`redis gateway at ${redis.url} (${REDIS_URL}, prefix ${REDIS_PREFIX})`);
  // A Redis Cluster of three masters of its own, with a gateway on it, for RedisClusterPublisherTest.
  redisCluster = await startRedisCluster();
  const onCluster = await startRedisGateway(REDIS_URL, REDIS_PREFIX, redisCluster.spec, 'redis-cluster');
  log(`redis cluster gateway at ${onCluster.url} (cluster ${redisCluster.spec})`);

  const env = {
    HERALD_TEST_URL: memory.url,
    HERALD_TEST_WS_URL: memory.ws,
    HERALD_TEST_API_KEY: API_KEY,
    HERALD_TEST_JWT_SECRET: JWT_SECRET,
    HERALD_TEST_NODE: process.execPath,
    HERALD_TEST_REDIS_URL: REDIS_URL,
    HERALD_TEST_REDIS_PREFIX: REDIS_PREFIX,
    HERALD_TEST_REDIS_GATEWAY_URL: redis.url,
    HERALD_TEST_REDIS_GATEWAY_WS_URL: redis.ws,
    HERALD_TEST_REDIS_CLUSTER: redisCluster.spec,
    HERALD_TEST_REDIS_CLUSTER_GATEWAY_URL: onCluster.url,
    HERALD_TEST_REDIS_CLUSTER_GATEWAY_WS_URL: onCluster.ws,
  };

  const code = await runPhpunit(env, process.argv.slice(2));
  const counts = readJunit();
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  if (counts === undefined) {
    log(`phpunit wrote no report (${JUNIT}); exit code ${code}`);
    failed = 1;
  } else {
    failed = counts.failures + counts.errors + counts.warnings;
    skipped = counts.skipped;
    passed = Math.max(0, counts.tests - failed - skipped);
    // A run that failed without a failing test (a fatal error, a skip, no test at all) still fails.
    if ((code !== 0 || counts.tests === 0) && failed === 0) failed = 1;
  }
  writeFileSync(SUMMARY, `${JSON.stringify({ passed, failed, skipped })}\n`);
  log(`PHP tests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''} (phpunit exit code ${code})`);
  return failed > 0 || code !== 0 ? 1 : 0;
}

let exiting = false;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    if (exiting) return;
    exiting = true;
    log(`${signal}: stopping everything`);
    stopAll().finally(() => process.exit(130));
  });
}

/** The Redis Cluster started for the run (stopped, and its directory deleted, at the end). */
let redisCluster;

let status = 1;
try {
  status = await main();
} catch (err) {
  log(err instanceof Error ? err.message : String(err));
  if (!existsSync(SUMMARY)) writeFileSync(SUMMARY, `${JSON.stringify({ passed: 0, failed: 1 })}\n`);
  status = 1;
} finally {
  await stopAll();
  await redisCluster?.stop().catch((err) => log(`could not stop the Redis Cluster: ${err.message}`));
  await deleteRedisKeys(REDIS_URL, REDIS_PREFIX).catch((err) => log(`could not delete the test keys ${REDIS_PREFIX}:*: ${err.message}`));
}
process.exit(status);
