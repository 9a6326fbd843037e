#!/usr/bin/env node
import { createHmac, randomBytes } from 'node:crypto';
import cluster from 'node:cluster';
import { availableParallelism, hostname } from 'node:os';
import { ConfigError, helpText, parseConfig, SETTINGS, withPusherApp, type LogFormat, type NodeSettings } from './config.js';
import { checkEngineSettings, redisTarget, startNode, type HeraldNode } from '../gateway/node.js';
import { DEFAULTS, OptionsError, type GatewayOptions } from '../gateway/options.js';
import { VERSION } from '../observability/operations.js';
import { ANY_ORIGIN, SAME_ORIGIN } from '../transport/admission.js';
import { isLoopbackHost } from '../util/ip.js';
import { GC_FLAG, tuneGarbageCollection } from '../util/gc-tuning.js';
import { createLogger, type Logger } from '../util/logger.js';
import { publishCommand, PUBLISH_HELP } from './commands/publish.js';
import { statsCommand, STATS_HELP } from './commands/stats.js';
import { tokenCommand, TOKEN_HELP } from './commands/token.js';
import { webhooksCommand, WEBHOOKS_HELP } from './commands/webhooks.js';
import { joinMachineView, serveMachineView } from './workers.js';

/** A line `prepareOptions` wants logged once the logger exists. */
export interface StartupNote {
  level: 'info' | 'warn';
  msg: string;
  fields: Record<string, unknown>;
}

/**
 * Decides development mode and refuses unsafe settings: production without secrets, development mode on
 * an interface other than loopback (unless `devAllowRemote`). In production an empty origin allowlist
 * becomes `same-origin`. Returns the options to start with and the lines to log about them.
 */
export function prepareOptions(
  options: GatewayOptions,
  explicit: ReadonlySet<string>,
  env: Readonly<Record<string, string | undefined>>,
  devAllowRemote = false,
): { options: GatewayOptions; devApiKey?: string; notes: StartupNote[] } {
  const production = env['NODE_ENV'] === 'production';
  const notes: StartupNote[] = [];
  const apiKeys = options.apiKeys ?? [];
  // Set, yet empty (`HERALD_API_KEY=' , '`): not a request for development mode.
  for (const [key, list, name] of [
    ['apiKeys', apiKeys, 'HERALD_API_KEY / --api-key'],
    ['jwtSecrets', options.jwtSecrets ?? [], 'HERALD_JWT_SECRET / --jwt-secret'],
  ] as const) {
    if (explicit.has(key) && list.length === 0) throw new ConfigError(`${name}: set, but holds no value`);
  }
  // Any way of verifying connection tokens: secrets, public keys, a JWKS URL.
  const tokenKeys = (options.jwtSecrets ?? []).length + (options.jwtPublicKeys ?? []).length + (options.jwksUrl === undefined ? 0 : 1);
  if (apiKeys.length === 0 && tokenKeys === 0) {
    if (production) {
      throw new ConfigError('NODE_ENV=production but neither HERALD_API_KEY nor HERALD_JWT_SECRET is set; refusing to start in development mode');
    }
    const host = options.host ?? DEFAULTS.host;
    if (!isLoopbackHost(host)) {
      // Development mode lets anyone connect and serves its generated API key on the demo page: not for a network.
      if (!devAllowRemote) {
        throw new ConfigError(
          `development mode (no HERALD_API_KEY / HERALD_JWT_SECRET) listens on loopback only, but HERALD_HOST / --host is ${host}: ` +
            'set HERALD_API_KEY and HERALD_JWT_SECRET, or pass --dev-allow-remote (HERALD_DEV_ALLOW_REMOTE=true) to expose it anyway',
        );
      }
      notes.push({
        level: 'warn',
        msg: 'DEVELOPMENT MODE ON A NETWORK INTERFACE (--dev-allow-remote): anyone who reaches this port may connect anonymously; the API key is shown to loopback clients only',
        fields: { host },
      });
    }
    // A worker of `--workers N` uses the key its primary generated.
    const devApiKey = env['HERALD_DEV_API_KEY'] ?? `dev_${randomBytes(18).toString('base64url')}`;
    return {
      options: {
        ...options,
        apiKeys: [devApiKey],
        // Tokens work in development too (the demo page's chat, `herald token`): a secret derived from the key, so
        // the workers of --workers, handed the key, derive the same one.
        jwtSecrets: [devJwtSecret(devApiKey)],
        demoTokenSecret: devJwtSecret(devApiKey),
        allowAnonymous: explicit.has('allowAnonymous') ? (options.allowAnonymous ?? false) : true,
        demo: explicit.has('demo') ? (options.demo ?? false) : true,
        demoApiKey: devApiKey,
      },
      devApiKey,
      notes,
    };
  }
  if (production && apiKeys.length === 0) throw new ConfigError('NODE_ENV=production requires HERALD_API_KEY (backends could not publish)');
  if (production && tokenKeys === 0 && options.allowAnonymous !== true) {
    throw new ConfigError(
      'NODE_ENV=production requires HERALD_JWT_SECRET (or HERALD_JWT_PUBLIC_KEY_FILES / HERALD_JWKS_URL) unless HERALD_ALLOW_ANONYMOUS=true (no client could connect)',
    );
  }
  const origins = options.allowedOrigins ?? [];
  if (production && origins.length === 0) {
    notes.push({
      level: 'info',
      msg: 'NODE_ENV=production and HERALD_ALLOWED_ORIGINS is empty: WebSocket upgrades from browsers are accepted from same-origin pages only (Origin host = Host); list your sites in HERALD_ALLOWED_ORIGINS, or * for any origin',
      fields: { allowedOrigins: [SAME_ORIGIN] },
    });
    return { options: { ...options, allowedOrigins: [SAME_ORIGIN] }, notes };
  }
  if (production && origins.includes(ANY_ORIGIN)) {
    notes.push({
      level: 'info',
      msg: 'HERALD_ALLOWED_ORIGINS=*: WebSocket upgrades are accepted from pages of any origin',
      fields: { allowedOrigins: origins },
    });
  }
  return { options, notes };
}

