import { DECODE_DEFAULTS } from '../config/defaults.js';
import { ErpsCodecError } from '../errors/index.js';

/**
 * Decode budgets, checked on the bytes before the codec builds anything, so a hostile payload costs a linear scan
 * and never the heap of what it would have become (a 1-byte msgpack `0x80` is a whole JS object).
 *
 * - `maxDepth`: deepest nesting of arrays, maps and objects (a value at the top level is at depth 1).
 * - `maxElements`: values in one payload, every array item, map key and map value counted; a Map, Set, RegExp or
 *   Error (msgpack extensions that build objects of their own) counts as EXTENSION_OBJECT_WEIGHT values.
 */
export interface DecodeBudget {
  maxDepth: number;
  maxElements: number;
}

export const DEFAULT_MAX_DEPTH = DECODE_DEFAULTS.maxDepth;
export const DEFAULT_MAX_ELEMENTS = DECODE_DEFAULTS.maxElements;
export const EXTENSION_OBJECT_WEIGHT = 16;

/** msgpack extension types the codec accepts, by what follows their data. */
const OPAQUE_EXTENSIONS = new Set<number>([
  0x00, // undefined
  0x42, // BigInt
  0x74, // typed arrays
  0xff, // Date (msgpack timestamp, type -1)
]);
/** Extensions whose content is the one msgpack value after their (ignored) data: Set, Error, RegExp, our Map. */
const WRAPPER_EXTENSIONS = new Set<number>([0x73, 0x65, 0x78, 0x6d]);

/** Work stack of the msgpack scan: values still to read in each open container. Reused: the scan never re-enters. */
const pendingStack: number[] = [];

function refuse(why: string): never {
  throw new ErpsCodecError(`payload refused: ${why}`);
}

function truncated(): never {
  return refuse('malformed msgpack (truncated)');
}

/**
 * Walks one msgpack value in `bytes[start, end)` without building it. Throws ErpsCodecError if it nests deeper than
 * `maxDepth`, holds more than `maxElements` values, uses an extension the codec does not accept (structured-clone
 * references, records, string bundles, unknown types), or is not exactly one well-formed value.
 */
