import { CONNECTION_DEFAULTS } from '../config/defaults.js';
import { ErpsFrameTooLargeError, ErpsOverloadedError, ErpsProtocolError } from '../errors/index.js';

/**
 * Frame header, 10 bytes, big-endian:
 *   u32 body length | u8 type | u8 flags | u32 request id
 * The body follows. See docs/PROTOCOL.md.
 */
export const HEADER_BYTES = 10;
/** Largest frame accepted before the handshake is done: a HELLO is at most 329 bytes, WELCOME and REJECT are small. */
export const HANDSHAKE_MAX_FRAME_BYTES = 1024;
/**
 * A body split across reads starts with a buffer this large (or what arrived of it in that read, if more; at most its
 * length) and grows fourfold as bytes arrive; a size within 1/PARTIAL_BODY_SLACK of the body's length becomes that
 * length, so a body of 1 MiB plus its prefix grows 256 KiB → whole (one extra copy of 256 KiB), not 256 KiB → 1 MiB →
 * whole (another of 1 MiB). A peer never holds more than 4.5× what it sent (or the start size).
 */
const PARTIAL_BODY_START_BYTES = 256 * 1024;
const PARTIAL_BODY_GROWTH = 4;
const PARTIAL_BODY_SLACK = 8;

/** The buffer size for a split body of `bodyLength` bytes that wants `wanted`: at most its length, all of it when close. */
function partialBodySize(wanted: number, bodyLength: number): number {
  const size = Math.min(bodyLength, wanted);
  return bodyLength - size <= size / PARTIAL_BODY_SLACK ? bodyLength : size;
}

export const FrameType = {
  HELLO: 0x01,
  WELCOME: 0x02,
  REJECT: 0x03,
  CALL: 0x10,
  CAST: 0x11,
  REPLY: 0x12,
  ERROR: 0x13,
  CANCEL: 0x14,
  PUSH: 0x15,
  PING: 0x20,
  PONG: 0x21,
  GOAWAY: 0x22,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

const KNOWN_TYPES = new Set<number>(Object.values(FrameType));

export const FrameFlags = {
  /** REPLY: more values of this stream follow. */
  MORE: 0x01,
  /** REPLY: the stream completed; this frame carries no value. */
  NO_VALUE: 0x02,
  /** CALL, CAST, PUSH, REPLY: the payload is a Buffer's bytes as they are, not codec-encoded. */
  RAW: 0x04,
  /** Body is compressed (negotiated in the handshake). */
  COMPRESSED: 0x80,
} as const;

/**
 * One decoded frame: its header fields, and where its body lies in the bytes it arrived in. Hot paths read the
 * body in place (`source` from `start` to `end`); `body` makes a Buffer view of it on demand.
 */
export class Frame {
  constructor(
    readonly type: FrameType,
    readonly flags: number,
    readonly id: number,
    readonly source: Buffer,
    readonly start: number,
    readonly end: number,
  ) {}

  /** A frame whose body is all of `body`. */
  static of(type: FrameType, flags: number, id: number, body: Buffer): Frame {
    return new Frame(type, flags, id, body, 0, body.length);
  }

  get body(): Buffer {
    return this.start === 0 && this.end === this.source.length ? this.source : this.source.subarray(this.start, this.end);
  }
}

/** The empty body: one shared Buffer of length 0. */
export const EMPTY = Buffer.alloc(0);

export function writeHeader(target: Buffer, offset: number, type: number, flags: number, id: number, bodyLength: number): void {
  target.writeUInt32BE(bodyLength, offset);
  target[offset + 4] = type;
  target[offset + 5] = flags;
  target.writeUInt32BE(id >>> 0, offset + 6);
}

/** Encodes one whole frame into a single Buffer. */
export function encodeFrame(type: FrameType, flags: number, id: number, body: Buffer = EMPTY): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + body.length);
  writeHeader(out, 0, type, flags, id, body.length);
  body.copy(out, HEADER_BYTES);
  return out;
}

/**
 * Where the bytes held for incomplete frames are accounted: `reserve` answers false when the budget (shared by many
 * decoders) cannot give `bytes` more; what was reserved is handed back with `release`.
 */
export interface PartialFrameBudget {
  reserve(bytes: number): boolean;
  release(bytes: number): void;
}

/**
 * Incremental frame decoder: a state machine fed with Buffers of any size and split.
 * It only parses: frames go to `onFrame`, errors are thrown as `ErpsProtocolError`.
 * Bodies that lie inside one chunk stay where they are (the frame points into the chunk); only bodies split
 * across chunks are copied, into a buffer that grows as their bytes arrive (never allocated whole from the length
 * a header announces), each growth reserved from the budget first.
 */
