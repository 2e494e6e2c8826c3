import { EMPTY, HEADER_BYTES, writeHeader } from '../protocol/frame.js';

/** Payloads larger than this are written as chunks of their own, never copied. */
const INLINE_PAYLOAD_MAX = 16 * 1024;

/**
 * Frames waiting for the next socket write. A frame is kept as its fields, not as a header buffer of its own:
 * take() lays every queued frame out in one buffer (headers, prefixes and small payloads copied in), with large
 * payloads left as chunks of their own between the parts of that buffer. One allocation per write, not per frame.
 */
export class FrameQueue {
  /** type, flags, id of each frame, three numbers a frame. */
  private readonly fields: number[] = [];
  /** prefix, payload of each frame, two Buffers a frame. */
  private readonly parts: Buffer[] = [];
  private count = 0;
  private queuedBytes = 0;
  private copiedBytes = 0;

  get frames(): number {
    return this.count;
  }

  /** Bytes on the wire of the queued frames. */
  get bytes(): number {
    return this.queuedBytes;
  }

  /** Queues a frame whose body is `prefix` followed by `payload` (neither is kept beyond take()). */
  push(type: number, flags: number, id: number, prefix: Buffer, payload: Buffer): void {
    const at = this.count++;
    this.fields[3 * at] = type;
    this.fields[3 * at + 1] = flags;
    this.fields[3 * at + 2] = id;
    this.parts[2 * at] = prefix;
    this.parts[2 * at + 1] = payload;
    const frameBytes = HEADER_BYTES + prefix.length + payload.length;
    this.queuedBytes += frameBytes;
    this.copiedBytes += payload.length > INLINE_PAYLOAD_MAX ? frameBytes - payload.length : frameBytes;
  }

  /** Empties the queue into the chunks to write, in order: usually one. */
  take(): Buffer[] {
    const joined = Buffer.allocUnsafe(this.copiedBytes);
    const chunks: Buffer[] = [];
    let at = 0;
    let chunkStart = 0;
    for (let i = 0; i < this.count; i++) {
      const prefix = this.parts[2 * i]!;
      const payload = this.parts[2 * i + 1]!;
      // Drop the references now: a queue that goes quiet must not keep the last payloads alive.
      this.parts[2 * i] = EMPTY;
      this.parts[2 * i + 1] = EMPTY;
      writeHeader(joined, at, this.fields[3 * i]!, this.fields[3 * i + 1]!, this.fields[3 * i + 2]!, prefix.length + payload.length);
      at += HEADER_BYTES;
      joined.set(prefix, at);
      at += prefix.length;
      if (payload.length > INLINE_PAYLOAD_MAX) {
        chunks.push(joined.subarray(chunkStart, at), payload);
        chunkStart = at;
      } else {
        joined.set(payload, at);
        at += payload.length;
      }
    }
    if (at > chunkStart) chunks.push(chunkStart === 0 ? joined : joined.subarray(chunkStart, at));
    this.count = 0;
    this.queuedBytes = 0;
    this.copiedBytes = 0;
    return chunks;
  }

  /** The ids of the queued frames of one type. */
  idsOf(type: number): number[] {
    const ids: number[] = [];
    for (let i = 0; i < this.count; i++) if (this.fields[3 * i] === type) ids.push(this.fields[3 * i + 2]!);
    return ids;
  }

  /** Drops every queued frame (the connection is gone). */
  clear(): void {
    this.parts.fill(EMPTY, 0, 2 * this.count);
    this.count = 0;
    this.queuedBytes = 0;
    this.copiedBytes = 0;
  }
}
