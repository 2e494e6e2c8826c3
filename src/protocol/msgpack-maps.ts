import { addExtension } from 'msgpackr';

/**
 * Plain msgpack maps decode as objects (fast), so JavaScript Maps need a mark of their own: they travel as
 * extension 0x6d ("m") holding their entries. The extension is registered for a class private to this module,
 * so other msgpackr users in the process are not affected.
 */
export const MAP_EXTENSION_TYPE = 0x6d;

class WireMap {
  constructor(readonly entries: Array<[unknown, unknown]>) {}
}

addExtension({
  Class: WireMap,
  type: MAP_EXTENSION_TYPE,
  write: (map: WireMap) => map.entries,
  read: (entries: unknown) => new Map(Array.isArray(entries) ? (entries as Array<[unknown, unknown]>) : []),
});

/** Past this many objects the walk gives up and boxes: a cyclic value then fails in the codec, as msgpackr would. */
const WALK_LIMIT = 100_000;

function isLeaf(value: object): boolean {
  return ArrayBuffer.isView(value) || value instanceof Date || value instanceof Set || value instanceof Error || value instanceof RegExp;
}

/**
 * The work stack of containsMap, reused so plain data is checked without allocating. Reading a property can run a
 * getter, and a getter could encode another value: a walk that starts inside another one gets a stack of its own.
 */
const sharedStack: object[] = [];
const EMPTY_SLOT: object = Object.freeze({});
let sharedStackInUse = false;

/** True if `value` contains a Map anywhere (iterative, and allocation-free for plain data). */
export function containsMap(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (sharedStackInUse) return walkForMap(value, []);
  sharedStackInUse = true;
  try {
    return walkForMap(value, sharedStack);
  } finally {
    sharedStackInUse = false;
  }
}

function walkForMap(root: object, stack: object[]): boolean {
  stack[0] = root;
  let top = 1;
  let visited = 0;
  try {
    while (top > 0) {
      const node = stack[--top]!;
      stack[top] = EMPTY_SLOT;
      if (++visited > WALK_LIMIT) return true;
      // Plain objects and arrays first: they are nearly everything a payload holds.
      if (Array.isArray(node)) {
        for (let i = 0; i < node.length; i++) {
          const child: unknown = node[i];
          if (typeof child === 'object' && child !== null) stack[top++] = child;
        }
      } else if (node.constructor === Object || !isLeaf(node)) {
        if (node instanceof Map) return true;
        for (const key in node) {
          const child: unknown = (node as Record<string, unknown>)[key];
          if (typeof child === 'object' && child !== null) stack[top++] = child;
        }
      }
    }
    return false;
  } finally {
    while (top > 0) stack[--top] = EMPTY_SLOT;
  }
}

/** A copy of `value` with every Map replaced by its wire form (only called when containsMap said so). */
export function boxMaps(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || isLeaf(value)) return value;
  if (value instanceof Map) return new WireMap([...value].map(([k, v]) => [boxMaps(k), boxMaps(v)]));
  if (Array.isArray(value)) return value.map(boxMaps);
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const boxed = boxMaps((value as Record<string, unknown>)[key]);
    // An own "__proto__" key stays a key: assigning it would set the copy's prototype instead.
    if (key === '__proto__') Object.defineProperty(out, key, { value: boxed, enumerable: true, writable: true, configurable: true });
    else out[key] = boxed;
  }
  return out;
}