/** The development mode's JWT secret: derived from its API key (43 characters of base64url). */
export function devJwtSecret(devApiKey: string): string {
  return createHmac('sha256', devApiKey).update('herald development JWT secret').digest('base64url');
}

/** Human-readable logs: asked for, or development mode on a terminal (`auto`); JSON otherwise (a pipe, a file, a log collector). */
function prettyLogs(format: LogFormat, devMode: boolean): boolean {
  return format === 'pretty' || (format === 'auto' && devMode && process.stdout.isTTY === true);
}

/** How many processes to run: `--workers`, or the number of cores with Redis, 1 without. */
function workerCount(node: NodeSettings): number {
  const n = node.workers ?? (redisTarget(node) === undefined ? 1 : availableParallelism());
  if (n < 1) throw new ConfigError('HERALD_WORKERS / --workers: must be at least 1');
  if (n > 1 && redisTarget(node) === undefined) {
    throw new ConfigError(
      'HERALD_WORKERS / --workers: several processes need the Redis engine (set HERALD_REDIS_URL or HERALD_REDIS_CLUSTER); the memory engine lives in one process',
    );
  }
  return n;
}

function banner(base: string, wsPath: string, demo: boolean, admin: boolean, devApiKey: string): string {
  return (
    [
      '',
      '  Herald is running in DEVELOPMENT MODE (no HERALD_API_KEY / HERALD_JWT_SECRET configured).',
      '  Anonymous clients may connect and subscribe to public channels.',
      `  WebSocket:        ${base.replace('http', 'ws')}${wsPath}`,
      ...(demo ? [`  Demo page:        ${base}/`] : []),
      ...(admin ? [`  Admin dashboard:  ${base}/admin`] : []),
      `  API key (dev):    ${devApiKey}`,
      `  JWT secret (dev): ${devJwtSecret(devApiKey)}   (herald token --user 42 --secret ...)`,
      `  Try:  curl -X POST ${base}/api/publish -H 'Authorization: Bearer ${devApiKey}' \\`,
      `          -H 'Content-Type: application/json' -d '{"channel":"news","type":"hello","payload":{"text":"hi"}}'`,
      '  Never use development mode in production: set HERALD_API_KEY and HERALD_JWT_SECRET.',
      '',
    ].join('\n') + '\n'
  );
}

