import type { ErpsBalancing } from '../erps-client-options.js';

/** What a balancer needs of a link: how many calls wait on it, and how long its replies take. */
export interface Pickable {
  readonly inFlight: number;
  /** A moving average of its reply latency (ms). */
  readonly latencyMs: number;
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
 * Power of two choices: two links at random, the one whose calls in flight (plus the new one) would take less time
 * at its recent reply latency, Finagle's and Linkerd's "peak EWMA". O(1); a slow endpoint is chosen less both because
 * its calls pile up and because each takes longer, and clients do not herd onto one least-loaded link.
 */
export function leastInFlight(random: () => number = Math.random): Balancer {
  return {
    pick(ready) {
      const n = ready.length;
      const a = ready[Math.floor(random() * n)]!;
      let j = Math.floor(random() * (n - 1));
      if (ready[j] === a) j = n - 1;
      const b = ready[j]!;
      return (b.inFlight + 1) * b.latencyMs < (a.inFlight + 1) * a.latencyMs ? b : a;
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
