import type { PayloadCodec } from './codec.js';
import { FrameFlags } from './frame.js';

export interface EncodedPayload {
  bytes: Buffer;
  /** FrameFlags.RAW when `bytes` is the value itself. */
  flags: number;
}

/**
 * A Buffer travels as itself (flag RAW): no codec pass and no copies for binary payloads, whatever the codec.
 * Anything else goes through the codec.
 */
export function encodePayload(codec: PayloadCodec, value: unknown): EncodedPayload {
  return Buffer.isBuffer(value) ? { bytes: value, flags: FrameFlags.RAW } : { bytes: codec.encode(value), flags: 0 };
}

/** The value of a payload, given the flags of its frame. A RAW payload is returned as it is (a view of the frame). */
export function decodePayload(codec: PayloadCodec, bytes: Buffer, flags: number): unknown {
  return (flags & FrameFlags.RAW) !== 0 ? bytes : codec.decode(bytes);
}
