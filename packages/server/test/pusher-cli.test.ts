/**
 * The `herald` command with a Pusher app from the environment (HERALD_PUSHER_APP_ID/KEY/SECRET), as an operator
 * runs it: pusher-js-style clients connect on /app/<key> and the signed HTTP API publishes to them.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { APP, PusherTestClient } from './pusher-helpers.js';
import { signedRequest } from './pusher-http-helpers.js';
import { buildCli, HeraldProcess } from './support/cli-process.js';

beforeAll(buildCli, 180_000);

describe('herald with HERALD_PUSHER_APP_*', () => {
  it('serves the Pusher protocol and HTTP API of the configured app beside the native one', async () => {
    const h = await new HeraldProcess(['--port', '0'], {
      HERALD_API_KEY: 'cli_api_key_0123456789',
      HERALD_ALLOW_ANONYMOUS: 'true',
      HERALD_PUSHER_APP_ID: APP.id,
      HERALD_PUSHER_APP_KEY: APP.key,
      HERALD_PUSHER_APP_SECRET: APP.secret,
    }).listening();
    const port = Number(new URL(h.http).port);
    const c = await PusherTestClient.connect(port);
    await c.subscribe('news');
    const r = await signedRequest(h.http, 'POST', `/apps/${APP.id}/events`, { name: 'hello', channel: 'news', data: '{"from":"cli"}' });
    expect(r.status).toBe(200);
    expect((await c.nextEvent('hello')).data).toBe('{"from":"cli"}');
  });

  it('refuses to start with only part of the app (exit code 2)', async () => {
    const h = new HeraldProcess(['--port', '0'], { HERALD_API_KEY: 'cli_api_key_0123456789', HERALD_PUSHER_APP_ID: APP.id });
    expect((await h.exited()).code).toBe(2);
  });
});