export function checkMsgpackBudget(bytes: Buffer, start: number, end: number, budget: DecodeBudget): void {
  const { maxDepth, maxElements } = budget;
  let pos = start;
  let depth = 0;
  let pending = 1;
  let elements = 0;
  for (;;) {
    if (pending === 0) {
      if (depth === 0) break;
      pending = pendingStack[--depth]!;
      continue;
    }
    pending--;
    if (++elements > maxElements) refuse(`more than maxElements (${maxElements}) values`);
    if (pos >= end) truncated();
    const token = bytes[pos++]!;
    let children = -1;
    if (token < 0x80 || token >= 0xe0) {
      // fixint: nothing more to read
    } else if (token < 0x90) {
      children = (token & 0x0f) * 2;
    } else if (token < 0xa0) {
      children = token & 0x0f;
    } else if (token < 0xc0) {
      pos += token & 0x1f;
    } else {
      switch (token) {
        case 0xc0:
        case 0xc2:
        case 0xc3:
          break;
        case 0xc4:
        case 0xd9:
          if (pos + 1 > end) truncated();
          pos += 1 + bytes[pos]!;
          break;
        case 0xc5:
        case 0xda:
          if (pos + 2 > end) truncated();
          pos += 2 + bytes.readUInt16BE(pos);
          break;
        case 0xc6:
        case 0xdb:
          if (pos + 4 > end) truncated();
          pos += 4 + bytes.readUInt32BE(pos);
          break;
        case 0xca:
        case 0xce:
        case 0xd2:
          pos += 4;
          break;
        case 0xcb:
        case 0xcf:
        case 0xd3:
          pos += 8;
          break;
        case 0xcc:
        case 0xd0:
          pos += 1;
          break;
        case 0xcd:
        case 0xd1:
          pos += 2;
          break;
        case 0xdc:
          if (pos + 2 > end) truncated();
          children = bytes.readUInt16BE(pos);
          pos += 2;
          break;
        case 0xdd:
          if (pos + 4 > end) truncated();
          children = bytes.readUInt32BE(pos);
          pos += 4;
          break;
        case 0xde:
          if (pos + 2 > end) truncated();
          children = 2 * bytes.readUInt16BE(pos);
          pos += 2;
          break;
        case 0xdf:
          if (pos + 4 > end) truncated();
          children = 2 * bytes.readUInt32BE(pos);
          pos += 4;
          break;
        default: {
          // Extensions: fixext 1..16 (0xd4..0xd8) and ext 8/16/32 (0xc7..0xc9). 0xc1 is never used.
          let size: number;
          if (token >= 0xd4 && token <= 0xd8) {
            size = 1 << (token - 0xd4);
          } else if (token === 0xc7) {
            if (pos + 1 > end) truncated();
            size = bytes[pos++]!;
          } else if (token === 0xc8) {
            if (pos + 2 > end) truncated();
            size = bytes.readUInt16BE(pos);
            pos += 2;
          } else if (token === 0xc9) {
            if (pos + 4 > end) truncated();
            size = bytes.readUInt32BE(pos);
            pos += 4;
          } else {
            return refuse(`invalid msgpack byte 0x${token.toString(16)}`);
          }
          if (pos + 1 > end) truncated();
          const type = bytes[pos]!;
          pos += 1 + size;
          if (WRAPPER_EXTENSIONS.has(type)) {
            // Its content is the next value, read at this level; the object it builds weighs more than one value.
            pending++;
            elements += EXTENSION_OBJECT_WEIGHT - 1;
          } else if (!OPAQUE_EXTENSIONS.has(type)) {
            refuse(`msgpack extension type 0x${type.toString(16).padStart(2, '0')} is not accepted`);
          }
        }
      }
    }
    if (pos > end) truncated();
    if (children >= 0) {
      if (depth + 1 > maxDepth) refuse(`nests deeper than maxDepth (${maxDepth})`);
      if (children > maxElements - elements) refuse(`more than maxElements (${maxElements}) values`);
      if (children > 0) {
        pendingStack[depth++] = pending;
        pending = children;
      }
    }
  }
  if (pos !== end) refuse('malformed msgpack (bytes after the value)');
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_ARRAY = 0x5b;
const OPEN_OBJECT = 0x7b;
const CLOSE_ARRAY = 0x5d;
const CLOSE_OBJECT = 0x7d;

function isJsonSpace(byte: number): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}

/**
 * Counts the values and the nesting of the JSON text in `bytes[start, end)` without parsing it (the parser still
 * judges whether it is valid JSON). Throws ErpsCodecError past `maxDepth` or `maxElements`.
 */
export function checkJsonBudget(bytes: Buffer, start: number, end: number, budget: DecodeBudget): void {
  const { maxDepth, maxElements } = budget;
  let depth = 0;
  let elements = 1;
  let justOpened = false;
  for (let i = start; i < end; i++) {
    const byte = bytes[i]!;
    if (justOpened && !isJsonSpace(byte)) {
      justOpened = false;
      // A container with something in it: its first value (or key) has no comma before it.
      if (byte !== CLOSE_ARRAY && byte !== CLOSE_OBJECT && ++elements > maxElements) refuse(`more than maxElements (${maxElements}) values`);
    }
    switch (byte) {
      case QUOTE:
        for (i++; i < end && bytes[i] !== QUOTE; i++) if (bytes[i] === BACKSLASH) i++;
        break;
      case OPEN_ARRAY:
      case OPEN_OBJECT:
        if (++depth > maxDepth) refuse(`nests deeper than maxDepth (${maxDepth})`);
        justOpened = true;
        break;
      case CLOSE_ARRAY:
      case CLOSE_OBJECT:
        depth--;
        break;
      case COMMA:
      case COLON:
        if (++elements > maxElements) refuse(`more than maxElements (${maxElements}) values`);
        break;
    }
  }
}
