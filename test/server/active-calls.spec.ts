import { ActiveCalls } from '../../src/server/active-calls';

const call = (id: number): { id: number } => ({ id });

describe('ActiveCalls (the running calls of one connection)', () => {
  it('adds, finds and removes calls numbered in sequence', () => {
    const active = new ActiveCalls<{ id: number }>();
    expect(active.size).toBe(0);
    const calls = Array.from({ length: 100 }, (_, i) => call(i + 1));
    for (const c of calls) active.add(c);
    expect(active.size).toBe(100);
    expect(active.get(42)).toBe(calls[41]);
    expect(active.has(101)).toBe(false);
    expect(active.delete(42)).toBe(true);
    expect(active.delete(42)).toBe(false);
    expect(active.get(42)).toBeUndefined();
    expect(active.size).toBe(99);
    expect(active.values()).toHaveLength(99);
  });

  it('keeps ids that share a slot apart, as a peer choosing colliding ids would send them', () => {
    const active = new ActiveCalls<{ id: number }>();
    const colliding = Array.from({ length: 1000 }, (_, i) => call(7 + i * 256));
    for (const c of colliding) active.add(c);
    expect(active.size).toBe(1000);
    for (const c of colliding) expect(active.get(c.id)).toBe(c);
    expect(active.get(7 + 1000 * 256)).toBeUndefined();
    // Removing the one in the slot leaves the others found; a new call can take the slot again.
    expect(active.delete(7)).toBe(true);
    expect(active.get(7 + 256)).toBe(colliding[1]);
    const again = call(7 + 5000 * 256);
    active.add(again);
    expect(active.get(again.id)).toBe(again);
    for (const c of colliding.slice(1)) expect(active.delete(c.id)).toBe(true);
    expect(active.values()).toEqual([again]);
    expect(active.size).toBe(1);
  });

  it('values() is a copy: calls may finish (and leave) while it is gone through', () => {
    const active = new ActiveCalls<{ id: number }>();
    for (const id of [1, 2, 258, 3]) active.add(call(id));
    for (const c of active.values()) active.delete(c.id);
    expect(active.size).toBe(0);
    expect(active.values()).toEqual([]);
    active.clear();
    expect(active.get(1)).toBeUndefined();
  });
});
