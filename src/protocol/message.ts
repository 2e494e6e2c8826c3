import { ErpsProtocolError } from '../errors.js';

/**
 * CALL / CAST / PUSH body:
 *   u16 pattern length | pattern (UTF-8) | u32 metadata length | metadata (codec-encoded, may be empty) | payload
 * The payload (codec-encoded data) runs to the end of the body.
 */
export const MAX_PATTERN_BYTES = 0xffff;

export interface MessageBody {
  pattern: string;
  meta: Buffer | null;
  payload: Buffer;
}

/** A pattern ready for the wire: its UTF-8 bytes, and the body prefix of a message that carries no metadata. */
export interface WirePattern {
  readonly bytes: Buffer;
  readonly barePrefix: Buffer;
}

export function wirePattern(pattern: string): WirePattern {
  const bytes = Buffer.from(pattern, 'utf8');
  return { bytes, barePrefix: encodeMessagePrefix(bytes, null) };
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

export function decodeMessageBody(body: Buffer): MessageBody {
  if (body.length < 6) throw new ErpsProtocolError('message body too short');
  const patternLength = body.readUInt16BE(0);
  const metaAt = 2 + patternLength;
  if (metaAt + 4 > body.length) throw new ErpsProtocolError('pattern length runs past the body');
  const metaLength = body.readUInt32BE(metaAt);
  const payloadAt = metaAt + 4 + metaLength;
  if (payloadAt > body.length) throw new ErpsProtocolError('metadata length runs past the body');
  return {
    pattern: body.toString('utf8', 2, metaAt),
    meta: metaLength === 0 ? null : body.subarray(metaAt + 4, payloadAt),
    payload: body.subarray(payloadAt),
  };
}
