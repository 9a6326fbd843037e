import { FramesMemo } from '../../util/frames-memo.js';

/** Bytes of the RFC 6455 5.2 header of an unmasked frame with a payload of `n` bytes. */
function headerSize(n: number): number {
  return n < 126 ? 2 : n < 65536 ? 4 : 10;
}

/** Writes the header of a final, unmasked text frame of `n` bytes at `off`; returns the offset after it. */
function writeHeader(out: Buffer, off: number, n: number): number {
  out[off] = 0x81; // FIN + opcode 1 (text)
  if (n < 126) {
    out[off + 1] = n;
    return off + 2;
  }
  if (n < 65536) {
    out[off + 1] = 126;
    out.writeUInt16BE(n, off + 2);
    return off + 4;
  }
  out[off + 1] = 127;
  out.writeUInt32BE(Math.floor(n / 2 ** 32), off + 2);
  out.writeUInt32BE(n >>> 0, off + 6);
  return off + 10;
}

/** The wire bytes of `frames` as consecutive text frames (header + payload each), in one buffer. */
export function encodeFrames(frames: readonly Buffer[]): Buffer {
  let size = 0;
  for (const f of frames) size += headerSize(f.length) + f.length;
  const out = Buffer.allocUnsafe(size);
  let off = 0;
  for (const f of frames) {
    off = writeHeader(out, off, f.length);
    off += f.copy(out, off);
  }
  return out;
}

/** Wire bytes built once per distinct list of frames, not once per socket (see FramesMemo). */
export const wire = new FramesMemo(encodeFrames);
