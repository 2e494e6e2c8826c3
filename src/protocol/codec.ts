import { Packr } from 'msgpackr';
import { ErpsCodecError, describeError } from '../errors.js';
import { boxMaps, containsMap } from './msgpack-maps.js';

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
 * msgpack through msgpackr: objects as plain msgpack maps (decoded as objects), Maps as their own extension
 * (msgpack-maps.ts); `moreTypes` carries Sets, Errors, typed arrays; Buffers, Dates and BigInts survive
 * natively. Each message is self-contained, so a lost frame never desynchronises the codec. msgpackr never
 * assigns a `__proto__` key as a prototype, which keeps decoding safe.
 */
function createMsgpackCodec(): PayloadCodec {
  const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: true });
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

export const DEFAULT_MAX_DEPTH = 64;

export interface CodecOptions {
  /** Deepest nesting of arrays, objects, Maps and Sets accepted when decoding. Default 64. */
  maxDepth?: number;
}

/** True if `root` nests containers deeper than `maxDepth` (iterative: hostile input cannot blow the stack here). */
export function nestsDeeperThan(root: unknown, maxDepth: number): boolean {
  if (root === null || typeof root !== 'object') return false;
  const nodes: object[] = [root];
  const depths: number[] = [1];
  while (nodes.length > 0) {
    const node = nodes.pop()!;
    const depth = depths.pop()!;
    if (depth > maxDepth) return true;
    if (ArrayBuffer.isView(node) || node instanceof Date) continue;
    const children: Iterable<unknown> = Array.isArray(node)
      ? node
      : node instanceof Map
        ? [...node.keys(), ...node.values()]
        : node instanceof Set
          ? node
          : Object.values(node);
    for (const child of children) {
      if (child !== null && typeof child === 'object') {
        nodes.push(child);
        depths.push(depth + 1);
      }
    }
  }
  return false;
}

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
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
  const decode = codec.decode;
  return {
    ...codec,
    decode(bytes) {
      const value = decode(bytes);
      if (nestsDeeperThan(value, maxDepth)) throw new ErpsCodecError(`payload nests deeper than maxDepth (${maxDepth})`);
      return value;
    },
  };
}

export function codecNameFromId(id: number): CodecName | undefined {
  return CODEC_NAMES[id];
}
