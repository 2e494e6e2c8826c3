import { ErpsProtocolError } from '../errors/index.js';

/**
 * CALL / CAST / PUSH body:
 *   u16 pattern length | pattern (UTF-8) | u32 metadata length | metadata (codec-encoded, may be empty) | payload
 * The payload (codec-encoded data) runs to the end of the body.
 */
export const MAX_PATTERN_BYTES = 0xffff;

export interface MessageBody {
  pattern: string;
  meta: Buffer | null;
  /** Where the payload starts; it runs to the end of the body. */
  payloadStart: number;
}

/** A pattern ready for the wire: its UTF-8 bytes, and the body prefix of a message that carries no metadata. */
export interface WirePattern {
  readonly text: string;
  readonly bytes: Buffer;
  readonly barePrefix: Buffer;
}

export function wirePattern(pattern: string): WirePattern {
  const bytes = Buffer.from(pattern, 'utf8');
  return { text: pattern, bytes, barePrefix: encodeMessagePrefix(bytes, null) };
}

/** The body prefix (pattern and metadata); the payload follows it on the wire and is never copied into it. */
export function encodeMessagePrefix(pattern: Buffer, meta: Buffer | null): Buffer {
  if (pattern.length > MAX_PATTERN_BYTES) throw new ErpsProtocolError(`pattern longer than ${MAX_PATTERN_BYTES} bytes`);
  const metaLength = meta === null ? 0 : meta.length;
  const prefix = Buffer.allocUnsafe(2 + pattern.length + 4 + metaLength);
  prefix.writeUInt16BE(pattern.length, 0);
  let at = 2 + pattern.copy(prefix, 2);
  prefix.writeUInt32BE(metaLength, at);
  at += 4;
  if (meta !== null) meta.copy(prefix, at);
  return prefix;
}

/**
 * Reads a CALL/CAST/PUSH body lying in `source` from `start` to `end`. The payload is not copied or viewed: its
 * range is `payloadStart` to `end`. With a PatternCache, a pattern seen recently is not decoded from UTF-8 again.
 */
export function decodeMessageBody(source: Buffer, start = 0, end = source.length, patterns?: PatternCache): MessageBody {
  if (end - start < 6) throw new ErpsProtocolError('message body too short');
  const patternAt = start + 2;
  const metaAt = patternAt + source.readUInt16BE(start);
  if (metaAt + 4 > end) throw new ErpsProtocolError('pattern length runs past the body');
  const metaLength = source.readUInt32BE(metaAt);
  const payloadStart = metaAt + 4 + metaLength;
  if (payloadStart > end) throw new ErpsProtocolError('metadata length runs past the body');
  return {
    pattern: patterns === undefined ? source.toString('utf8', patternAt, metaAt) : patterns.decode(source, patternAt, metaAt),
    meta: metaLength === 0 ? null : source.subarray(metaAt + 4, payloadStart),
    payloadStart,
  };
}

/** Patterns longer than this are decoded every time (comparing them would cost about as much). */
const CACHED_PATTERN_MAX_BYTES = 64;
const CACHED_PATTERNS = 8;

/**
 * The last few patterns one connection used, as bytes and as strings: a connection mostly repeats a handful of
 * patterns, and comparing a few bytes is cheaper than decoding UTF-8 into a new string for every message.
 */
export class PatternCache {
  private readonly bytes: Buffer[] = [];
  private readonly strings: string[] = [];
  private nextSlot = 0;

  decode(source: Buffer, start: number, end: number): string {
    const length = end - start;
    for (let slot = 0; slot < this.bytes.length; slot++) {
      const known = this.bytes[slot]!;
      if (known.length !== length) continue;
      let at = 0;
      while (at < length && known[at] === source[start + at]) at++;
      if (at === length) return this.strings[slot]!;
    }
    const pattern = source.toString('utf8', start, end);
    if (length <= CACHED_PATTERN_MAX_BYTES) {
      // A copy: a view would keep the whole read chunk alive.
      this.bytes[this.nextSlot] = Buffer.from(source.subarray(start, end));
      this.strings[this.nextSlot] = pattern;
      this.nextSlot = (this.nextSlot + 1) % CACHED_PATTERNS;
    }
    return pattern;
  }
}
