import type { Clock } from './types.js';

/** How many pings in a row may go unanswered before the connection counts as dead. */
export const MAX_MISSED_PINGS = 2;

/**
 * Application-level liveness. Browsers cannot see WebSocket protocol pings, and a socket whose network
 * vanished (sleeping laptop, dropped Wi-Fi, a NAT that forgot the flow) may stay "open" for minutes without
 * ever firing `onclose`.
 *
 * The client sends `{"type":"ping"}` every interval, and any frame received counts as an answer. When
 * nothing has arrived for one interval, a second ping goes out half an interval later; when nothing has
 * arrived for two intervals ({@link MAX_MISSED_PINGS} pings unanswered), `dead` is called. So a dead
 * connection is detected within two ping intervals of the last frame, whatever the timer phase.
 *
 * One timer, rescheduled lazily: `alive()` only records the time, so a busy stream costs nothing per frame.
 */
export class Heartbeat {
  private _timer: unknown;
  private _probeTimer: unknown;
  private _interval = 0;
  /** When the last frame arrived. */
  private _last = 0;
  /** When the last ping left. */
  private _lastPing = 0;
  /** Pings sent since the last frame arrived. */
  private _unanswered = 0;

  constructor(
    private readonly _clock: Clock,
    private readonly _ping: () => void,
    private readonly _dead: (reason: string) => void,
  ) {}

  /** Starts pinging every `interval` ms (0 disables the interval; probes still work). */
  start(interval: number): void {
    this.stop();
    this._interval = interval;
    this._last = this._lastPing = this._clock.now();
    if (interval > 0) this._at(this._lastPing + interval);
  }

  /** Stops every timer. */
  stop(): void {
    this._clock.clearTimeout(this._timer);
    this._clock.clearTimeout(this._probeTimer);
    this._timer = this._probeTimer = undefined;
    this._unanswered = 0;
  }

  /** Something arrived from the server: the connection is alive. */
  alive(): void {
    this._last = this._clock.now();
    this._unanswered = 0;
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
    this._send();
  }

  private _send(): void {
    this._lastPing = this._clock.now();
    this._unanswered++;
    this._ping();
  }

  private _at(when: number): void {
    this._timer = this._clock.setTimeout(() => this._tick(), Math.max(1, when - this._clock.now()));
  }

  private _tick(): void {
    this._timer = undefined;
    const p = this._interval;
    const now = this._clock.now();
    const silent = now - this._last;
    if (silent >= MAX_MISSED_PINGS * p) {
      this._dead('no pong');
      return;
    }
    // The regular ping, or the second one half an interval into a silence.
    if (now - this._lastPing >= p || (silent >= 1.5 * p && this._unanswered < MAX_MISSED_PINGS)) this._send();
    let next = Math.min(this._lastPing + p, this._last + MAX_MISSED_PINGS * p);
    const second = this._last + 1.5 * p;
    if (this._unanswered < MAX_MISSED_PINGS && second > now) next = Math.min(next, second);
    this._at(next);
  }
}
