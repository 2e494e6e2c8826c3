import type { PayloadCodec } from './codec.js';
import { FrameFlags } from './frame.js';

/*
 * A Buffer travels as itself (flag RAW): no codec pass and no copies for binary payloads, whatever the codec.
 * Anything else goes through the codec. Two functions instead of one result object: this runs for every message.
 */

/** The frame flags a payload needs: FrameFlags.RAW when the bytes are the value itself. */
export function payloadFlags(value: unknown): number {
  return Buffer.isBuffer(value) ? FrameFlags.RAW : 0;
}

/** The bytes of a payload on the wire. Throws ErpsCodecError if the codec cannot encode it. */
export function payloadBytes(codec: PayloadCodec, value: unknown): Buffer {
  return Buffer.isBuffer(value) ? value : codec.encode(value);
}

/**
 * The value of a payload lying in `source` from `start` to `end`, given the flags of its frame. A RAW payload is
 * returned as it is (a view of the frame).
 */
export function decodePayload(codec: PayloadCodec, source: Buffer, start: number, end: number, flags: number): unknown {
  return (flags & FrameFlags.RAW) !== 0 ? source.subarray(start, end) : codec.decode(source, start, end);
}
