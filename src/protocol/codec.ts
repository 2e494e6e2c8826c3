import { Packr } from 'msgpackr';
import { ErpsCodecError, describeError } from '../errors.js';

export type CodecName = 'msgpack' | 'json';

/** Payload ⇄ bytes. The codec is chosen per connection in the handshake. */
export interface PayloadCodec {
  readonly name: CodecName;
  /** Wire id carried in HELLO. */
  readonly id: number;
  encode(value: unknown): Buffer;
  decode(bytes: Buffer): unknown;
}

const EMPTY = Buffer.alloc(0);

/**
 * msgpack through msgpackr. Records keep Maps distinct from plain objects; `moreTypes` carries Sets,
 * Errors, typed arrays; Buffers, Dates and BigInts survive natively. Each message is self-contained
 * (no structures shared across messages), so a lost frame never desynchronises the codec.
 * msgpackr never assigns a `__proto__` key as a prototype (it renames it), which keeps decoding safe.
 */
function createMsgpackCodec(): PayloadCodec {
  const packr = new Packr({ useRecords: true, moreTypes: true });
  return {
    name: 'msgpack',
    id: 0,
    encode(value) {
      try {
        return packr.pack(value);
      } catch (err) {
        throw new ErpsCodecError(`cannot encode payload with msgpack: ${describeError(err)}`, err);
      }
    },
    decode(bytes) {
      if (bytes.length === 0) return undefined;
      try {
        return packr.unpack(bytes);
      } catch (err) {
        throw new ErpsCodecError(`cannot decode msgpack payload: ${describeError(err)}`, err);
      }
    },
  };
}

/** Strips keys that could reach a prototype if the value is later merged into another object. */
function safeReviver(key: string, value: unknown): unknown {
  return key === '__proto__' ? undefined : value;
}

/** JSON for interoperability and debugging; `undefined` travels as an empty payload. */
function createJsonCodec(): PayloadCodec {
  return {
    name: 'json',
    id: 1,
    encode(value) {
      if (value === undefined) return EMPTY;
      try {
        return Buffer.from(JSON.stringify(value), 'utf8');
      } catch (err) {
        throw new ErpsCodecError(`cannot encode payload as JSON: ${describeError(err)}`, err);
      }
    },
    decode(bytes) {
      if (bytes.length === 0) return undefined;
      try {
        return JSON.parse(bytes.toString('utf8'), safeReviver);
      } catch (err) {
        throw new ErpsCodecError(`cannot decode JSON payload: ${describeError(err)}`, err);
      }
    },
  };
}

export const CODEC_NAMES: readonly CodecName[] = ['msgpack', 'json'];

/** A fresh codec instance (msgpackr keeps per-instance buffers: one per connection side is fine). */
export function createCodec(name: CodecName = 'msgpack'): PayloadCodec {
  switch (name) {
    case 'msgpack':
      return createMsgpackCodec();
    case 'json':
      return createJsonCodec();
    default:
      throw new ErpsCodecError(`unknown codec "${String(name)}" (expected one of: ${CODEC_NAMES.join(', ')})`);
  }
}

export function codecNameFromId(id: number): CodecName | undefined {
  return CODEC_NAMES[id];
}
