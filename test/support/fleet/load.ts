import { performance } from 'node:perf_hooks';
import { firstValueFrom } from 'rxjs';
import { ErpsCallOptions, ErpsClient, ErpsRecord } from 'nestjs-erps';

/** How one call of a load ended. */
export interface CallOutcome {
  /** The `x-call` header it carried (the daemons' journals list it). */
  token: string;
  ok: boolean;
  /** The daemon id in the reply (whoami and slow answer with their id). */
  answeredBy?: string;
  error?: unknown;
  /** loadClock() when the call was sent. */
  startedAt: number;
  settledAt: number;
}

/**
 * The clock of startedAt/settledAt: monotonic, below a millisecond. A test marks an event with it once it has seen
 * the event, and counts the calls started at or after the mark; with Date.now() a call started just before the event
 * in the same millisecond carried the mark's value and was counted as after it.
 */
export const loadClock = (): number => performance.now();

export interface LoadOptions {
  /** Calls kept in flight. Default 20. */
  inflight?: number;
  /** 'whoami' (default) or 'slow' (with `data` ms). */
  pattern?: 'whoami' | 'slow';
  data?: unknown;
  /** Per-call options (e.g. `{ idempotent: true }`, typed loosely for options the client does not have yet). */
  callOptions?: Record<string, unknown>;
  /** Token prefix. Default 'c'. */
  prefix?: string;
  /** Pause after a failed call before the next one (no hot loop while everything fails). Default 5 ms. */
  pauseAfterErrorMs?: number;
}

export interface Load {
  /** Every settled call so far, in order of settling. */
  readonly outcomes: readonly CallOutcome[];
  /** Calls started (settled or not). */
  readonly started: number;
  /** Successful calls per daemon id. */
  okBy(): Record<string, number>;
  /** Successful calls that started at or after `t` (a loadClock() value). */
  okSince(t: number): number;
  failures(): CallOutcome[];
  /** Stops starting calls; resolves with every outcome once all started calls have settled. */
  stop(): Promise<CallOutcome[]>;
}

/**
 * Keeps `inflight` calls running through `client` until stop(): each call carries a unique `x-call` token, and
 * every one that was started is accounted for (ok with the daemon that answered, or the error).
 */
export function startLoad(client: ErpsClient, options: LoadOptions = {}): Load {
  const inflight = options.inflight ?? 20;
  const pattern = options.pattern ?? 'whoami';
  const prefix = options.prefix ?? 'c';
  const pause = options.pauseAfterErrorMs ?? 5;
  const outcomes: CallOutcome[] = [];
  const loose: unknown = options.callOptions ?? {};
  const callOptions = loose as ErpsCallOptions;
  let running = true;
  let started = 0;
  const worker = async (): Promise<void> => {
    while (running) {
      const token = `${prefix}${++started}`;
      const startedAt = loadClock();
      const record = new ErpsRecord(options.data ?? null, { 'x-call': token }, callOptions);
      try {
        const reply = await firstValueFrom(client.send<{ id?: string }>(pattern, record));
        outcomes.push({ token, ok: true, answeredBy: reply?.id, startedAt, settledAt: loadClock() });
      } catch (error) {
        outcomes.push({ token, ok: false, error, startedAt, settledAt: loadClock() });
        if (pause > 0) await new Promise((resolve) => setTimeout(resolve, pause));
      }
    }
  };
  const workers = Promise.all(Array.from({ length: inflight }, worker));
  return {
    outcomes,
    get started() {
      return started;
    },
    okBy: () => {
      const counts: Record<string, number> = {};
      for (const o of outcomes) if (o.ok && o.answeredBy !== undefined) counts[o.answeredBy] = (counts[o.answeredBy] ?? 0) + 1;
      return counts;
    },
    okSince: (t) => outcomes.filter((o) => o.ok && o.startedAt >= t).length,
    failures: () => outcomes.filter((o) => !o.ok),
    stop: async () => {
      running = false;
      await workers;
      return outcomes;
    },
  };
}
