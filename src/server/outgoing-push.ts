import type { PayloadCodec } from '../protocol/codec.js';
import { encodeMessagePrefix } from '../protocol/message.js';
import { payloadBytes, payloadFlags } from '../protocol/payload.js';

/**
 * One PUSH on its way to one or many connections: the body prefix is built once, and the payload is encoded once
 * per codec (connections choose theirs in the handshake), however many connections a broadcast reaches.
 */
export class OutgoingPush {
  readonly prefix: Buffer;
  readonly flags: number;
  private readonly encoded = new Map<string, Buffer>();

  constructor(
    pattern: string,
    private readonly data: unknown,
  ) {
    this.prefix = encodeMessagePrefix(Buffer.from(pattern, 'utf8'), null);
    this.flags = payloadFlags(data);
  }

  /** The payload bytes for `codec`; throws ErpsCodecError if it cannot encode the data. */
  payloadFor(codec: PayloadCodec): Buffer {
    let bytes = this.encoded.get(codec.name);
    if (bytes === undefined) {
      bytes = payloadBytes(codec, this.data);
      this.encoded.set(codec.name, bytes);
    }
    return bytes;
  }
}
