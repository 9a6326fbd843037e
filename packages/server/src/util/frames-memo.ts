/**
 * Remembers what `build` made of the last list of frames, and returns it again for a list that holds the
 * very same Buffers (compared by identity, so a hit costs a few pointer comparisons). The hub flushes the
 * subscribers of a channel one after another, so consecutive connections usually hold the same queued
 * Buffers: what is derived from them (a batch client's `\n`-joined line, the transport's wire bytes) is
 * then built once per fan-out instead of once per connection. A list that differs replaces the memo.
 */
export class FramesMemo {
  private last: readonly Buffer[] = [];
  private value: Buffer = Buffer.alloc(0);

  constructor(private readonly build: (frames: readonly Buffer[]) => Buffer) {}

  get(frames: readonly Buffer[]): Buffer {
    const last = this.last;
    if (frames.length === last.length) {
      let i = 0;
      while (i < frames.length && frames[i] === last[i]) i++;
      if (i === frames.length) return this.value;
    }
    this.last = frames;
    this.value = this.build(frames);
    return this.value;
  }
}
