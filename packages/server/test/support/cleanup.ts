/**
 * Cleanup after each test, one stack shared by every test file and support module (the server's helpers
 * and the client's harness alike): whatever a test registers runs after it, last registered first, whatever
 * its outcome. A cleanup that takes long is named on stderr, so a hook timeout says which one hung.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach } from 'vitest';

const cleanups: Array<() => unknown> = [];

/** Registers `fn` to run after the current test (reverse order of registration). */
export function onCleanup(fn: () => unknown): void {
  cleanups.push(fn);
}

/** Listens on a free port of 127.0.0.1, and closes `server` and its connections after the current test; returns the port. */
export async function listenUntilCleanup(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onCleanup(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return (server.address() as AddressInfo).port;
}

/** A cleanup slower than this is reported. */
const SLOW_MS = 5000;

afterEach(async () => {
  while (cleanups.length > 0) {
    const fn = cleanups.pop() as () => unknown;
    const started = performance.now();
    const slow = setTimeout(() => console.warn(`cleanup still running after ${SLOW_MS} ms: ${String(fn).slice(0, 300)}`), SLOW_MS);
    try {
      await fn();
    } finally {
      clearTimeout(slow);
    }
    const ms = performance.now() - started;
    if (ms > SLOW_MS) console.warn(`cleanup took ${Math.round(ms)} ms: ${String(fn).slice(0, 300)}`);
  }
});
