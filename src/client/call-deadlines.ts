import { performance } from 'node:perf_hooks';

/** A pending call as the deadline queue sees it: the queue links entries through these fields. */
export interface Expiring {
  expiresAt: number;
  timeoutMs: number;
  prevExpiring: Expiring | null;
  nextExpiring: Expiring | null;
}

/** Emptied lists are kept for reuse while there are at most this many (calls usually share a few timeouts). */
const KEPT_LISTS = 8;

interface ExpiryList {
  head: Expiring | null;
  tail: Expiring | null;
}

/**
 * Call timeouts without a timer per call. Calls with the same timeout expire in the order they were sent, so each
 * timeout length keeps one list in deadline order, and one timer wakes up for the earliest deadline. Adding and
 * removing are O(1) and allocate nothing; the clock is monotonic, so a wall-clock jump expires nothing early.
 * Like a timer per call, the timer keeps the process alive while it runs (a call over the in-process transport
 * still times out); it stops when it fires with nothing left to wait for, or at clear().
 */
export class CallDeadlines<T extends Expiring> {
  private readonly lists = new Map<number, ExpiryList>();
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;

  constructor(private readonly onExpire: (entry: T) => void) {}

  /** Starts (or, for the next value of a stream, restarts) the entry's timeout of `entry.timeoutMs`. */
  arm(entry: T): void {
    if (entry.expiresAt !== 0) this.unlink(entry);
    const expiresAt = performance.now() + entry.timeoutMs;
    entry.expiresAt = expiresAt;
    let list = this.lists.get(entry.timeoutMs);
    if (list === undefined) {
      list = { head: null, tail: null };
      this.lists.set(entry.timeoutMs, list);
    }
    entry.prevExpiring = list.tail;
    entry.nextExpiring = null;
    if (list.tail === null) list.head = entry;
    else list.tail.nextExpiring = entry;
    list.tail = entry;
    if (expiresAt < this.timerAt) this.schedule(expiresAt);
  }

  /** The entry settled: its timeout no longer runs. The timer is left alone; it re-arms when it fires. */
  disarm(entry: T): void {
    if (entry.expiresAt !== 0) this.unlink(entry);
  }

  /** Forgets every entry and stops the timer (the connection is gone). */
  clear(): void {
    for (const list of this.lists.values()) {
      for (let entry = list.head; entry !== null;) {
        const next = entry.nextExpiring;
        entry.prevExpiring = null;
        entry.nextExpiring = null;
        entry.expiresAt = 0;
        entry = next;
      }
    }
    this.lists.clear();
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  private unlink(entry: Expiring): void {
    const list = this.lists.get(entry.timeoutMs)!;
    if (entry.prevExpiring === null) list.head = entry.nextExpiring;
    else entry.prevExpiring.nextExpiring = entry.nextExpiring;
    if (entry.nextExpiring === null) list.tail = entry.prevExpiring;
    else entry.nextExpiring.prevExpiring = entry.prevExpiring;
    if (list.head === null && this.lists.size > KEPT_LISTS) this.lists.delete(entry.timeoutMs);
    entry.prevExpiring = null;
    entry.nextExpiring = null;
    entry.expiresAt = 0;
  }

  private schedule(at: number): void {
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(this.fire, Math.max(1, Math.ceil(at - performance.now())));
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = performance.now();
    const expired: T[] = [];
    let earliest = Infinity;
    for (const [timeoutMs, list] of this.lists) {
      while (list.head !== null && list.head.expiresAt <= now) {
        const entry = list.head as T;
        this.unlink(entry);
        expired.push(entry);
      }
      if (list.head === null) this.lists.delete(timeoutMs);
      else earliest = Math.min(earliest, list.head.expiresAt);
    }
    if (earliest !== Infinity) this.schedule(earliest);
    // Last: an expiry callback may arm or disarm other entries.
    for (const entry of expired) this.onExpire(entry);
  };
}
