import type { OutlierConfig } from '../config/client-config.js';
import type { Endpoint } from './endpoint.js';

/**
 * Ejects an endpoint whose calls failed with transport errors or timeouts `consecutiveFailures` times in a row, for
 * baseEjectionMs × 2^(ejections in a row − 1), at most maxEjectionMs; never more than maxEjectedPercent of the fleet
 * (rounded down, so a fleet of one is never ejected). An endpoint that stayed back for as long as its last ejection
 * lasted starts over at baseEjectionMs.
 */
export class OutlierDetector {
  constructor(private readonly config: OutlierConfig) {}

  /** An endpoint's call failed; `fleet` is every endpoint of the client. */
  failed(endpoint: Endpoint, fleet: readonly Endpoint[]): void {
    const config = this.config;
    if (endpoint.ejected || endpoint.consecutiveFailures < config.consecutiveFailures) return;
    let ejected = 0;
    for (const other of fleet) if (other.ejected) ejected += 1;
    if (ejected + 1 > Math.floor((fleet.length * config.maxEjectedPercent) / 100)) return;
    const now = performance.now();
    if (endpoint.ejections > 0 && now - endpoint.lastEjectionEndedAt > this.durationFor(endpoint.ejections)) endpoint.ejections = 0;
    endpoint.eject(this.durationFor(endpoint.ejections + 1));
  }

  private durationFor(ejections: number): number {
    return Math.min(this.config.maxEjectionMs, this.config.baseEjectionMs * 2 ** Math.min(ejections - 1, 30));
  }
}
