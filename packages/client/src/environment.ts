import type { BroadcastChannelConstructor, Environment, LockManagerLike } from './types.js';

interface EventTargetLike {
  addEventListener(type: string, fn: () => void): void;
  removeEventListener(type: string, fn: () => void): void;
}

interface DocumentLike extends EventTargetLike {
  visibilityState?: string;
}

function isTarget(v: unknown): v is EventTargetLike {
  return typeof v === 'object' && v !== null && typeof (v as EventTargetLike).addEventListener === 'function';
}

function listen(target: EventTargetLike | undefined, type: string, fn: () => void): () => void {
  if (!target) return () => {};
  target.addEventListener(type, fn);
  return () => target.removeEventListener(type, fn);
}

/**
 * Page lifecycle hooks of the current global scope: `online` and `pagehide` on the global object (window
 * or worker) and `visibilitychange` on `document`, with `navigator.locks` and `BroadcastChannel` where the
 * browser has them. Returns null where neither the global object nor `document` is an event target (Node).
 */
export function browserEnvironment(scope: object = globalThis): Environment | null {
  const g = scope as { document?: unknown; navigator?: { locks?: LockManagerLike }; BroadcastChannel?: BroadcastChannelConstructor };
  const win = isTarget(scope) ? scope : undefined;
  const doc = isTarget(g.document) ? (g.document as DocumentLike) : undefined;
  if (!win && !doc) return null;
  const locks = g.navigator?.locks;
  return {
    onOnline: (fn) => listen(win, 'online', fn),
    onVisible: (fn) =>
      listen(doc, 'visibilitychange', () => {
        if (doc?.visibilityState === 'visible') fn();
      }),
    onLeave: (fn) => listen(win, 'pagehide', fn),
    // Read once: a page that removes them later keeps what it started with.
    locks: typeof locks?.request === 'function' ? locks : undefined,
    BroadcastChannel: typeof g.BroadcastChannel === 'function' ? g.BroadcastChannel : undefined,
  };
}
