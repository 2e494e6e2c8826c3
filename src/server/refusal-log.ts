/**
 * One log line per refused connection, at most `perWindow` lines per `windowMs`: a flood of refusals cannot flood
 * the log. Lines over the limit are counted and the count is logged when the next window opens.
 */
export class RefusalLog {
  private windowStart = 0;
  private logged = 0;
  private suppressed = 0;

  constructor(
    private readonly write: (line: string) => void,
    private readonly perWindow = 20,
    private readonly windowMs = 10_000,
  ) {}

  refused(line: string): void {
    const now = Date.now();
    if (now - this.windowStart >= this.windowMs) {
      if (this.suppressed > 0) this.write(`${this.suppressed} more refused connections were not logged in the last ${Math.round(this.windowMs / 1000)} s`);
      this.windowStart = now;
      this.logged = 0;
      this.suppressed = 0;
    }
    if (this.logged < this.perWindow) {
      this.logged++;
      this.write(line);
    } else {
      this.suppressed++;
    }
  }
}
