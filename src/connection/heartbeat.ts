/**
 * The heartbeat of one connection: a PING every `keepaliveMs`, and the peer declared dead when it has answered none
 * for `keepaliveMs × maxMissedPings`. Liveness is the peer answering our PINGs, not bytes arriving: a peer that keeps
 * sending but never reads never sees our PINGs (they wait behind what it does not read), so it is dropped too.
 * One timer, unref'd, woken for the next PING or the deadline, whichever comes first.
 */
export class Heartbeat {
  /** When the peer last answered a PING (or the heartbeat started). */
  private lastPongAt = Date.now();
  private nextPingAt: number;
  private timer: NodeJS.Timeout | undefined;
  private readonly deadAfterMs: number;

  constructor(
    private readonly keepaliveMs: number,
    maxMissedPings: number,
    private readonly ping: () => void,
    private readonly dead: (silentForMs: number) => void,
  ) {
    this.deadAfterMs = keepaliveMs * maxMissedPings;
    this.nextPingAt = Date.now() + keepaliveMs;
    this.schedule();
  }

  pong(): void {
    this.lastPongAt = Date.now();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    const wakeAt = Math.min(this.nextPingAt, this.lastPongAt + this.deadAfterMs);
    this.timer = setTimeout(this.beat, Math.max(1, wakeAt - Date.now()));
    this.timer.unref();
  }

  private readonly beat = (): void => {
    const now = Date.now();
    const silentFor = now - this.lastPongAt;
    if (silentFor >= this.deadAfterMs) {
      this.timer = undefined;
      this.dead(silentFor);
      return;
    }
    if (now >= this.nextPingAt) {
      this.ping();
      this.nextPingAt = now + this.keepaliveMs;
    }
    this.schedule();
  };
}
