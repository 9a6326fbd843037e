import type { Environment } from './types.js';

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
 * Page lifecycle hooks of the current global scope: `online` on the global object (window or worker)
 * and `visibilitychange` on `document`. Returns null where neither exists (Node).
 */
export function browserEnvironment(scope: object = globalThis): Environment | null {
  const g = scope as { document?: unknown };
  const win = isTarget(scope) ? scope : undefined;
  const doc = isTarget(g.document) ? (g.document as DocumentLike) : undefined;
  if (!win && !doc) return null;
  return {
    onOnline: (fn) => listen(win, 'online', fn),
    onVisible: (fn) =>
      listen(doc, 'visibilitychange', () => {
        if (doc?.visibilityState === 'visible') fn();
      }),
  };
}
