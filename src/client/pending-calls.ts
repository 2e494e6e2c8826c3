/** Slots a new table starts with (a power of two). */
const INITIAL_CAPACITY = 16;
/** A table larger than this goes back to INITIAL_CAPACITY once empty (after a burst of calls). */
const KEPT_CAPACITY = 1024;

/**
 * The client's table of calls awaiting replies on one connection, keyed by request id.
 * Ids are u32, wrap around, skip 0 (reserved for connection-level frames) and are never reused
 * while still pending.
 *
 * An open table indexed by the id's low bits instead of a Map: ids are handed out in sequence and calls mostly
 * finish in about the order they were sent, so the next id's slot is nearly always free, and an id whose slot is
 * still taken (a long call) is skipped. Adding, finding and removing are an array access each, with no hashing and
 * no allocation; the table doubles when half full (an id keeps a slot of its own: ids that differ in their low bits
 * still differ in more of them), and a large one starts small again once empty.
 */
export class PendingCalls<T> {
  private entries: Array<T | undefined> = emptySlots(INITIAL_CAPACITY);
  private ids = new Uint32Array(INITIAL_CAPACITY);
  private mask = INITIAL_CAPACITY - 1;
  private count = 0;
  private nextId = 1;

  get size(): number {
    return this.count;
  }

  add(entry: T): number {
    if (2 * (this.count + 1) > this.entries.length) this.resize(2 * this.entries.length);
    let id = this.nextId;
    while (id === 0 || this.entries[id & this.mask] !== undefined) id = (id + 1) >>> 0;
    this.nextId = (id + 1) >>> 0;
    const slot = id & this.mask;
    this.entries[slot] = entry;
    this.ids[slot] = id;
    this.count++;
    return id;
  }

  get(id: number): T | undefined {
    const slot = id & this.mask;
    return this.ids[slot] === id ? this.entries[slot] : undefined;
  }

  delete(id: number): boolean {
    const slot = id & this.mask;
    if (this.ids[slot] !== id || this.entries[slot] === undefined) return false;
    this.entries[slot] = undefined;
    if (--this.count === 0 && this.entries.length > KEPT_CAPACITY) this.resize(INITIAL_CAPACITY);
    return true;
  }

  /** Removes and returns every entry, oldest first (used when the connection dies). */
  drain(): T[] {
    const taken: Array<{ age: number; entry: T }> = [];
    for (let slot = 0; slot < this.entries.length; slot++) {
      const entry = this.entries[slot];
      if (entry !== undefined) taken.push({ age: (this.nextId - this.ids[slot]!) >>> 0, entry });
    }
    this.entries = emptySlots(INITIAL_CAPACITY);
    this.ids = new Uint32Array(INITIAL_CAPACITY);
    this.mask = INITIAL_CAPACITY - 1;
    this.count = 0;
    return taken.sort((a, b) => b.age - a.age).map((taken) => taken.entry);
  }

  /** Moves every entry to a table of `capacity` slots (a power of two, more than twice the entries). */
  private resize(capacity: number): void {
    const entries = emptySlots<T>(capacity);
    const ids = new Uint32Array(capacity);
    const mask = capacity - 1;
    for (let slot = 0; slot < this.entries.length; slot++) {
      const entry = this.entries[slot];
      if (entry === undefined) continue;
      const id = this.ids[slot]!;
      entries[id & mask] = entry;
      ids[id & mask] = id;
    }
    this.entries = entries;
    this.ids = ids;
    this.mask = mask;
  }
}

function emptySlots<T>(capacity: number): Array<T | undefined> {
  return new Array<T | undefined>(capacity).fill(undefined);
}
