/** A listener of one event. */
export type Listener<T> = (payload: T) => void;

type AnyListener = (payload: unknown) => void;

/**
 * A tiny typed event emitter. A listener that throws never stops the others nor the caller: the error
 * goes to `onListenerError`.
 */
export class Emitter<M extends object> {
  private readonly _listeners = new Map<keyof M, Set<AnyListener>>();

  constructor(private readonly _onListenerError: (error: unknown, event: keyof M) => void) {}

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof M>(event: K, listener: Listener<M[K]>): () => void {
    let set = this._listeners.get(event);
    if (!set) this._listeners.set(event, (set = new Set()));
    set.add(listener as AnyListener);
    return () => this.off(event, listener);
  }

  /** Adds a listener called at most once; returns a function that removes it. */
  once<K extends keyof M>(event: K, listener: Listener<M[K]>): () => void {
    const off = this.on(event, (payload) => {
      off();
      listener(payload);
    });
    return off;
  }

  /** Removes a listener. */
  off<K extends keyof M>(event: K, listener: Listener<M[K]>): void {
    this._listeners.get(event)?.delete(listener as AnyListener);
  }

  /** Whether `event` has at least one listener. */
  has(event: keyof M): boolean {
    return (this._listeners.get(event)?.size ?? 0) > 0;
  }

  /** Calls every listener of `event` in the order they were added. */
  emit<K extends keyof M>(event: K, payload: M[K]): void {
    const set = this._listeners.get(event);
    if (!set) return;
    // A copy: listeners may add or remove listeners while we iterate.
    for (const listener of [...set]) {
      try {
        listener(payload);
      } catch (error) {
        this._onListenerError(error, event);
      }
    }
  }
}
