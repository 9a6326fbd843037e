/**
 * Webhooks across `herald` CLI processes on one Redis prefix, as operators run them: each event is sent once
 * for the cluster, and a gateway killed with kill -9 loses none: the user it held goes offline (its presence
 * expires and the other node's sweep says so after the hold-back), and the deliveries it had leased are sent by
 * the other node once their lease ran out. The receiver fails every request until the kill, then accepts. Waits
 * are on the receiver's requests and process output.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { beforeAll, describe, expect, it } from 'vitest';
import { API_KEY, eventually, JWT_SECRET, onCleanup, TestClient, token } from './helpers.js';
import { redisPrefix } from './redis-helpers.js';
import { buildCli, startRedisNode, type HeraldProcess } from './support/cli-process.js';

const WAIT = 60_000;
const SECRET = `whsec_${Buffer.from('processes-webhook-secret-0123456789').toString('base64')}`;
beforeAll(buildCli, 180_000);

describe('webhooks across gateway processes (Redis engine)', () => {
  it('sends each event once for the cluster, and loses none when a node is killed with kill -9', async () => {
    const received: Array<{ id: string; type: string; data: Record<string, unknown> }> = [];
    let accepting = false;
    const wh = new Webhook(SECRET);
    const server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      req.on('end', () => {
        if (!accepting) return void res.writeHead(503).end();
        const e = wh.verify(body, req.headers as Record<string, string>) as { type: string; data: Record<string, unknown> };
        received.push({ id: String(req.headers['webhook-id']), ...e });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    onCleanup(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;

    const { prefix } = redisPrefix('hooks-proc');
    const env = {
      HERALD_API_KEY: API_KEY,
      HERALD_JWT_SECRET: JWT_SECRET,
      HERALD_WEBHOOK_URL: url,
      HERALD_WEBHOOK_SECRET: SECRET,
      HERALD_WEBHOOK_EVENTS: 'user.online,user.offline',
      HERALD_WEBHOOK_OFFLINE_DELAY_MS: '1000',
      // Short leases (3 x timeout + 10 s) so the killed node's deliveries come back within the test.
      HERALD_WEBHOOK_TIMEOUT_MS: '1000',
    };
    const [a, b] = (await Promise.all(['node-a', 'node-b'].map((n) => startRedisNode(n, prefix, { env, timeoutMs: WAIT })))) as [HeraldProcess, HeraldProcess];

    // user 7 on node a (stays), user 9 on node b (killed with it).
    await TestClient.connect(a.ws, { token: await token({ sub: '7' }) });
    const doomed = await TestClient.connect(b.ws, { token: await token({ sub: '9' }) });
    // Let both nodes try (and fail) at least once, so that jobs are leased and retried before the kill.
    await new Promise<void>((resolve) => server.once('request', () => resolve()));
    const closed = doomed.client.closed(WAIT);
    expect(b.kill9()).toBe(true);
    await b.exited(WAIT);
    await closed;
    accepting = true;

    const types = (): string[] => received.map((r) => `${r.type} ${String(r.data['user'])}`);
    await eventually(() => (new Set(types()).size >= 3 ? true : undefined), 'user.online 7, user.online 9 and user.offline 9', WAIT);
    expect(new Set(types())).toEqual(new Set(['user.online 7', 'user.online 9', 'user.offline 9']));
    // Once for the cluster: no event id twice (a delivery repeated after a lost answer would be; none here).
    expect(new Set(received.map((r) => r.id)).size).toBe(received.length);
    expect(a.alive).toBe(true);
  }, 120_000);
});
