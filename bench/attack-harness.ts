/**
 * The row runner of `npm run attack`: measures the daemon around each attack (RSS every ~100 ms, fds, connections,
 * event-loop delay, disconnect reasons, handler runs, the good clients' failures), judges the row and prints it.
 */
import { ATTACKER_ONLY_PATTERNS, DaemonEvent, DaemonSample, describe, MIB, RowReport, sleep } from './attack-common.js';
import type { Daemon } from './attack-daemon-handle.js';
import type { GoodClient, PemIdentity } from './attack-good-client.js';
import type { Identity } from './attack-wire.js';

/** One certificate of the run, as files (for ErpsClient) and as PEM (for raw peers). */
export interface Party {
  files: PemIdentity;
  pem: Identity;
}

/** What the rows attack, and with which certificates (all but `untrusted` signed by the daemons' CA). */
export interface AttackEnv {
  main: Daemon;
  ca: Buffer;
  alice: Party;
  bob: Party;
  carol: Party;
  slow: Party;
  revoked: Party;
  untrusted: Party;
}

/** What a row's attack function reports. */
export interface AttackOutcome {
  attempts: number;
  /** Attempts the daemon handled the way the row requires. */
  stopped: number;
  /** How they were stopped: the reasons / error codes seen. */
  how: string;
  /** Why the row broke beyond the counts (empty when nothing else went wrong). */
  problems?: string[];
}

export interface RowContext {
  daemon: Daemon;
  /** Events (disconnect reasons, TLS errors) the daemon recorded so far in this row. */
  peek(): Promise<DaemonEvent[]>;
  /**
   * Ends the row on the daemon's side (event-loop delay, broadcasts) and returns its report; call it when the
   * attack is over (the runner calls it otherwise). Later calls return the same report.
   */
  end(): Promise<RowReport | undefined>;
  /** The events of end(). */
  events(): Promise<DaemonEvent[]>;
}

export interface RowSpec {
  attack: string;
  daemon: Daemon;
  /** How the daemon is expected to stop it (printed; the attack decides what counts as stopped). */
  expected: string;
  /** Largest acceptable RSS growth of the daemon over the row. Default 64 MiB. */
  maxRssGrowthMiB?: number;
  run(ctx: RowContext): Promise<AttackOutcome>;
}

export interface RowResult {
  attack: string;
  daemon: string;
  attempts: number;
  stopped: number;
  outcome: 'held' | 'broke';
  how: string;
  expected: string;
  rssGrowthMiB: number;
  maxRssGrowthMiB: number;
  fdBaseline: number;
  fdAfter: number;
  connectionsBaseline: number;
  connectionsAfter: number;
  eventLoopMaxMs: number;
  goodCalls: number;
  goodFailed: number;
  daemonDied: boolean;
  problems: string[];
  seconds: number;
}

/** Longest event-loop stall a row may cause in the daemon. */
export const MAX_STALL_MS = 1000;
/** A row that has not finished by then is reported broken (rows bound themselves well below this). */
const ROW_CAP_MS = 45_000;
const ROW_END_MS = 4000;

/** Runs rows one after another, measuring the daemon around each, and prints each result as it comes. */
export class RowRunner {
  readonly results: RowResult[] = [];

  constructor(private readonly goods: () => GoodClient[]) {}

