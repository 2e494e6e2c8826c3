import { ErpsDiscoveryError, describeError } from '../../errors/index.js';
import { backoffDelay } from '../backoff.js';
import type { ErpsEndpointAddress } from '../erps-client-options.js';
import type { Resolve } from './resolve.js';

/** Failure-triggered resolutions are at least this far apart (or refreshMs, if shorter). */
const MIN_EARLY_REFRESH_MS = 1000;
/** First retry ceiling of a resolution that failed while no endpoint is known yet. */
const FIRST_RETRY_MS = 100;

export interface DiscoveryEvents {
  /** A resolution found these endpoints (never empty). */
  resolved(endpoints: ErpsEndpointAddress[]): void;
  /** A resolution failed or found nothing; the last good list stays. */
  failed(error: ErpsDiscoveryError): void;
}

/**
 * Asks the resolver every `refreshMs`, and soon after an endpoint fails. While no resolution has succeeded, failed
 * ones are retried with backoff (capped at refreshMs). Timers never keep the process alive on their own.
 */
export class Discovery {
  private timer: NodeJS.Timeout | undefined;
  private resolving = false;
  private running = false;
  private lastStartedAt = -Infinity;
  private failuresInARow = 0;
  private everResolved = false;

  constructor(
    private readonly resolve: Resolve,
    private readonly refreshMs: number,
    private readonly events: DiscoveryEvents,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.refresh();
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** An endpoint failed: the fleet may have changed. Resolves now unless one ran less than a second ago. */
  refreshSoon(): void {
    if (!this.running || performance.now() - this.lastStartedAt < Math.min(MIN_EARLY_REFRESH_MS, this.refreshMs)) return;
    void this.refresh();
  }

  private async refresh(): Promise<void> {
    if (this.resolving || !this.running) return;
    this.resolving = true;
    this.lastStartedAt = performance.now();
    clearTimeout(this.timer);
    let delayMs = this.refreshMs;
    try {
      const found = await this.resolve();
      if (found.length === 0) throw new ErpsDiscoveryError('discovery found no endpoint; keeping the last list');
      this.failuresInARow = 0;
      this.everResolved = true;
      if (this.running) this.events.resolved(found);
    } catch (err) {
      this.failuresInARow += 1;
      if (!this.everResolved) delayMs = Math.max(1, backoffDelay(this.failuresInARow, FIRST_RETRY_MS, this.refreshMs));
      const error = err instanceof ErpsDiscoveryError ? err : new ErpsDiscoveryError(`discovery failed: ${describeError(err)}`, err);
      if (this.running) this.events.failed(error);
    } finally {
      this.resolving = false;
      if (this.running) this.timer = setTimeout(() => void this.refresh(), delayMs).unref();
    }
  }
}
