/**
 * Channel churn gives its memory back: 200 000 channels made by anonymous clients that connect, subscribe and
 * leave leave no state in the engine or the hub, and the heap (after a full GC, in a process of its own) ends
 * where it started. The issue this guards: 300 000 such channels kept 428 MB after every client had left.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildCli } from './support/cli-process.js';

beforeAll(buildCli, 180_000);

describe('channel churn', () => {
  it('keeps nothing of 200 000 channels once their subscribers are gone (heap within 8 MB of where it started)', async () => {
    const child = spawn(process.execPath, ['--expose-gc', fileURLToPath(new URL('./support/churn-child.mjs', import.meta.url))], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(0);
    const r = JSON.parse(out) as { channels: number; before: number; after: number; engineChannels: number; hubChannels: number };
    expect(r.channels).toBeGreaterThanOrEqual(200_000);
    expect(r.engineChannels).toBe(0);
    expect(r.hubChannels).toBe(0);
    expect(r.after - r.before).toBeLessThan(8 * 1024 * 1024);
  }, 120_000);
});
