import { Packr } from 'msgpackr';
import { ErpsCodecError, describeError } from '../errors/index.js';
import { boxMaps, containsMap } from './msgpack-maps.js';
import { EMPTY } from './frame.js';
import { checkJsonBudget, checkMsgpackBudget, DecodeBudget, DEFAULT_MAX_DEPTH, DEFAULT_MAX_ELEMENTS } from './decode-budget.js';

export type CodecName = 'msgpack' | 'json';

/** Payload ⇄ bytes. The codec is chosen per connection in the handshake. */
export interface PayloadCodec {
  readonly name: CodecName;
  /** Wire id carried in HELLO. */
  readonly id: number;
  encode(value: unknown): Buffer;
  /** Decodes `bytes` from `start` (default 0) to `end` (default its length); an empty range is `undefined`. */
  decode(bytes: Buffer, start?: number, end?: number): unknown;
}

/** Payloads up to this many bytes are decoded from a copy (msgpackr's small-message paths stop at 140 bytes). */
const SMALL_PAYLOAD_BYTES = 128;

/**
 * msgpack through msgpackr: objects as plain msgpack maps (decoded as objects), Maps as their own extension
 * (msgpack-maps.ts); `moreTypes` carries Sets, Errors, typed arrays; Buffers, Dates and BigInts survive
 * natively. Each message is self-contained, so a lost frame never desynchronises the codec. msgpackr never
 * assigns a `__proto__` key as a prototype, which keeps decoding safe; createCodec scans every payload against the
 * decode budget (decode-budget.ts) before msgpackr sees it.
 */
function createMsgpackCodec(): PayloadCodec {
  // structuredClone off: the id/pointer extensions would let a few bytes build cycles and shared-reference bombs.
  const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: true, structuredClone: false });
  // Small payloads are decoded from a copy in a buffer of the codec's own, which msgpackr has already met: no view
  // and no DataView of msgpackr's to create per payload. Nothing decoded may point into that buffer (it is reused),
  // so this instance copies binary values out (copyBuffers); they are at most SMALL_PAYLOAD_BYTES.
  const smallPackr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: true, structuredClone: false, copyBuffers: true });
  const scratch = Buffer.allocUnsafeSlow(SMALL_PAYLOAD_BYTES);
  let scratchInUse = false;
  return {
    name: 'msgpack',
    id: 0,
    encode(value) {
      try {
        return packr.pack(containsMap(value) ? boxMaps(value) : value);
      } catch (err) {
        throw new ErpsCodecError(`cannot encode payload with msgpack: ${describeError(err)}`, err);
      }
    },
    decode(bytes, start = 0, end = bytes.length): unknown {
      if (end <= start) return undefined;
      try {
        if (start === 0 && end === bytes.length) return packr.unpack(bytes);
        const length = end - start;
        // Not unpack(bytes, { start, end }): msgpackr picks its fast paths for small messages (JS strings, its key
        // cache) by the end offset, which inside a large read chunk is never small. A copy at the start of the scratch
        // buffer (short: a loop is cheaper than any call), else a view of just the payload.
        if (length > SMALL_PAYLOAD_BYTES || scratchInUse) return packr.unpack(bytes.subarray(start, end));
        for (let i = 0; i < length; i++) scratch[i] = bytes[start + i]!;
        scratchInUse = true;
        try {
          return smallPackr.unpack(scratch, length);
        } finally {
          scratchInUse = false;
        }
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
    decode(bytes, start = 0, end = bytes.length): unknown {
      if (end <= start) return undefined;
      try {
        return JSON.parse(bytes.toString('utf8', start, end), safeReviver);
      } catch (err) {
        throw new ErpsCodecError(`cannot decode JSON payload: ${describeError(err)}`, err);
      }
    },
  };
}

export const CODEC_NAMES: readonly CodecName[] = ['msgpack', 'json'];

export interface CodecOptions extends Partial<DecodeBudget> {}

/** A fresh codec instance (msgpackr keeps per-instance buffers: one per connection side is fine). */
export function createCodec(name: CodecName = 'msgpack', options: CodecOptions = {}): PayloadCodec {
  let codec: PayloadCodec;
  switch (name) {
    case 'msgpack':
      codec = createMsgpackCodec();
      break;
    case 'json':
      codec = createJsonCodec();
      break;
    default:
      throw new ErpsCodecError(`unknown codec "${String(name)}" (expected one of: ${CODEC_NAMES.join(', ')})`);
  }
  const budget: DecodeBudget = { maxDepth: options.maxDepth ?? DEFAULT_MAX_DEPTH, maxElements: options.maxElements ?? DEFAULT_MAX_ELEMENTS };
  // eslint-disable-next-line @typescript-eslint/unbound-method -- the codecs above never use `this`
  const decode = codec.decode;
  if (name === 'msgpack') {
    return {
      ...codec,
      decode(bytes, start = 0, end = bytes.length) {
        if (end <= start) return undefined;
        checkMsgpackBudget(bytes, start, end, budget);
        return decode(bytes, start, end);
      },
    };
  }
  // Every JSON value costs at least one byte and every level of nesting more: a text no longer than both budgets
  // cannot break either, so short payloads skip the scan.
  const scanAbove = Math.min(budget.maxDepth, budget.maxElements);
  return {
    ...codec,
    decode(bytes, start = 0, end = bytes.length) {
      if (end - start > scanAbove) checkJsonBudget(bytes, start, end, budget);
      return decode(bytes, start, end);
    },
  };
}

export function codecNameFromId(id: number): CodecName | undefined {
  return CODEC_NAMES[id];
}
