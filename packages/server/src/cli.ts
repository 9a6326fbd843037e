#!/usr/bin/env node
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError, helpText, parseConfig, SETTINGS } from './config.js';
import { createGateway, type Gateway } from './gateway.js';
import { createLogger } from './logger.js';
import { DEFAULTS, OptionsError, type GatewayOptions } from './options.js';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Decides development mode and refuses unsafe production settings. Returns the options to start with. */
export function prepareOptions(
  options: GatewayOptions,
  explicit: ReadonlySet<string>,
  env: Readonly<Record<string, string | undefined>>,
): { options: GatewayOptions; devApiKey?: string } {
  const production = env['NODE_ENV'] === 'production';
  const apiKeys = options.apiKeys ?? [];
  const jwtSecrets = options.jwtSecrets ?? [];
  if (apiKeys.length === 0 && jwtSecrets.length === 0) {
    if (production) {
      throw new ConfigError('NODE_ENV=production but neither HERALD_API_KEY nor HERALD_JWT_SECRET is set; refusing to start in development mode');
    }
    const devApiKey = `dev_${randomBytes(18).toString('base64url')}`;
    return {
      options: {
        ...options,
        apiKeys: [devApiKey],
        allowAnonymous: explicit.has('allowAnonymous') ? (options.allowAnonymous ?? false) : true,
        demo: explicit.has('demo') ? (options.demo ?? false) : true,
        demoApiKey: devApiKey,
      },
      devApiKey,
    };
  }
  if (production && apiKeys.length === 0) throw new ConfigError('NODE_ENV=production requires HERALD_API_KEY (backends could not publish)');
  if (production && jwtSecrets.length === 0 && options.allowAnonymous !== true) {
    throw new ConfigError('NODE_ENV=production requires HERALD_JWT_SECRET unless HERALD_ALLOW_ANONYMOUS=true (no client could connect)');
  }
  return { options };
}

async function main(argv: string[]): Promise<void> {
  const args = argv[0] === 'serve' ? argv.slice(1) : argv;
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${helpText()}\n`);
    return;
  }
  if (args.includes('--version')) {
    process.stdout.write(`herald ${VERSION}\n`);
    return;
  }
  const config = parseConfig(args, process.env);
  const logger = createLogger(config.logLevel);
  const prepared = prepareOptions(config.options, config.explicit, process.env);

  // The gateway starts listening asynchronously; the signal handlers below are installed in the same
  // synchronous run, so a SIGTERM at any moment after this line is a graceful stop.
  const starting: Promise<Gateway> = createGateway({ ...prepared.options, logger });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal, exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const shutdownTimeout = config.options.shutdownTimeout ?? DEFAULTS.shutdownTimeout;
    // A hard deadline in case something hangs past the graceful one.
    setTimeout(
      () => {
        logger.error('shutdown deadline exceeded, exiting');
        process.exit(1);
      },
      Math.min(shutdownTimeout + 5000, 2_147_483_647),
    ).unref();
    starting
      .then((gateway) => gateway.close())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection'));

  const gateway = await starting;
  const { address, port } = gateway.address();
  const base = `http://${address.includes(':') ? `[${address}]` : address}:${port}`;
  if (prepared.devApiKey !== undefined) {
    // Printed once, on purpose, outside the logs: the key exists only in this process.
    process.stdout.write(
      [
        '',
        '  Herald is running in DEVELOPMENT MODE (no HERALD_API_KEY / HERALD_JWT_SECRET configured).',
        '  Anonymous clients may connect and subscribe to public channels.',
        `  WebSocket:        ${base.replace('http', 'ws')}${gateway.options.wsPaths[0] ?? '/ws'}`,
        ...(gateway.options.demo ? [`  Demo page:        ${base}/`] : []),
        `  API key (dev):    ${prepared.devApiKey}`,
        `  Try:  curl -X POST ${base}/api/publish -H 'Authorization: Bearer ${prepared.devApiKey}' \\`,
        `          -H 'Content-Type: application/json' -d '{"channel":"news","type":"hello","payload":{"text":"hi"}}'`,
        '  Never use development mode in production: set HERALD_API_KEY and HERALD_JWT_SECRET.',
        '',
      ].join('\n') + '\n',
    );
  }
  logger.info({ url: base, wsPaths: gateway.options.wsPaths, engine: gateway.engine.name, devMode: prepared.devApiKey !== undefined }, 'gateway listening');
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
