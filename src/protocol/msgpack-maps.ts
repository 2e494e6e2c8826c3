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

/** True if `value` contains a Map anywhere (iterative; no allocation for the common case of plain data). */
export function containsMap(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  const stack: unknown[] = [value];
  let visited = 0;
  while (stack.length > 0) {
    const node = stack.pop();
    if (node === null || typeof node !== 'object') continue;
    if (node instanceof Map) return true;
    if (++visited > WALK_LIMIT) return true;
    if (isLeaf(node)) continue;
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) stack.push(node[i]);
    } else {
      for (const key in node) stack.push((node as Record<string, unknown>)[key]);
    }
  }
  return false;
}

/** A copy of `value` with every Map replaced by its wire form (only called when containsMap said so). */
export function boxMaps(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || isLeaf(value)) return value;
  if (value instanceof Map) return new WireMap([...value].map(([k, v]) => [boxMaps(k), boxMaps(v)]));
  if (Array.isArray(value)) return value.map(boxMaps);
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) out[key] = boxMaps((value as Record<string, unknown>)[key]);
  return out;
}