/**
 * Installs graceful-shutdown handlers: the first SIGTERM/SIGINT runs `stop` (then exit 0), a second one
 * exits at once, and a hard deadline guards against anything hanging past the graceful one.
 */
function onSignals(logger: Logger, deadlineMs: number, stop: () => Promise<void>): void {
  let stopping = false;
  const handle = (signal: string): void => {
    if (stopping) {
      // A worker gets the signal twice when the whole process group is signalled (systemd, Ctrl-C):
      // once directly and once from its primary. Only a primary or a single process gives up at once.
      if (cluster.isWorker) return;
      logger.warn({ signal }, 'second signal, exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    setTimeout(
      () => {
        logger.error('shutdown deadline exceeded, exiting');
        process.exit(1);
      },
      Math.min(deadlineMs, 2_147_483_647),
    ).unref();
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => handle('SIGTERM'));
  process.on('SIGINT', () => handle('SIGINT'));
}

/** A worker that dies is forked anew after this long (ms), doubled for each death within WORKER_STABLE_MS of a restart. */
const WORKER_RESTART_MS = 1000;
const WORKER_RESTART_MAX_MS = 30_000;
/** A worker up this long (ms) has its restart delay reset. */
const WORKER_STABLE_MS = 30_000;

/**
 * The primary of `--workers N`: forks the workers, forks a worker anew when one dies (after a delay that grows while
 * they keep dying: a worker that cannot start does not spin), and stops them all on a signal.
 */
function runPrimary(n: number, logger: Logger, devApiKey: string | undefined, deadlineMs: number, node: string): void {
  // Workers run the same command line; a development key generated here is handed down so all share it.
  if (devApiKey !== undefined) process.env['HERALD_DEV_API_KEY'] = devApiKey;
  let listening = 0;
  // One /metrics and one /api/stats for the machine: whichever worker is asked collects every worker's through here.
  serveMachineView(node);
  for (let i = 0; i < n; i++) cluster.fork();
  // Workers that started (listened). One of the first N that dies before is a start-up failure, not restarted (a
  // setting the gateway refuses); a worker forked anew that dies before it listens is forked again, later and later
  // (a configuration file edited since, a port or Redis not there yet: the machine must not stay a worker short).
  const started = new Set<number>();
  const replacements = new Set<number>();
  cluster.on('listening', (worker, address) => {
    started.add(worker.id);
    replacements.delete(worker.id);
    listening += 1;
    if (listening === n) {
      const base = `http://${address.address && address.address.includes(':') ? `[${address.address}]` : (address.address ?? '127.0.0.1')}:${address.port}`;
      logger.info({ url: base, workers: n }, 'gateway listening');
    }
    logger.debug({ worker: worker.process.pid }, 'worker listening');
  });
  let stopping = false;
  let deaths = 0;
  let lastRestart = 0;
  cluster.on('exit', (worker, code, signal) => {
    const wasStarted = started.delete(worker.id);
    const wasReplacement = replacements.delete(worker.id);
    if (stopping || !(wasStarted || wasReplacement)) {
      if (stopping) logger.info({ worker: worker.process.pid, code, signal }, 'worker exited');
      else logger.error({ worker: worker.process.pid, code, signal }, 'worker exited before it listened');
      // Stopping, a worker still starting has no handler for the SIGTERM it is sent yet: killed by it, a normal stop.
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(stopping && (code === 0 || signal === 'SIGTERM') ? 0 : 1);
      return;
    }
    // Died on its own (a crash, kill -9, out of memory): the machine is a worker short until it is forked anew.
    deaths = Date.now() - lastRestart > WORKER_STABLE_MS ? 1 : deaths + 1;
    const delay = Math.min(WORKER_RESTART_MAX_MS, WORKER_RESTART_MS * 2 ** (deaths - 1));
    const what = wasStarted ? 'worker exited; forking a new one' : 'new worker exited before it listened; forking another';
    logger.error({ worker: worker.process.pid, code, signal, restartInMs: delay }, what);
    setTimeout(() => {
      if (stopping) return;
      lastRestart = Date.now();
      const fresh = cluster.fork();
      replacements.add(fresh.id);
      logger.info({ worker: fresh.process.pid }, 'worker forked anew');
    }, delay);
  });
  onSignals(logger, deadlineMs, async () => {
    stopping = true;
    const workers = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            w.once('exit', () => resolve());
            w.process.kill('SIGTERM');
          }),
      ),
    );
  });
}

