import type { ErpsBalancing } from '../erps-client-options.js';

/** What a balancer needs of a link: how many calls wait on it. */
export interface Pickable {
  readonly inFlight: number;
}

/** Chooses the link for a new message among the ready ones (always at least two; one needs no choice). */
export interface Balancer {
  pick<T extends Pickable>(ready: readonly T[]): T;
}

/** The first ready link, in the order the endpoints were given: the others are spares. */
export const pickFirst: Balancer = {
  pick: (ready) => ready[0]!,
};

/** Each ready link in turn. */
export function roundRobin(): Balancer {
  let next = 0;
  return {
    pick(ready) {
      if (next >= ready.length) next = 0;
      return ready[next++]!;
    },
  };
}

/**
 * Power of two choices: two links at random, the one with fewer calls in flight. O(1), and a slow endpoint (whose
 * calls pile up) is chosen less, without every client herding onto the same least-loaded link.
 */
export function leastInFlight(random: () => number = Math.random): Balancer {
  return {
    pick(ready) {
      const n = ready.length;
      const a = Math.floor(random() * n);
      let b = Math.floor(random() * (n - 1));
      if (b >= a) b += 1;
      return ready[b]!.inFlight < ready[a]!.inFlight ? ready[b]! : ready[a]!;
    },
  };
}

export function createBalancer(balancing: ErpsBalancing): Balancer {
  switch (balancing) {
    case 'pick-first':
      return pickFirst;
    case 'round-robin':
      return roundRobin();
    case 'least-in-flight':
      return leastInFlight();
  }
}