  async run(spec: RowSpec): Promise<RowResult> {
    const daemon = spec.daemon;
    const started = Date.now();
    const problems: string[] = [];
    for (const good of this.goods()) await good.ready(5000);
    const start = await daemon.request({ cmd: 'rowStart' });
    const baseline = start?.sample;
    if (baseline === undefined) throw new Error(`daemon ${daemon.config.name} does not answer before "${spec.attack}"`);
    const canResetPeak = daemon.resetPeak();
    const goodBefore = this.goodTotals();
    const sampler = new RssSampler(daemon);

    let report: RowReport | undefined;
    // A daemon that cannot answer within ROW_END_MS after the attack is over counts as hung: it is killed.
    const endRow = async (): Promise<RowReport | undefined> => (report ??= (await daemon.request({ cmd: 'rowEnd' }, ROW_END_MS))?.report);
    const ctx: RowContext = {
      daemon,
      peek: async () => (await daemon.request({ cmd: 'events' }))?.report?.events ?? [],
      end: endRow,
      events: async () => (await endRow())?.events ?? [],
    };
    let outcome: AttackOutcome;
    try {
      outcome = await withCap(spec.run(ctx), ROW_CAP_MS);
    } catch (err) {
      outcome = { attempts: 0, stopped: 0, how: `harness: ${describe(err)}`, problems: [`attack failed to run: ${describe(err)}`] };
    }
    await endRow();
    const peak = sampler.stop(canResetPeak);
    const hung = report === undefined && daemon.alive;
    if (hung) {
      problems.push('daemon stopped answering (killed and restarted)');
      await daemon.terminate();
    }
    const died = !daemon.alive;
    if (died && !hung) problems.push(`daemon died (${daemon.exitedWith})`);
    const after = died ? undefined : await settle(daemon, baseline);
    const goodAfter = this.goodTotals();

    const rssGrowthMiB = Math.max(0, peak - baseline.rss) / MIB;
    const maxRss = spec.maxRssGrowthMiB ?? 64;
    const eventLoopMaxMs = report?.eventLoopMaxMs ?? Number.NaN;
    const goodFailed = goodAfter.failed - goodBefore.failed;
    problems.push(...(outcome.problems ?? []));
    if (outcome.stopped < outcome.attempts) problems.push(`${outcome.attempts - outcome.stopped} of ${outcome.attempts} not stopped as required`);
    if (rssGrowthMiB > maxRss) problems.push(`RSS grew ${rssGrowthMiB.toFixed(1)} MiB (limit ${maxRss})`);
    if (!(eventLoopMaxMs <= MAX_STALL_MS) && !died) problems.push(`event loop stalled ${eventLoopMaxMs.toFixed(0)} ms (limit ${MAX_STALL_MS})`);
    if (after !== undefined && after.fds > baseline.fds) problems.push(`fds ${after.fds} > baseline ${baseline.fds}`);
    if (after !== undefined && after.connections > baseline.connections) problems.push(`connections ${after.connections} > baseline ${baseline.connections}`);
    if (goodFailed > 0) problems.push(`${goodFailed} good calls failed (${this.lastGoodError()})`);
    for (const pattern of ATTACKER_ONLY_PATTERNS) {
      const ran = (after?.handlers[pattern] ?? 0) - (baseline.handlers[pattern] ?? 0);
      if (ran > 0) problems.push(`handler "${pattern}" ran ${ran}× for attackers`);
    }
    if (died) {
      await daemon.restart();
      for (const good of this.goods()) await good.ready();
    }

    const result: RowResult = {
      attack: spec.attack,
      daemon: daemon.config.name,
      attempts: outcome.attempts,
      stopped: outcome.stopped,
      outcome: problems.length === 0 ? 'held' : 'broke',
      how: outcome.how,
      expected: spec.expected,
      rssGrowthMiB: round1(rssGrowthMiB),
      maxRssGrowthMiB: maxRss,
      fdBaseline: baseline.fds,
      fdAfter: after?.fds ?? -1,
      connectionsBaseline: baseline.connections,
      connectionsAfter: after?.connections ?? -1,
      eventLoopMaxMs: Math.round(eventLoopMaxMs),
      goodCalls: goodAfter.made - goodBefore.made,
      goodFailed,
      daemonDied: died,
      problems,
      seconds: round1((Date.now() - started) / 1000),
    };
    this.results.push(result);
    printRow(result);
    return result;
  }

  /** Records a row that was not run (it counts as broken). */
  notRun(spec: RowSpec, why: string): void {
    const result: RowResult = {
      attack: spec.attack,
      daemon: spec.daemon.config.name,
      attempts: 0,
      stopped: 0,
      outcome: 'broke',
      how: why,
      expected: spec.expected,
      rssGrowthMiB: 0,
      maxRssGrowthMiB: spec.maxRssGrowthMiB ?? 64,
      fdBaseline: -1,
      fdAfter: -1,
      connectionsBaseline: -1,
      connectionsAfter: -1,
      eventLoopMaxMs: Number.NaN,
      goodCalls: 0,
      goodFailed: 0,
      daemonDied: false,
      problems: [why],
      seconds: 0,
    };
    this.results.push(result);
    printRow(result);
  }

