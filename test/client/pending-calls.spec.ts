import { PendingCalls } from '../../src/client/pending-calls';

describe('PendingCalls: the table of calls awaiting replies', () => {
  it('hands out ids in sequence from 1, finds and removes entries by id', () => {
    const table = new PendingCalls<string>();
    expect([table.add('a'), table.add('b'), table.add('c')]).toEqual([1, 2, 3]);
    expect(table.size).toBe(3);
    expect(table.get(2)).toBe('b');
    expect(table.delete(2)).toBe(true);
    expect(table.delete(2)).toBe(false);
    expect(table.get(2)).toBeUndefined();
    expect(table.get(0)).toBeUndefined();
    expect(table.get(4)).toBeUndefined();
    expect(table.size).toBe(2);
    expect(table.add('d')).toBe(4);
  });

  it('never hands out an id that is still pending, across growth and many wrap-arounds of the table', () => {
    const table = new PendingCalls<number>();
    const live = new Map<number, number>();
    // A few calls stay pending for a long time while thousands of others come and go.
    for (let i = 0; i < 5; i++) live.set(table.add(-i), -i);
    let value = 0;
    let reused = 0;
    let mismatched = 0;
    for (let round = 0; round < 200; round++) {
      const burst = 1 + ((round * 37) % 300);
      for (let i = 0; i < burst; i++) {
        const id = table.add(++value);
        if (live.has(id)) reused++;
        live.set(id, value);
      }
      // Finish most of them, oldest first, but not all.
      for (const [id, entry] of [...live].slice(5, 5 + burst - (round % 7))) {
        if (table.get(id) !== entry || !table.delete(id)) mismatched++;
        live.delete(id);
      }
      if (table.size !== live.size) mismatched++;
    }
    expect({ reused, mismatched }).toEqual({ reused: 0, mismatched: 0 });
    expect(live.size).toBeGreaterThan(500);
    for (const [id, entry] of live) expect(table.get(id)).toBe(entry);
  });

  it('wraps around at 2^32 and skips 0', () => {
    const table = new PendingCalls<string>();
    (table as unknown as { nextId: number }).nextId = 0xffffffff;
    expect(table.add('last')).toBe(0xffffffff);
    expect(table.add('wrapped')).toBe(1);
    expect(table.get(0xffffffff)).toBe('last');
    expect(table.get(1)).toBe('wrapped');
    expect(table.drain()).toEqual(['last', 'wrapped']);
  });

  it('drain() returns every entry, oldest first, and empties the table', () => {
    const table = new PendingCalls<number>();
    const ids: number[] = [];
    for (let i = 0; i < 300; i++) ids.push(table.add(i));
    for (const id of ids.filter((_, i) => i % 3 === 0)) table.delete(id);
    expect(table.drain()).toEqual(Array.from({ length: 300 }, (_, i) => i).filter((i) => i % 3 !== 0));
    expect(table.size).toBe(0);
    expect(table.get(ids[1]!)).toBeUndefined();
    expect(table.add(1000)).toBe(301);
  });

  it('a large table starts small again once empty', () => {
    const table = new PendingCalls<number>();
    const ids = Array.from({ length: 5000 }, (_, i) => table.add(i));
    for (const id of ids) table.delete(id);
    expect((table as unknown as { entries: unknown[] }).entries.length).toBe(16);
    expect(table.add(1)).toBe(5001);
  });
});