export class FrameDecoder {
  private readonly header = Buffer.alloc(HEADER_BYTES);
  private headerFill = 0;
  private body: Buffer | null = null;
  private bodyLength = 0;
  private bodyFill = 0;
  private type = 0;
  private flags = 0;
  private id = 0;
  private stopped = false;
  private completed = 0;

  constructor(
    private readonly onFrame: (frame: Frame) => void,
    /** Largest body accepted; raise it with setMaxFrameBytes() once the handshake is done. */
    private maxFrameBytes: number = CONNECTION_DEFAULTS.maxFrameBytes,
    private readonly budget?: PartialFrameBudget,
  ) {}

  setMaxFrameBytes(maxFrameBytes: number): void {
    this.maxFrameBytes = maxFrameBytes;
  }

  /** Stops emitting frames, e.g. once the connection that owns the decoder is closing. */
  stop(): void {
    this.stopped = true;
    this.dropBody();
  }

  /** Bytes held for an incomplete frame (for tests and memory accounting). */
  get bufferedBytes(): number {
    return this.headerFill + (this.body === null ? 0 : this.body.length);
  }

  /** Whether a frame has started and not yet completed. */
  get inFrame(): boolean {
    return this.headerFill > 0 || this.body !== null;
  }

  /** Frames completed so far: with inFrame, tells whether the same frame is still incomplete. */
  get framesCompleted(): number {
    return this.completed;
  }

  push(chunk: Buffer): void {
    let offset = 0;
    const length = chunk.length;
    while (offset < length && !this.stopped) {
      if (this.body !== null) {
        offset = this.fillBody(chunk, offset);
        continue;
      }
      let bodyLength: number;
      if (this.headerFill === 0 && length - offset >= HEADER_BYTES) {
        bodyLength = this.readHeader(chunk, offset);
        offset += HEADER_BYTES;
      } else {
        const take = Math.min(HEADER_BYTES - this.headerFill, length - offset);
        chunk.copy(this.header, this.headerFill, offset, offset + take);
        this.headerFill += take;
        offset += take;
        if (this.headerFill < HEADER_BYTES) return;
        this.headerFill = 0;
        bodyLength = this.readHeader(this.header, 0);
      }
      if (bodyLength === 0) {
        this.emit(EMPTY, 0, 0);
      } else if (length - offset >= bodyLength) {
        offset += bodyLength;
        this.emit(chunk, offset - bodyLength, offset);
      } else {
        this.bodyLength = bodyLength;
        this.bodyFill = 0;
        this.body = this.reserveBody(partialBodySize(Math.max(PARTIAL_BODY_START_BYTES, length - offset), bodyLength), 0);
      }
    }
  }

  /** Copies what `chunk` holds of the split body from `offset`; emits the frame once whole. Returns the new offset. */
  private fillBody(chunk: Buffer, offset: number): number {
    let body = this.body!;
    const take = Math.min(this.bodyLength - this.bodyFill, chunk.length - offset);
    if (this.bodyFill + take > body.length) {
      body = this.body = this.reserveBody(partialBodySize(Math.max(PARTIAL_BODY_GROWTH * body.length, this.bodyFill + take), this.bodyLength), body.length);
    }
    chunk.copy(body, this.bodyFill, offset, offset + take);
    this.bodyFill += take;
    if (this.bodyFill === this.bodyLength) {
      this.dropBody();
      this.emit(body, 0, this.bodyLength);
    }
    return offset + take;
  }

  /** A body buffer of `capacity` bytes holding what was filled so far; `held` of them were reserved already. */
  private reserveBody(capacity: number, held: number): Buffer {
    if (this.budget !== undefined && !this.budget.reserve(capacity - held)) {
      this.stop();
      throw new ErpsOverloadedError(`no room to hold an incomplete frame of ${this.bodyLength} bytes: the budget for partial frames is spent`);
    }
    const grown = Buffer.allocUnsafe(capacity);
    if (this.body !== null) this.body.copy(grown, 0, 0, this.bodyFill);
    return grown;
  }

  private dropBody(): void {
    if (this.body === null) return;
    this.budget?.release(this.body.length);
    this.body = null;
    this.bodyFill = 0;
  }

  private readHeader(source: Buffer, at: number): number {
    const bodyLength = source.readUInt32BE(at);
    const type = source[at + 4]!;
    if (!KNOWN_TYPES.has(type)) {
      this.stop();
      throw new ErpsProtocolError(`unknown frame type 0x${type.toString(16).padStart(2, '0')}`);
    }
    if (bodyLength > this.maxFrameBytes) {
      this.stop();
      throw new ErpsFrameTooLargeError(bodyLength, this.maxFrameBytes);
    }
    this.type = type;
    this.flags = source[at + 5]!;
    this.id = source.readUInt32BE(at + 6);
    return bodyLength;
  }

  private emit(source: Buffer, start: number, end: number): void {
    this.completed++;
    this.onFrame(new Frame(this.type as FrameType, this.flags, this.id, source, start, end));
  }
}
