/**
 * The floor: a raw Node mutual-TLS echo with length-prefixed frames (u32 big-endian length + body) and
 * writes coalesced per tick (cork/uncork). No Nest, no serialization: the body is opaque bytes whose first
 * byte is a kind: CALL (echoed back as is), CAST (counted), COUNT (answered with the cast count).
 */
import * as tls from 'node:tls';

export const RAW_CALL = 0;
export const RAW_CAST = 1;
export const RAW_COUNT = 2;

/** Incremental decoder: keeps the received chunks and slices frames out without copying when a frame sits in one chunk. */
export class FrameReader {
  private chunks: Buffer[] = [];
  private total = 0;
  private need = -1;

  /** Feeds a chunk; calls `onFrame(frame)` with each complete frame, length prefix included. */
  push(chunk: Buffer, onFrame: (frame: Buffer) => void): void {
    this.chunks.push(chunk);
    this.total += chunk.length;
    // Each turn consumes at least 4 bytes or returns: bounded by the received data.
    for (;;) {
      if (this.need < 0) {
        if (this.total < 4) return;
        this.need = 4 + this.peekLength();
      }
      if (this.total < this.need) return;
      const frame = this.take(this.need);
      this.need = -1;
      onFrame(frame);
    }
  }

  private peekLength(): number {
    const first = this.chunks[0]!;
    if (first.length >= 4) return first.readUInt32BE(0);
    const head = Buffer.concat(this.chunks, 4);
    return head.readUInt32BE(0);
  }

  private take(n: number): Buffer {
    this.total -= n;
    const first = this.chunks[0]!;
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let offset = 0;
    while (offset < n) {
      const chunk = this.chunks[0]!;
      const want = n - offset;
      if (chunk.length <= want) {
        chunk.copy(out, offset);
        offset += chunk.length;
        this.chunks.shift();
      } else {
        chunk.copy(out, offset, 0, want);
        this.chunks[0] = chunk.subarray(want);
        offset += want;
      }
    }
    return out;
  }
}

export function frame(kind: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out.writeUInt32BE(1 + body.length, 0);
  out[4] = kind;
  body.copy(out, 5);
  return out;
}

export interface RawServer {
  server: tls.Server;
  casts(): number;
}

export function startRawServer(options: tls.TlsOptions, port: number): Promise<RawServer> {
  let casts = 0;
  const server = tls.createServer({ ...options, requestCert: true, rejectUnauthorized: true }, (socket) => {
    const reader = new FrameReader();
    socket.setNoDelay(true);
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      socket.cork();
      reader.push(chunk, (f) => {
        const kind = f[4];
        if (kind === RAW_CALL) socket.write(f);
        else if (kind === RAW_CAST) casts++;
        else if (kind === RAW_COUNT) {
          const reply = Buffer.allocUnsafe(13);
          reply.writeUInt32BE(9, 0);
          reply[4] = RAW_COUNT;
          reply.writeDoubleBE(casts, 5);
          socket.write(reply);
        }
      });
      socket.uncork();
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve({ server, casts: () => casts }));
  });
}

/** Client: replies come back in order, so a FIFO of waiters is enough. Writes are coalesced per tick. */
export class RawClient {
  private socket: tls.TLSSocket | undefined;
  private readonly reader = new FrameReader();
  private readonly waiters: Array<{ resolve(frame: Buffer): void; reject(err: Error): void }> = [];
  private head = 0;
  private outbox: Buffer[] = [];
  private scheduled = false;

  constructor(private readonly options: tls.ConnectionOptions) {}

  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect(this.options, () => resolve());
      socket.setNoDelay(true);
      socket.once('error', (err: Error) => {
        reject(err);
        this.failAll(err);
      });
      socket.on('close', () => this.failAll(new Error('raw connection closed')));
      socket.on('data', (chunk: Buffer) => this.reader.push(chunk, (f) => this.onFrame(f)));
      this.socket = socket;
    });
  }

  /** Sends a frame that expects a reply (CALL or COUNT). */
  request(f: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.write(f);
    });
  }

  /** Sends a frame without a reply (CAST). */
  write(f: Buffer): void {
    this.outbox.push(f);
    if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(() => this.flush());
    }
  }

  close(): void {
    this.socket?.end();
    this.socket?.destroy();
  }

  private flush(): void {
    this.scheduled = false;
    const socket = this.socket;
    const frames = this.outbox;
    this.outbox = [];
    if (socket === undefined) return;
    socket.cork();
    for (const f of frames) socket.write(f);
    socket.uncork();
  }

  private onFrame(f: Buffer): void {
    const waiter = this.waiters[this.head];
    if (waiter === undefined) return;
    this.waiters[this.head] = undefined as never;
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.waiters.length) {
      this.waiters.splice(0, this.head);
      this.head = 0;
    }
    waiter.resolve(f);
  }

  private failAll(err: Error): void {
    const waiters = this.waiters.splice(this.head);
    this.waiters.length = 0;
    this.head = 0;
    for (const w of waiters) w.reject(err);
  }
}