const COMMANDS = `Commands:
  herald [serve] [options]   Run the gateway (the default).
  herald publish ...         Publish a message through a running gateway.
  herald token ...           Mint a development connection token.
  herald stats ...           Show connections, channels and rates of a running gateway.
  herald webhooks replay     Send the webhook dead letters of a running gateway again (list: show them).
  herald <command> --help    Options of a command (herald help: this help).
`;

function readStdin(): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (d: string) => (text += d));
    process.stdin.on('end', () => resolve(text));
    process.stdin.on('error', reject);
  });
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const wantsHelp = rest.includes('--help') || rest.includes('-h');
  if (command === 'publish') {
    if (wantsHelp) return void process.stdout.write(`${PUBLISH_HELP}\n`);
    process.exitCode = await publishCommand(rest, { env: process.env, readStdin, out: (t) => process.stdout.write(t) });
    return;
  }
  if (command === 'token') {
    if (wantsHelp) return void process.stdout.write(`${TOKEN_HELP}\n`);
    process.stdout.write(`${await tokenCommand(rest, process.env)}\n`);
    return;
  }
  if (command === 'stats') {
    if (wantsHelp) return void process.stdout.write(`${STATS_HELP}\n`);
    process.exitCode = await statsCommand(rest, { env: process.env, out: (t) => process.stdout.write(t) });
    return;
  }
  if (command === 'webhooks') {
    if (wantsHelp) return void process.stdout.write(`${WEBHOOKS_HELP}\n`);
    process.exitCode = await webhooksCommand(rest, { env: process.env, out: (t) => process.stdout.write(t) });
    return;
  }
  if (command !== undefined && command !== 'serve' && command !== 'help' && !command.startsWith('-')) {
    throw new ConfigError(`unknown command ${command.slice(0, 50)} (commands: serve, publish, token, stats, webhooks; see herald --help)`);
  }
  const args = command === 'serve' ? rest : argv;
  if (command === 'help' || args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${helpText()}\n\n${COMMANDS}`);
    return;
  }
  if (args.includes('--version')) {
    process.stdout.write(`herald ${VERSION}\n`);
    return;
  }
  const config = parseConfig(args, process.env);
  // Before the gateway allocates anything (see tuneGarbageCollection); each worker of --workers runs this too.
  const tuned = tuneGarbageCollection();
  const prepared = prepareOptions(withPusherApp(config.options, config.node), config.explicit, process.env, config.node.devAllowRemote);
  const logger = createLogger(config.logLevel, {
    pretty: prettyLogs(config.node.logFormat, prepared.devApiKey !== undefined),
    // https://no-color.org
    color: process.stdout.isTTY === true && process.env['NO_COLOR'] === undefined,
    // Under --workers, which worker wrote a line (as the `worker` label of its per-worker metrics).
    ...(cluster.worker === undefined ? {} : { fields: { worker: cluster.worker.id } }),
  });
  if (tuned) logger.debug({ v8Flags: GC_FLAG }, 'garbage collector: allocation-site pretenuring off');
  // Once per node: a primary of --workers says it, its workers do not repeat it.
  if (cluster.isPrimary) for (const n of [...config.notices, ...prepared.notes]) logger[n.level](n.fields, n.msg);
  const deadline = (config.options.shutdownTimeout ?? DEFAULTS.shutdownTimeout) + 5000;
  // Checked here, in the primary of --workers too: a bad setting stops it with exit 2 before it forks.
  checkEngineSettings(prepared.options, config.node);
  const workers = workerCount(config.node);

  if (workers > 1 && cluster.isPrimary) {
    const devApiKey = prepared.devApiKey;
    if (devApiKey !== undefined) {
      const host = config.options.host ?? DEFAULTS.host;
      // Once the first worker listens: the port it got (`--port 0` picks one), not the one asked for.
      cluster.once('listening', (_worker, address) => {
        process.stdout.write(
          banner(
            `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`,
            (prepared.options.wsPaths ?? DEFAULTS.wsPaths)[0] ?? '/ws',
            prepared.options.demo === true,
            prepared.options.admin === true,
            devApiKey,
          ),
        );
      });
    }
    runPrimary(workers, logger, prepared.devApiKey, deadline, config.node.nodeId ?? hostname());
    return;
  }

  // The node starts listening asynchronously; the signal handlers below are installed in the same
  // synchronous run, so a SIGTERM at any moment after this line is a graceful stop.
  // Node ids must be unique per process: workers of one primary add their worker number to a configured id.
  const nodeSettings: NodeSettings =
    cluster.isWorker && config.node.nodeId !== undefined ? { ...config.node, nodeId: `${config.node.nodeId}-w${cluster.worker?.id ?? 0}` } : config.node;
  const starting: Promise<HeraldNode> = startNode({ ...prepared.options, logger }, nodeSettings, logger);
  onSignals(logger, deadline, () => starting.then((node) => node.close()));
  process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection'));
  if (cluster.worker) {
    // The primary is gone (killed): stop gracefully rather than run orphaned. Node's own cluster code
    // calls process.exit(0) right after an unexpected disconnect unless the exit is marked as intended, so
    // this must be the worker's 'disconnect' event with exitedAfterDisconnect set, not process.on('disconnect').
    const worker = cluster.worker;
    worker.once('disconnect', () => {
      worker.exitedAfterDisconnect = true;
      void starting.then((node) => node.close()).finally(() => process.exit(0));
    });
  }
  const { gateway } = await starting;
  if (cluster.isWorker) joinMachineView(gateway);
  const { address, port } = gateway.address();
  const base = `http://${address.includes(':') ? `[${address}]` : address}:${port}`;
  if (prepared.devApiKey !== undefined && cluster.isPrimary) {
    // Printed once, on purpose, outside the logs: the key exists only in this process.
    process.stdout.write(banner(base, gateway.options.wsPaths[0] ?? '/ws', gateway.options.demo, gateway.options.admin, prepared.devApiKey));
  }
  if (cluster.isPrimary) {
    logger.info({ url: base, wsPaths: gateway.options.wsPaths, engine: gateway.engine.name, devMode: prepared.devApiKey !== undefined }, 'gateway listening');
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof OptionsError) {
    // Name the setting as the user wrote it, not the internal option name.
    const s = SETTINGS.find((x) => x.key === err.option);
    process.stderr.write(`herald: ${s ? `${s.env} / ${s.flag}` : err.option}: ${err.message.slice(err.option.length + 2)}\n`);
    process.exit(2);
  }
  if (err instanceof ConfigError) {
    process.stderr.write(`herald: ${err.message}\n`);
    process.exit(2);
  }
  const code = (err as { code?: unknown }).code;
  if (code === 'EADDRINUSE' || code === 'EACCES') {
    process.stderr.write(`herald: cannot listen: ${(err as Error).message}\n`);
    process.exit(1);
  }
  process.stderr.write(`herald: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
