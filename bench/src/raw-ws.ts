/**
 * A lean WebSocket client on a raw `net.Socket`: a manual HTTP upgrade, then a frame scanner that counts
 * text frames without copying or parsing them. Reads go through `onread` into one shared buffer, so a
 * read allocates nothing. Probe clients (and every client while it sets up) get each payload to parse.
 */
import { connect, type Socket } from 'node:net';

const SHARED = Buffer.allocUnsafe(256 * 1024);

/** Text frames received by every client of this process (the counting loop's only shared state). */
export const totals = { frames: 0 };
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

export interface RawWsOptions {
  port: number;
  path: string;
  /** Local address to connect from (127.0.0.x spreads ephemeral ports). */
  localAddress?: string;
}

/** One client. `onText` receives payloads while `parse` is true (setup, probes). */
export class RawWs {
  readonly socket: Socket;
  /** Text frames received while counting. */
  count = 0;
  /** Deliver payloads to `onText` (otherwise only count). */
  parse = true;
  onText: (payload: Buffer) => void = () => undefined;
  onOpen: () => void = () => undefined;
  onClose: (code: number) => void = () => undefined;
  closeCode = 0;
  closed = false;
  private open = false;
  private head = '';
  private partial: Buffer | null = null;
  private skip = 0;

  constructor(opts: RawWsOptions) {
    this.socket = connect({
      host: '127.0.0.1',
      port: opts.port,
      ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
      onread: { buffer: SHARED, callback: (n: number, buf: Uint8Array) => this.bytes(buf as Buffer, n) },
    });
    this.socket.setNoDelay(true);
    this.socket.on('connect', () => {
      this.socket.write(
        `GET ${opts.path} HTTP/1.1\r\nHost: 127.0.0.1:${opts.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    this.socket.on('error', () => undefined);
    this.socket.on('close', () => this.end(this.closeCode || 1006));
  }

  private end(code: number): void {
    if (this.closed) return;
    this.closed = true;
    this.closeCode = code;
    this.onClose(code);
  }

  /** Sends one masked text frame (zero mask key: RFC 6455 5.3 only asks for a mask, any key). */
  send(text: string | Buffer): void {
    const data = typeof text === 'string' ? Buffer.from(text) : text;
    const n = data.length;
    const hdr = n < 126 ? Buffer.from([0x81, 0x80 | n, 0, 0, 0, 0]) : Buffer.from([0x81, 0x80 | 126, n >> 8, n & 255, 0, 0, 0, 0]);
    this.socket.write(Buffer.concat([hdr, data]));
  }

  private control(opcode: number, payload: Buffer): void {
    const n = payload.length;
    this.socket.write(Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | n, 0, 0, 0, 0]), payload]));
  }

  destroy(): void {
    this.socket.destroy();
  }

  private bytes(shared: Buffer, n: number): void {
    let chunk = shared.subarray(0, n);
    if (!this.open) {
      // Handshake: accumulate the response head (latin1 keeps byte offsets).
      const text = this.head + chunk.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) {
        this.head = text;
        return;
      }
      if (!text.startsWith('HTTP/1.1 101')) {
        this.closeCode = Number(text.slice(9, 12)) || 1;
        this.socket.destroy();
        return;
      }
      this.open = true;
      const bodyStart = end + 4 - this.head.length;
      this.head = '';
      chunk = chunk.subarray(bodyStart);
      this.onOpen();
    }
    let off = 0;
    if (this.skip > 0) {
      const k = Math.min(this.skip, chunk.length);
      this.skip -= k;
      off = k;
    }
    if (this.partial) {
      chunk = Buffer.concat([this.partial, chunk.subarray(off)]);
      this.partial = null;
      off = 0;
    }
    const len = chunk.length;
    while (off < len) {
      const avail = len - off;
      if (avail < 2) {
        this.partial = Buffer.from(chunk.subarray(off));
        return;
      }
      const b0 = chunk[off] as number;
      let size = (chunk[off + 1] as number) & 127;
      let hdr = 2;
      if (size === 126) {
        if (avail < 4) {
          this.partial = Buffer.from(chunk.subarray(off));
          return;
        }
        size = chunk.readUInt16BE(off + 2);
        hdr = 4;
      } else if (size === 127) {
        if (avail < 10) {
          this.partial = Buffer.from(chunk.subarray(off));
          return;
        }
        size = chunk.readUInt32BE(off + 6);
        hdr = 10;
      }
      const opcode = b0 & 15;
      const need = hdr + size;
      // Counting: a text frame longer than 2 bytes (Socket.IO's ping is the 1-byte "2") is a delivered message.
      if (!this.parse && opcode === 1 && size > 2) {
        this.count++;
        totals.frames++;
        if (avail >= need) {
          off += need;
          continue;
        }
        this.skip = need - avail;
        return;
      }
      if (avail < need) {
        this.partial = Buffer.from(chunk.subarray(off));
        return;
      }
      const payload = chunk.subarray(off + hdr, off + need);
      off += need;
      if (opcode === 1) {
        if (size === 1 && payload[0] === 0x32) {
          this.send('3'); // engine.io ping -> pong
          continue;
        }
        this.count++;
        totals.frames++;
        this.onText(payload);
      } else if (opcode === 9) {
        this.control(0xa, Buffer.from(payload));
      } else if (opcode === 8) {
        this.closeCode = size >= 2 ? payload.readUInt16BE(0) : 1005;
        this.socket.destroy();
        this.end(this.closeCode);
        return;
      }
    }
  }
}
