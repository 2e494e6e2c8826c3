/** Slots of the direct-mapped part (a power of two): more than the calls a client usually keeps in flight. */
const SLOTS = 256;
const MASK = SLOTS - 1;

/**
 * The calls running on one connection, by request id. Clients number their calls in sequence, so an id's low bits
 * nearly always find a free slot of a small direct-mapped table: adding, finding and removing are an array access,
 * with none of the hashing and table churn a Map costs per call. Ids are the peer's to choose, so an id whose slot
 * is taken (a long call, or a peer picking colliding ids on purpose) goes to an overflow Map: never worse than a Map.
 * The table is allocated on the first call, so an idle connection costs nothing.
 */
export class ActiveCalls<T extends { readonly id: number }> {
  private slots: Array<T | undefined> | undefined;
  private overflow: Map<number, T> | undefined;
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(id: number): T | undefined {
    const entry = this.slots?.[id & MASK];
    if (entry !== undefined && entry.id === id) return entry;
    return this.overflow?.get(id);
  }

  has(id: number): boolean {
    return this.get(id) !== undefined;
  }

  /** Adds `entry` under its id (which must not be running already: check has() first). */
  add(entry: T): void {
    const slots = (this.slots ??= new Array<T | undefined>(SLOTS).fill(undefined));
    const slot = entry.id & MASK;
    if (slots[slot] === undefined) slots[slot] = entry;
    else (this.overflow ??= new Map()).set(entry.id, entry);
    this.count++;
  }

  delete(id: number): boolean {
    const slots = this.slots;
    const slot = id & MASK;
    if (slots !== undefined && slots[slot]?.id === id) {
      slots[slot] = undefined;
    } else if (this.overflow === undefined || !this.overflow.delete(id)) {
      return false;
    }
    this.count--;
    return true;
  }

  /** Every running call (a copy: safe to change the table while going through it). */
  values(): T[] {
    const all: T[] = [];
    if (this.slots !== undefined) for (const entry of this.slots) if (entry !== undefined) all.push(entry);
    if (this.overflow !== undefined) all.push(...this.overflow.values());
    return all;
  }

  clear(): void {
    this.slots = undefined;
    this.overflow = undefined;
    this.count = 0;
  }
}
