import { ErpsProtocolError } from '../errors.js';
import { FrameType, HEADER_BYTES, writeHeader } from './frame.js';

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

/**
 * Builds header + message prefix in one buffer; the payload is written after it by the caller,
 * so a large payload is never copied.
 */
export function encodeMessageHead(type: FrameType, flags: number, id: number, pattern: Buffer, meta: Buffer | null, payloadLength: number): Buffer {
  if (pattern.length > MAX_PATTERN_BYTES) throw new ErpsProtocolError(`pattern longer than ${MAX_PATTERN_BYTES} bytes`);
  const metaLength = meta === null ? 0 : meta.length;
  const prefix = 2 + pattern.length + 4 + metaLength;
  const head = Buffer.allocUnsafe(HEADER_BYTES + prefix);
  writeHeader(head, 0, type, flags, id, prefix + payloadLength);
  let at = HEADER_BYTES;
  head.writeUInt16BE(pattern.length, at);
  at += 2;
  at += pattern.copy(head, at);
  head.writeUInt32BE(metaLength, at);
  at += 4;
  if (meta !== null) meta.copy(head, at);
  return head;
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
