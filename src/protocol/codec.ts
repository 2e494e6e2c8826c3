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
  /** Decodes `bytes` from `start` (default 0) to `end` (default its length); an empty range is `undefined`. */
  decode(bytes: Buffer, start?: number, end?: number): unknown;
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
    decode(bytes, start = 0, end = bytes.length) {
      if (end <= start) return undefined;
      try {
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
    decode(bytes, start = 0, end = bytes.length) {
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

export const DEFAULT_MAX_DEPTH = 64;

export interface CodecOptions {
  /** Deepest nesting of arrays, objects, Maps and Sets accepted when decoding. Default 64. */
  maxDepth?: number;
}

/** The work stacks of nestsDeeperThan, reused so a decoded value is checked without allocating. */
const sharedNodes: Array<object | null> = [];
const sharedDepths: number[] = [];
let sharedStacksInUse = false;

/** True if `root` nests containers deeper than `maxDepth` (iterative: hostile input cannot blow the stack here). */
export function nestsDeeperThan(root: unknown, maxDepth: number): boolean {
  if (root === null || typeof root !== 'object') return false;
  if (sharedStacksInUse) return walkForDepth(root, maxDepth, [], []);
  sharedStacksInUse = true;
  try {
    return walkForDepth(root, maxDepth, sharedNodes, sharedDepths);
  } finally {
    sharedStacksInUse = false;
  }
}

function walkForDepth(root: object, maxDepth: number, nodes: Array<object | null>, depths: number[]): boolean {
  nodes[0] = root;
  depths[0] = 1;
  let top = 1;
  try {
    while (top > 0) {
      const node = nodes[--top]!;
      const depth = depths[top]!;
      nodes[top] = null;
      if (depth > maxDepth) return true;
      if (Array.isArray(node)) {
        for (let i = 0; i < node.length; i++) top = pushChild(nodes, depths, top, node[i], depth + 1);
      } else if (node instanceof Map) {
        for (const [key, value] of node) top = pushChild(nodes, depths, pushChild(nodes, depths, top, key, depth + 1), value, depth + 1);
      } else if (node instanceof Set) {
        for (const value of node) top = pushChild(nodes, depths, top, value, depth + 1);
      } else if (!ArrayBuffer.isView(node) && !(node instanceof Date)) {
        for (const key in node) top = pushChild(nodes, depths, top, (node as Record<string, unknown>)[key], depth + 1);
      }
    }
    return false;
  } finally {
    while (top > 0) nodes[--top] = null;
  }
}

/** Pushes `child` if it is a container; returns the new top of the stack. */
function pushChild(nodes: Array<object | null>, depths: number[], top: number, child: unknown, depth: number): number {
  if (child === null || typeof child !== 'object') return top;
  nodes[top] = child;
  depths[top] = depth;
  return top + 1;
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
    decode(bytes, start = 0, end = bytes.length) {
      const value = decode(bytes, start, end);
      // Every level of nesting costs at least one byte in msgpack and in JSON: a payload of at most maxDepth
      // bytes cannot nest deeper than maxDepth, so the walk is only needed for longer ones.
      if (end - start > maxDepth && nestsDeeperThan(value, maxDepth)) throw new ErpsCodecError(`payload nests deeper than maxDepth (${maxDepth})`);
      return value;
    },
  };
}

export function codecNameFromId(id: number): CodecName | undefined {
  return CODEC_NAMES[id];
}
