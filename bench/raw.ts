/**
 * The floor: a raw Node mutual-TLS echo with length-prefixed frames (u32 big-endian length + body) and
 * writes coalesced per tick (cork/uncork). No Nest, no serialization: the body is opaque bytes whose first
 * byte is a kind: CALL (echoed back as is), CAST (counted), COUNT (answered with the cast count), STREAM
 * (u32 n: answered with n ITEM frames, each the 64 JSON bytes, then an END frame, all written at once), SUBSCRIBE
 * (the connection joins the broadcast subscribers), RUN (u32 durationMs, u32 subscribers: one broadcast round of
 * PUSH frames, each the 64 JSON bytes, to every subscriber; answered when it is over with doubles sent, waits).
 *
 * CALL_MSGPACK and CAST_MSGPACK are the same two with a payload codec: the body is the object packed with msgpackr
 * (erps's codec library, with erps's options); the server unpacks it, and packs it again for the echo. The system
 * `raw-msgpack` sends those: the floor plus the one cost it leaves out, encoding and decoding the value. No decode
 * budget: msgpackr as a transport that trusts its peer would call it, the fast way (each body copied into one reused
 * buffer, whose DataView msgpackr caches; a fresh view per body costs msgpackr a DataView each time, ~1.5× the unpack).
 */
import * as tls from 'node:tls';
import { Packr } from 'msgpackr';
import { BROADCAST_BUFFER_LIMIT, broadcastRound, Broadcaster, drainFull, smallObject } from './common.js';

export const RAW_CALL = 0;
export const RAW_CAST = 1;
export const RAW_COUNT = 2;
export const RAW_STREAM = 3;
export const RAW_ITEM = 4;
export const RAW_END = 5;
export const RAW_SUBSCRIBE = 6;
export const RAW_RUN = 7;
export const RAW_PUSH = 8;
export const RAW_CALL_MSGPACK = 9;
export const RAW_CAST_MSGPACK = 10;

/** msgpackr with the options erps's codec uses (src/protocol/codec.ts). */
export function rawMsgpack(): Packr {
  return new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: true, structuredClone: false });
}

const scratch = Buffer.allocUnsafeSlow(2048);

/** The value packed in the body of frame `f` (after its 5 bytes of length and kind). */
export function unpackBody(codec: Packr, f: Buffer): unknown {
  const length = f.length - 5;
  if (length > scratch.length) return codec.unpack(f.subarray(5));
  f.copy(scratch, 0, 5);
  return codec.unpack(scratch, length);
}

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

/** The 64 JSON bytes every raw stream value and push carries. */
const SMALL_BODY = Buffer.from(JSON.stringify(smallObject()));

/** The raw server's broadcaster: the same PUSH frame written to every subscribed socket, corked per socket per turn. */
function rawBroadcaster(subscribers: Set<tls.TLSSocket>): Broadcaster {
  const push = frame(RAW_PUSH, SMALL_BODY);
  return {
    subscribers: () => subscribers.size,
    turn: (n) => {
      for (const socket of subscribers) {
        socket.cork();
        for (let i = 0; i < n; i++) socket.write(push);
        socket.uncork();
      }
      return n * subscribers.size;
    },
    settle: () => drainFull(subscribers, (socket) => socket.writableLength > BROADCAST_BUFFER_LIMIT),
  };
}

export function startRawServer(options: tls.TlsOptions, port: number): Promise<RawServer> {
  let casts = 0;
  const item = frame(RAW_ITEM, SMALL_BODY);
  const end = frame(RAW_END, Buffer.alloc(0));
  const subscribers = new Set<tls.TLSSocket>();
  const broadcaster = rawBroadcaster(subscribers);
  const codec = rawMsgpack();
  const server = tls.createServer({ ...options, requestCert: true, rejectUnauthorized: true }, (socket) => {
    const reader = new FrameReader();
    socket.setNoDelay(true);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => subscribers.delete(socket));
    socket.on('data', (chunk: Buffer) => {
      socket.cork();
      reader.push(chunk, (f) => {
        const kind = f[4];
        if (kind === RAW_CALL) socket.write(f);
        else if (kind === RAW_CAST) casts++;
        else if (kind === RAW_CALL_MSGPACK) socket.write(frame(RAW_CALL_MSGPACK, codec.pack(unpackBody(codec, f))));
        else if (kind === RAW_CAST_MSGPACK) {
          unpackBody(codec, f);
          casts++;
        } else if (kind === RAW_COUNT) {
          const reply = Buffer.allocUnsafe(13);
          reply.writeUInt32BE(9, 0);
          reply[4] = RAW_COUNT;
          reply.writeDoubleBE(casts, 5);
          socket.write(reply);
        } else if (kind === RAW_STREAM) {
          // All n values at once, inside this cork: the floor (erps and Nest TCP buffer a synchronous Observable too).
          const n = f.readUInt32BE(5);
          for (let i = 0; i < n; i++) socket.write(item);
          socket.write(end);
        } else if (kind === RAW_SUBSCRIBE) subscribers.add(socket);
        else if (kind === RAW_RUN) {
          broadcastRound(broadcaster, f.readUInt32BE(5), f.readUInt32BE(9)).then(
            ({ sent, waits }) => {
              const reply = Buffer.allocUnsafe(21);
              reply.writeUInt32BE(17, 0);
              reply[4] = RAW_RUN;
              reply.writeDoubleBE(sent, 5);
              reply.writeDoubleBE(waits, 13);
              socket.write(reply);
            },
            () => socket.destroy(),
          );
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

interface RawWaiter {
  resolve(frame: Buffer): void;
  reject(err: Error): void;
  /** A STREAM request: the ITEM frames counted so far (resolved with END, as a frame of the count). */
  items?: number;
}

/**
 * Client: replies come back in order, so a FIFO of waiters is enough (a STREAM's waiter stays at the head until its
 * END frame). PUSH frames go to `onPush`. Writes are coalesced per tick.
 */
export class RawClient {
  private socket: tls.TLSSocket | undefined;
  private readonly reader = new FrameReader();
  private readonly waiters: RawWaiter[] = [];
  /** Called with each PUSH frame (broadcast). */
  onPush: ((frame: Buffer) => void) | undefined;
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

  /** Sends a STREAM frame; resolves with the number of ITEM frames that came before its END. */
  stream(f: Buffer): Promise<number> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve: () => resolve(waiter.items ?? 0), reject, items: 0 });
      const waiter = this.waiters[this.waiters.length - 1]!;
      this.write(f);
    });
  }

  /** Sends a frame without a reply (CAST, SUBSCRIBE). */
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
    const kind = f[4];
    if (kind === RAW_PUSH) {
      this.onPush?.(f);
      return;
    }
    const waiter = this.waiters[this.head];
    if (waiter === undefined) return;
    if (kind === RAW_ITEM && waiter.items !== undefined) {
      waiter.items++;
      return;
    }
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
