// The PHP seed flow (issue 5) in a real headless Chromium: the `php -S` example app
// (examples/php/app/index.php) renders a page for user 42 with a connection token; the page loads the
// browser SDK (dist/herald.min.js, served by the PHP app) and connects to a Redis-engine gateway. Its form
// posts to the PHP app, which pushes to user 42 through the HTTP API (Herald\Client) and straight into
// Redis (Herald\RedisPublisher); the page shows both messages. A push to a user with no connection
// reports online:false. Every wait is on an event (process output, page.waitForFunction), never a sleep.
// Needs `npm run build` (the page loads the built bundle), php-cli with php-curl and php-redis, and Redis.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisEngine } from '../../server/src/engine/redis/engine.js';
import { createGateway, type Gateway } from '../../server/src/gateway/gateway.js';
import { silentLogger } from '../../server/src/util/logger.js';
import { deleteKeys, REDIS_URL } from '../../server/test/redis-helpers.js';
import { freePort, ROOT } from '../../server/test/support/cli-process.js';
import { launchChromium, openPage, screenshot } from './support/chromium.js';

const WAIT = 30_000;
const API_KEY = `php_browser_${randomBytes(12).toString('hex')}`;
const JWT_SECRET = randomBytes(32).toString('hex');
/** Keys of this run only; deleted at the end. */
const PREFIX = `herald-php-browser-${randomBytes(6).toString('hex')}`;

/** Runs `php -S` on the example app; resolves once it says it started (a line on stderr). */
async function startPhpApp(gatewayUrl: string): Promise<{ url: string; child: ChildProcess; output: string[] }> {
  const port = await freePort();
  const env: Record<string, string | undefined> = {
    ...process.env,
    HERALD_URL: gatewayUrl,
    HERALD_API_KEY: API_KEY,
    HERALD_JWT_SECRET: JWT_SECRET,
    HERALD_REDIS_URL: REDIS_URL,
    HERALD_REDIS_PREFIX: PREFIX,
  };
  const child = spawn('php', ['-S', `127.0.0.1:${port}`, 'examples/php/app/index.php'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`php -S did not start within ${WAIT} ms: ${output.join('\n')}`)), WAIT);
    const onLine = (line: string): void => {
      output.push(line);
      if (/Development Server \(http:\/\/127\.0\.0\.1:\d+\) started/.test(line)) {
        clearTimeout(timer);
        resolve();
      }
    };
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', onLine);
    createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', onLine);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`php -S exited with ${code}: ${output.join('\n')}`));
    });
  });
  return { url: `http://127.0.0.1:${port}`, child, output };
}

function stopProcess(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** What the page's form reports after a push (the JSON the PHP app answered). */
interface PushResult {
  ok: string;
  online: string;
  text: string;
}

/** Fills and submits the page's form; resolves with the result the page shows. */
async function push(page: Page, to: string, text: string, via: 'http' | 'redis'): Promise<PushResult> {
  await page.evaluate(() => {
    const out = document.getElementById('result') as HTMLOutputElement;
    delete out.dataset['ok'];
    delete out.dataset['online'];
  });
  await page.fill('input[name="to"]', to);
  await page.fill('input[name="text"]', text);
  await page.click(`button[value="${via}"]`);
  await page.waitForFunction(() => (document.getElementById('result') as HTMLOutputElement).dataset['ok'] !== undefined, undefined, { timeout: WAIT });
  return page.evaluate(() => {
    const out = document.getElementById('result') as HTMLOutputElement;
    return { ok: out.dataset['ok'] ?? '', online: out.dataset['online'] ?? '', text: out.textContent ?? '' };
  });
}

/** The messages the page lists: text, seq and via. */
function shown(page: Page): Promise<Array<{ text: string; seq: string; via: string }>> {
  return page.evaluate(() =>
    Array.from(document.querySelectorAll<HTMLLIElement>('#messages li'), (li) => ({
      text: li.firstChild?.textContent?.trim() ?? '',
      seq: li.dataset['seq'] ?? '',
      via: li.dataset['via'] ?? '',
    })),
  );
}

describe('PHP to browser, end to end', () => {
  let gateway: Gateway | undefined;
  let php: { url: string; child: ChildProcess; output: string[] } | undefined;
  let browser: Browser | undefined;

  beforeAll(async () => {
    gateway = await createGateway({
      port: 0,
      host: '127.0.0.1',
      apiKeys: [API_KEY],
      jwtSecrets: [JWT_SECRET],
      logger: silentLogger(),
      shutdownTimeout: 2000,
      engine: createRedisEngine({ url: REDIS_URL, prefix: PREFIX }),
    });
    php = await startPhpApp(`http://127.0.0.1:${gateway.address().port}`);
    browser = await launchChromium();
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await stopProcess(php?.child);
    await gateway?.close();
    await deleteKeys(`${PREFIX}:*`);
  }, 60_000);

  it('shows a push through the HTTP API and one through Redis; an offline user reports online:false', async () => {
    const { page, pageErrors } = await openPage(browser as Browser, { viewport: { width: 900, height: 700 } });
    await page.goto(`${php?.url}/?user=42`);
    await page.waitForFunction(() => document.getElementById('state')?.dataset['state'] === 'connected', undefined, { timeout: WAIT });

    const viaHttp = await push(page, '42', 'hello through the HTTP API', 'http');
    expect(viaHttp).toMatchObject({ ok: 'true', online: 'true' });
    await page.waitForFunction(() => document.querySelectorAll('#messages li').length >= 1, undefined, { timeout: WAIT });

    const viaRedis = await push(page, '42', 'hello through Redis ✓ 中文 😀', 'redis');
    expect(viaRedis).toMatchObject({ ok: 'true', online: 'true' });
    await page.waitForFunction(() => document.querySelectorAll('#messages li').length >= 2, undefined, { timeout: WAIT });

    expect(await shown(page)).toEqual([
      { text: 'hello through the HTTP API', seq: '1', via: 'http' },
      { text: 'hello through Redis ✓ 中文 😀', seq: '2', via: 'redis' },
    ]);

    // User 43 has no connection: both paths say so, and nothing reaches user 42's page.
    const offlineHttp = await push(page, '43', 'nobody is there', 'http');
    expect(offlineHttp).toMatchObject({ ok: 'true', online: 'false' });
    expect(offlineHttp.text).toContain('online: false');
    expect(await push(page, '43', 'nobody is there either', 'redis')).toMatchObject({ ok: 'true', online: 'false' });

    // A last push to 42 proves the page is still live, and that nothing for 43 arrived before it.
    await push(page, '42', 'still here', 'http');
    await page.waitForFunction(() => document.querySelectorAll('#messages li').length >= 3, undefined, { timeout: WAIT });
    expect((await shown(page)).map((m) => m.text)).toEqual(['hello through the HTTP API', 'hello through Redis ✓ 中文 😀', 'still here']);
    expect(pageErrors).toEqual([]);

    await screenshot(page, 'php-seed-flow.png');
  }, 120_000);
});
