import { CallDeadlines, Expiring } from '../../src/client/call-deadlines';

interface Entry extends Expiring {
  name: string;
}

function entry(name: string, timeoutMs: number): Entry {
  return { name, timeoutMs, expiresAt: 0, prevExpiring: null, nextExpiring: null };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('CallDeadlines (one timer for every pending call)', () => {
  let expired: string[];
  let deadlines: CallDeadlines<Entry>;

  beforeEach(() => {
    expired = [];
    deadlines = new CallDeadlines<Entry>((e) => expired.push(e.name));
  });

  afterEach(() => deadlines.clear());

  it('expires entries in deadline order, and never one that was disarmed', async () => {
    const [a, b, c] = [entry('a', 20), entry('b', 20), entry('c', 20)];
    deadlines.arm(a);
    deadlines.arm(b);
    deadlines.arm(c);
    deadlines.disarm(b);
    await sleep(60);
    expect(expired).toEqual(['a', 'c']);
    expect([a, b, c].map((e) => e.expiresAt)).toEqual([0, 0, 0]);
  });

  it('a shorter timeout armed after a longer one expires first', async () => {
    deadlines.arm(entry('long', 250));
    deadlines.arm(entry('short', 10));
    await sleep(100);
    expect(expired).toEqual(['short']);
    await sleep(250);
    expect(expired).toEqual(['short', 'long']);
  });

  it('re-arming (the next value of a stream) restarts the timeout', async () => {
    const streaming = entry('stream', 250);
    deadlines.arm(streaming);
    await sleep(100);
    deadlines.arm(streaming); // now due 350 ms after the start instead of 250
    await sleep(200);
    expect(expired).toEqual([]);
    await sleep(150);
    expect(expired).toEqual(['stream']);
  });

  it('clear() stops everything, and entries can be armed again afterwards', async () => {
    const a = entry('a', 10);
    deadlines.arm(a);
    deadlines.arm(entry('b', 10));
    deadlines.clear();
    expect(a.expiresAt).toBe(0);
    deadlines.disarm(a); // a no-op on a cleared entry, not a crash
    await sleep(40);
    expect(expired).toEqual([]);
    deadlines.arm(a);
    await sleep(40);
    expect(expired).toEqual(['a']);
  });

  it('an expiry callback may arm and disarm other entries', async () => {
    const later = entry('later', 10);
    const victim = entry('victim', 60);
    deadlines = new CallDeadlines<Entry>((e) => {
      expired.push(e.name);
      if (e.name === 'first') {
        deadlines.arm(later);
        deadlines.disarm(victim);
      }
    });
    deadlines.arm(victim);
    deadlines.arm(entry('first', 10));
    await sleep(150);
    expect(expired).toEqual(['first', 'later']);
  });

  it('many distinct timeouts, settled before they expire, leave nothing behind to expire', async () => {
    const entries = Array.from({ length: 500 }, (_, i) => entry(`e${i}`, 20 + i / 10));
    for (const e of entries) deadlines.arm(e);
    for (const e of entries) deadlines.disarm(e);
    const survivor = entry('survivor', 15);
    deadlines.arm(survivor);
    await sleep(60);
    expect(expired).toEqual(['survivor']);
  });
});
