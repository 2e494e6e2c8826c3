import type { PartialFrameBudget } from '../protocol/frame.js';

/** A count of bytes that many connections draw from and give back to (e.g. bytes held in incomplete frames). */
export class ByteBudget implements PartialFrameBudget {
  private used = 0;

  constructor(readonly limit: number) {}

  get usedBytes(): number {
    return this.used;
  }

  reserve(bytes: number): boolean {
    if (this.used + bytes > this.limit) return false;
    this.used += bytes;
    return true;
  }

  release(bytes: number): void {
    this.used -= bytes;
  }
}
