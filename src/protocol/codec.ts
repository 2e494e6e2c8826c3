import { Packr, Unpackr } from 'msgpackr';
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

/**
 * msgpack through msgpackr: objects as plain msgpack maps (decoded as objects), Maps as their own extension
 * (msgpack-maps.ts); `moreTypes` carries Sets, Errors, typed arrays; Buffers, Dates and BigInts survive
 * natively. Each message is self-contained, so a lost frame never desynchronises the codec. msgpackr never
 * assigns a `__proto__` key as a prototype, which keeps decoding safe; createCodec scans every payload against the
 * decode budget (decode-budget.ts) before msgpackr sees it.
 */
// structuredClone off: the id/pointer extensions would let a few bytes build cycles and shared-reference bombs.
const MSGPACK_OPTIONS = { useRecords: false, mapsAsObjects: true, moreTypes: true, structuredClone: false } as const;

/**
 * Payloads up to this size are decoded from a copy at the start of one shared scratch buffer: msgpackr caches its
 * DataView on the buffer it reads (a fresh view per payload costs a DataView and a new property every time) and
 * takes its small-message fast paths by the end offset, which a payload at offset 0 of its own buffer gets.
 * Decoding is synchronous and never re-enters, so one buffer serves every connection; `copyBuffers` makes the
 * binary values it returns copies, never views of the scratch.
 */
const SCRATCH_BYTES = 2048;
let scratch: Buffer | undefined;
const scratchUnpackr = new Unpackr({ ...MSGPACK_OPTIONS, copyBuffers: true });

function createMsgpackCodec(): PayloadCodec {
  const packr = new Packr(MSGPACK_OPTIONS);
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
        const length = end - start;
        if (length <= SCRATCH_BYTES) {
          const into = (scratch ??= Buffer.allocUnsafeSlow(SCRATCH_BYTES));
          bytes.copy(into, 0, start, end);
          return scratchUnpackr.unpack(into, length);
        }
        // A view of just the payload, not unpack(bytes, { start, end }): msgpackr picks its fast paths for small
        // messages (JS strings, its key cache) by the end offset, which inside a large read chunk is never small.
        return packr.unpack(start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end));
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
