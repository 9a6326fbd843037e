import type { Clock } from './types.js';

/** How many pings in a row may go unanswered before the connection counts as dead. */
export const MAX_MISSED_PINGS = 2;

/**
 * Application-level liveness. Browsers cannot see WebSocket protocol pings, and a socket whose network
 * vanished (sleeping laptop, dropped Wi-Fi) may stay "open" for minutes without ever firing `onclose`.
 * So the client sends `{"type":"ping"}` every interval; any frame received counts as an answer; when
 * {@link MAX_MISSED_PINGS} pings in a row got nothing back, `dead` is called.
 */
export class Heartbeat {
  private _timer: unknown;
  private _probeTimer: unknown;
  private _interval = 0;
  private _missed = 0;

  constructor(
    private readonly _clock: Clock,
    private readonly _ping: () => void,
    private readonly _dead: (reason: string) => void,
  ) {}

  /** Starts pinging every `interval` ms (0 disables the interval; probes still work). */
  start(interval: number): void {
    this.stop();
    this._interval = interval;
    this._schedule();
  }

  /** Stops every timer. */
  stop(): void {
    this._clock.clearTimeout(this._timer);
    this._clock.clearTimeout(this._probeTimer);
    this._timer = this._probeTimer = undefined;
    this._missed = 0;
  }

  /** Something arrived from the server: the connection is alive. */
  alive(): void {
    this._missed = 0;
    if (this._probeTimer !== undefined) {
      this._clock.clearTimeout(this._probeTimer);
      this._probeTimer = undefined;
    }
  }

  /** Pings now and declares the connection dead unless something arrives within `timeout` ms. */
  probe(timeout: number): void {
    if (this._probeTimer !== undefined) return;
    this._probeTimer = this._clock.setTimeout(() => {
      this._probeTimer = undefined;
      this._dead('no pong after resume');
    }, timeout);
    this._ping();
  }

  private _schedule(): void {
    if (this._interval > 0) this._timer = this._clock.setTimeout(() => this._tick(), this._interval);
  }

  private _tick(): void {
    if (this._missed >= MAX_MISSED_PINGS) {
      this._timer = undefined;
      this._dead('no pong');
      return;
    }
    this._missed++;
    this._ping();
    this._schedule();
  }
}