  private goodTotals(): { made: number; failed: number } {
    let made = 0;
    let failed = 0;
    for (const good of this.goods()) {
      made += good.made;
      failed += good.failed;
    }
    return { made, failed };
  }

  private lastGoodError(): string {
    return (
      this.goods()
        .map((g) => g.lastError)
        .filter(Boolean)
        .join('; ') || 'no error text'
    );
  }
}

/** Samples the daemon's RSS every ~100 ms (IPC, and /proc in case the event loop is stalled); keeps the peak. */
class RssSampler {
  private peak = 0;
  private waiting = false;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly daemon: Daemon) {
    this.timer = setInterval(() => this.tick(), 100);
  }

  stop(usePeakMark: boolean): number {
    clearInterval(this.timer);
    this.tick();
    const mark = usePeakMark ? (this.daemon.procMemory()?.peak ?? 0) : 0;
    return Math.max(this.peak, mark);
  }

  private tick(): void {
    const proc = this.daemon.procMemory();
    if (proc !== undefined) this.peak = Math.max(this.peak, proc.rss);
    if (this.waiting) return;
    this.waiting = true;
    void this.daemon.sample(1000).then((s) => {
      this.waiting = false;
      if (s !== undefined) this.peak = Math.max(this.peak, s.rss);
    });
  }
}

/** Waits up to 4 s for the daemon's fds and connections to come back to the baseline; returns the last sample. */
async function settle(daemon: Daemon, baseline: DaemonSample): Promise<DaemonSample | undefined> {
  let last: DaemonSample | undefined;
  const deadline = Date.now() + 4000;
  do {
    last = (await daemon.sample()) ?? last;
    if (last !== undefined && last.fds <= baseline.fds && last.connections <= baseline.connections) return last;
    await sleep(200);
  } while (Date.now() < deadline);
  return last;
}

function withCap<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const cap = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`row still running after ${ms / 1000} s`)), ms);
  });
  return Promise.race([work, cap]).finally(() => clearTimeout(timer));
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

/** The fd and stall cells of a row: "died" / "n/a" when the daemon did not survive it. */
export function fdCell(r: RowResult): string {
  return r.daemonDied ? `died / ${r.fdBaseline}` : `${r.fdAfter} / ${r.fdBaseline}`;
}

export function stallCell(r: RowResult): string {
  return Number.isFinite(r.eventLoopMaxMs) ? String(r.eventLoopMaxMs) : 'n/a';
}

export function printRow(r: RowResult): void {
  const verdict = r.outcome === 'held' ? 'held ' : 'BROKE';
  console.log(
    `[${verdict}] ${r.attack} (${r.daemon}): ${r.stopped}/${r.attempts} stopped — ${r.how}; ` +
      `RSS +${r.rssGrowthMiB} MiB, fds ${fdCell(r)}, stall ${stallCell(r)} ms, good failed ${r.goodFailed}/${r.goodCalls}, ${r.seconds} s`,
  );
  if (r.outcome === 'broke') console.log(`          expected: ${r.expected}`);
  for (const problem of r.problems) console.log(`          - ${problem}`);
}

/** Counts of each code among events, with the first message of each: "ERPS_PROTOCOL ×3 (no HELLO within …)". */
export function codeCounts(events: DaemonEvent[]): string {
  const counts = new Map<string, { n: number; message: string }>();
  for (const e of events) {
    const seen = counts.get(e.code);
    if (seen === undefined) counts.set(e.code, { n: 1, message: e.message });
    else seen.n++;
  }
  const clip = (m: string): string => (m.length > 60 ? `${m.slice(0, 57)}...` : m);
  return [...counts].map(([code, { n, message }]) => `${code} ×${n}${message ? ` (${clip(message)})` : ''}`).join(', ') || 'no disconnect recorded';
}
