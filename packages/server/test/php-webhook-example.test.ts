/**
 * examples/php/webhook.php, the PHP webhook receiver, as a user runs it (`php -S` with the script) behind a real
 * gateway that sends it webhooks: it verifies each request with Herald\Webhook::verify() and logs
 * user.online and user.offline; a forged request is refused with 401. The gateway's clock is manual (the
 * hold-back of user.offline); the receiver's log, which has no event, is polled.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { eventually, ManualClock, onCleanup, startGateway, TestClient, token } from './helpers.js';
import { freePort, ROOT } from './support/cli-process.js';

const SECRET = `whsec_${Buffer.from('php-example-webhook-secret-0123456789').toString('base64')}`;

/** `php -S` serving an example script (examples/php/webhook.php by default); resolves once it listens. */
async function phpReceiver(log: string, script = 'examples/php/webhook.php', env: Record<string, string> = {}): Promise<string> {
  const port = await freePort();
  const proc = spawn('php', ['-S', `127.0.0.1:${port}`, script], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'] ?? '', HERALD_WEBHOOK_SECRET: SECRET, HERALD_WEBHOOK_LOG: log, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  onCleanup(() => void proc.kill('SIGKILL'));
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const seen = (d: Buffer): void => {
      out += d.toString();
      if (out.includes('started')) resolve();
    };
    proc.stdout.on('data', seen);
    proc.stderr.on('data', seen);
    proc.once('exit', (code) => reject(new Error(`php -S exited (${code}): ${out}`)));
  });
  return `http://127.0.0.1:${port}/`;
}

describe('examples/php/webhook.php', () => {
  it('verifies the webhooks a gateway sends and logs user.online and user.offline; refuses a forged one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-php-webhook-'));
    onCleanup(() => rmSync(dir, { recursive: true, force: true }));
    const log = join(dir, 'webhooks.log');
    const url = await phpReceiver(log);
    // Real time at the start: PHP checks the timestamp against its own clock.
    const clock = new ManualClock(Date.now());
    const gw = await startGateway({ clock, webhookUrl: url, webhookSecret: SECRET, webhookOfflineDelay: 2000 });
    const read = (): string => {
      try {
        return readFileSync(log, 'utf8');
      } catch {
        return '';
      }
    };
    const { client } = await TestClient.connect(gw.ws, { token: await token({ sub: '42' }) });
    // The dispatcher polls the outbox on the (manual) clock: a pass now, and again until PHP logged it.
    const logged = (text: string, step = 0) =>
      eventually(async () => {
        clock.advance(step);
        await gw.gateway.webhooks.kick();
        return read().includes(text) ? true : undefined;
      }, text);
    await logged('user 42 online');
    client.terminate();
    await client.closed();
    // Time passes (the hold-back) until the gateway has noticed the close and said so.
    await logged('user 42 offline', 500);
    expect(read().split('\n').filter(Boolean)).toEqual([expect.stringMatching(/ user 42 online$/), expect.stringMatching(/ user 42 offline$/)]);

    const forged = await fetch(url, {
      method: 'POST',
      headers: {
        'webhook-id': 'evt_x',
        'webhook-timestamp': String(Math.floor(Date.now() / 1000)),
        'webhook-signature': 'v1,AAAA',
        'content-type': 'application/json',
      },
      body: '{"type":"user.online","timestamp":"2026-01-01T00:00:00.000Z","data":{"user":"mallory"}}',
    });
    expect(forged.status).toBe(401);
    expect(read()).toContain('[webhook_invalid_signature]');
    expect(read()).not.toContain('mallory');
  }, 60_000);
});

describe('examples/php/publish-hook.php', () => {
  it("decides a browser's publishes behind a real gateway: rejects links with a reason, rewrites, accepts the rest", async () => {
    const hookSecret = `whsec_${Buffer.from('php-example-publish-hook-secret-01').toString('base64')}`;
    const url = await phpReceiver('/dev/null', 'examples/php/publish-hook.php', { HERALD_PUBLISH_HOOK_SECRET: hookSecret });
    // Real time: PHP checks the request's timestamp against its own clock.
    const gw = await startGateway({ clock: new ManualClock(Date.now()), publishHookUrl: url, publishHookSecret: hookSecret, publishHookTimeout: 10_000 });
    const reader = await TestClient.connect(gw.ws, { subs: { 'chat:room': {} } });
    const ann = await TestClient.connect(gw.ws, { token: await token({ sub: 'ann', publish: ['chat:*'], info: { name: 'Ann' } }) });
    const say = async (id: number, text: string) => {
      ann.client.send({ type: 'publish', channel: 'chat:room', event: 'said', payload: { text }, id });
      return ann.client.nextWhere((f) => f['id'] === id, `the answer to ${id}`);
    };
    expect(await say(1, 'see https://spam.example')).toMatchObject({ type: 'error', code: 'publish_rejected', message: 'Links are not allowed in this chat.' });
    expect(await say(2, 'oh darn')).toMatchObject({ type: 'published', seq: 1 });
    expect(await say(3, 'hello 👋')).toMatchObject({ type: 'published', seq: 2 });
    const got = await reader.client.waitMessages('chat:room', 2);
    expect(got.map((m) => m['payload'])).toEqual([{ text: 'oh ****', name: 'Ann' }, { text: 'hello 👋' }]);
    // A request the gateway did not sign is refused.
    const forged = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"payload":{"text":"x"}}' });
    expect(forged.status).toBe(401);
  }, 60_000);
});
