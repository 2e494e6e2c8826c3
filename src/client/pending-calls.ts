/**
 * The client's table of calls awaiting replies on one connection, keyed by request id.
 * Ids are u32, wrap around, skip 0 (reserved for connection-level frames) and are never reused
 * while still pending.
 */
export class PendingCalls<T> {
  private readonly entries = new Map<number, T>();
  private nextId = 1;

  get size(): number {
    return this.entries.size;
  }

  add(entry: T): number {
    let id = this.nextId;
    while (id === 0 || this.entries.has(id)) id = (id + 1) >>> 0;
    this.nextId = (id + 1) >>> 0;
    this.entries.set(id, entry);
    return id;
  }

  get(id: number): T | undefined {
    return this.entries.get(id);
  }

  delete(id: number): boolean {
    return this.entries.delete(id);
  }

  /** Removes and returns every entry (used when the connection dies). */
  drain(): T[] {
    const all = [...this.entries.values()];
    this.entries.clear();
    return all;
  }
}
