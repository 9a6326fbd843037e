import type { Clock } from './types.js';

/**
 * The real clock. The global timer functions are called through arrows: browsers throw "Illegal
 * invocation" when `setTimeout` is called with an object other than `window` as `this`.
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as number),
};
