/**
 * Cleanup after each test, one stack shared by every test file and support module (the server's helpers
 * and the client's harness alike): whatever a test registers runs after it, last registered first, whatever
 * its outcome.
 */
import { afterEach } from 'vitest';

const cleanups: Array<() => unknown> = [];

/** Registers `fn` to run after the current test (reverse order of registration). */
export function onCleanup(fn: () => unknown): void {
  cleanups.push(fn);
}

afterEach(async () => {
  while (cleanups.length > 0) await (cleanups.pop() as () => unknown)();
});
