/**
 * "What started must end within `limitMs`", checked with one lazy timer however often it starts: start() records
 * when and arms the timer only if none is armed; when it fires, `expired` is called if the condition still holds
 * (`holds()`) and `limitMs` has passed since the latest start, and otherwise the timer re-arms for what is left.
 */
export class LazyDeadline {
  private since = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly limitMs: number,
    private readonly holds: () => boolean,
    private readonly expired: (elapsedMs: number) => void,
  ) {}

  /** The condition (re)started now. */
  start(): void {
    this.since = Date.now();
    if (this.timer === undefined) this.arm(this.limitMs);
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(this.fire, ms);
    this.timer.unref();
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    if (!this.holds()) return;
    const elapsed = Date.now() - this.since;
    if (elapsed >= this.limitMs) this.expired(elapsed);
    else this.arm(this.limitMs - elapsed);
  };
}
