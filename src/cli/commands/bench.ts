import { performance } from 'node:perf_hooks';
import type { Command } from 'commander';
import { connect, type CliConnection } from '../cli-connection.js';
import { runAction, type CliEnvironment, type ExitRecord } from '../command-kit.js';
import { ExitCode, explain, usageError } from '../errors.js';
import { addConnectionOptions, attemptOf, collectHeader, connectOptions, integer, parseTarget, patternOf, payloadOf, positive, type ConnectionFlags } from '../options.js';
import { ms, table, toJson } from '../output.js';
import { percentile } from '../percentiles.js';
import { headersOf } from './call.js';

interface BenchFlags extends ConnectionFlags {
  concurrency: number;
  duration: number;
  rate?: number;
  connections: number;
  timeout: number;
  header?: Record<string, string>;
}

/** What a run measured. */
export interface BenchReport {
  target: string;
  pattern: string;
  concurrency: number;
  connections: number;
  /** Calls per second asked for (--rate), or null for as fast as replies come. */
  rate: number | null;
  durationMs: number;
  /** Calls that finished (a reply or an error); calls still in flight at the deadline are waited for and counted. */
  calls: number;
  ok: number;
  errors: Record<string, number>;
  callsPerSecond: number;
  /** Latency of the calls that got their reply, from send to the last value. */
  latencyMs: { min: number; mean: number; p50: number; p90: number; p99: number; max: number } | null;
}

const round = (value: number): number => Math.round(value * 1000) / 1000;

/** The code an error counts under: the ErpsError's, the error reply's, or its message. */
function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' || typeof code === 'number') return String(code);
  return err instanceof Error ? err.name : 'ERROR';
}

/** Runs `concurrency` loops of calls over `connections` for `durationMs`, paced to `rate` calls/s when given. */
async function run(
  links: CliConnection[],
  pattern: string,
  data: unknown,
  headers: Record<string, string> | undefined,
  flags: BenchFlags,
  interrupted: () => boolean,
): Promise<Omit<BenchReport, 'target' | 'pattern'>> {
  const latencies: number[] = [];
  const errors: Record<string, number> = {};
  let calls = 0;
  let fatal: Error | undefined;
  const durationMs = flags.duration * 1000;
  const startedAt = performance.now();
  const deadline = startedAt + durationMs;
  let issued = 0;
  const one = (link: CliConnection): Promise<void> =>
    new Promise<void>((resolve) => {
      const sentAt = performance.now();
      link.call(pattern, data, headers, flags.timeout, {
        next: () => undefined,
        complete: () => {
          latencies.push(performance.now() - sentAt);
          calls++;
          resolve();
        },
        error: (err) => {
          const code = errorCode(err);
          errors[code] = (errors[code] ?? 0) + 1;
          calls++;
          if (code === 'ERPS_CONNECTION_LOST' || code === 'ERPS_DISCONNECTED') fatal ??= err as Error;
          resolve();
        },
      });
    });
  const worker = async (index: number): Promise<void> => {
    const link = links[index % links.length]!;
    for (;;) {
      if (fatal !== undefined || interrupted()) return;
      if (flags.rate !== undefined) {
        // Open loop: call number n starts at n / rate seconds; a worker that is late starts at once.
        const startAt = startedAt + (issued * 1000) / flags.rate;
        if (startAt >= deadline) return;
        issued++;
        const wait = startAt - performance.now();
        if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
      } else if (performance.now() >= deadline) {
        return;
      }
      await one(link);
    }
  };
  await Promise.all(Array.from({ length: flags.concurrency }, (_, index) => worker(index)));
  if (fatal !== undefined) throw fatal;
  const elapsedMs = performance.now() - startedAt;
  latencies.sort((a, b) => a - b);
  const total = latencies.reduce((sum, value) => sum + value, 0);
  return {
    concurrency: flags.concurrency,
    connections: links.length,
    rate: flags.rate ?? null,
    durationMs: Math.round(elapsedMs),
    calls,
    ok: latencies.length,
    errors,
    callsPerSecond: Math.round((calls / elapsedMs) * 1000 * 10) / 10,
    latencyMs:
      latencies.length === 0
        ? null
        : {
            min: round(latencies[0]!),
            mean: round(total / latencies.length),
            p50: round(percentile(latencies, 0.5)),
            p90: round(percentile(latencies, 0.9)),
            p99: round(percentile(latencies, 0.99)),
            max: round(latencies[latencies.length - 1]!),
          },
  };
}

function printReport(report: BenchReport, out: (line: string) => void): void {
  out(
    `${report.pattern} on ${report.target}: ${(report.durationMs / 1000).toFixed(1)} s, concurrency ${report.concurrency}, ` +
      `${report.connections} connection${report.connections === 1 ? '' : 's'}${report.rate !== null ? `, rate ${report.rate}/s` : ''}`,
  );
  const failed = Object.values(report.errors).reduce((sum, n) => sum + n, 0);
  const rows: Array<[string, string]> = [
    ['calls', `${report.calls} (${report.ok} ok, ${failed} failed)`],
    ['calls/s', String(report.callsPerSecond)],
  ];
  for (const line of table(rows, '  ')) out(line);
  if (report.latencyMs !== null) {
    const l = report.latencyMs;
    out('  latency');
    for (const line of table(
      [
        ['min', ms(l.min)],
        ['mean', ms(l.mean)],
        ['p50', ms(l.p50)],
        ['p90', ms(l.p90)],
        ['p99', ms(l.p99)],
        ['max', ms(l.max)],
      ],
      '    ',
    )) {
      out(line);
    }
  }
  if (failed > 0) {
    out('  errors');
    for (const line of table(
      Object.entries(report.errors)
        .sort((a, b) => b[1] - a[1])
        .map(([code, n]): [string, string] => [code, String(n)]),
      '    ',
    )) {
      out(line);
    }
  }
}

export function registerBench(program: Command, env: CliEnvironment, exit: ExitRecord): void {
  const { output } = env;
  addConnectionOptions(
    program
      .command('bench')
      .summary('load-test a pattern: calls/s, latency, errors')
      .description(
        'Load-test one pattern: --concurrency loops, each making a call as soon as its last one finished (or paced to --rate calls/s in all), ' +
          'for --duration seconds; calls still in flight at the end are waited for and counted. Reports calls/s, latency (min, mean, p50, p90, p99, max) ' +
          'and errors by code. Exit 0 when every call succeeded, 1 when any failed.',
      )
      .argument('<target>', 'the daemon: host:port, dns:name:port or srv:name')
      .argument('<pattern>', 'the @MessagePattern to call (a string, or an object pattern as JSON)')
      .argument('[json]', 'the payload of every call, as JSON, or - to read it from stdin; none: null')
      .option('-c, --concurrency <n>', 'calls in flight at once', integer(1), 10)
      .option('-d, --duration <s>', 'how long to keep calling, in seconds (decimals allowed)', positive(), 10)
      .option('-r, --rate <n>', 'at most this many calls per second in all (open loop); default: as fast as replies come', positive())
      .option('--connections <n>', 'spread the calls over this many connections', integer(1), 1)
      .option('--timeout <ms>', 'a call failing after this long counts as ERPS_TIMEOUT (0: no limit)', integer(0), 5000)
      .option('--header <name=value>', 'a header sent with every call (repeatable)', collectHeader),
  )
    .addHelpText(
      'after',
      `
Examples:
  $ erps bench 127.0.0.1:4000 sum '[1,2,3]' --concurrency 50 --duration 10 --certs ./certs --identifier calc --version 1.0.0
  $ erps bench 127.0.0.1:4000 sum '[1,2,3]' -c 8 -d 30 --rate 2000 --json --certs ./certs > run.json
`,
    )
    .action(
      runAction(exit, output, async (command, flags: BenchFlags, target: string, pattern: string, json: string | undefined) => {
        const where = parseTarget(target);
        const route = patternOf(pattern);
        const headers = headersOf(flags);
        const data = await payloadOf(json, env.stdin);
        if (flags.concurrency < flags.connections)
          throw usageError(`--concurrency ${flags.concurrency} is below --connections ${flags.connections}`, 'give each connection at least one call in flight');
        const options = connectOptions(command, flags, output);
        const attempts = await Promise.allSettled(Array.from({ length: flags.connections }, () => connect(where, options)));
        const links = attempts.flatMap((attempt) => (attempt.status === 'fulfilled' ? [attempt.value] : []));
        const refused = attempts.find((attempt) => attempt.status === 'rejected');
        if (refused !== undefined) {
          await Promise.all(links.map((link) => link.close()));
          throw refused.reason;
        }
        let interrupted = false;
        const stop = env.onInterrupt(() => (interrupted = true));
        try {
          const report: BenchReport = { target, pattern: route, ...(await run(links, route, data, headers, flags, () => interrupted)) };
          if (flags.json) output.out(toJson(report));
          else printReport(report, (line) => output.out(line));
          if (report.calls === report.ok) return ExitCode.OK;
          if (!flags.json) output.err(`erps: ${report.calls - report.ok} of ${report.calls} calls failed (errors above)`);
          const first = Object.keys(report.errors)[0];
          if (first !== undefined && report.ok === 0 && !flags.json) {
            const hint = explain({ code: first, message: '' }, attemptOf(target, flags)).hint;
            if (hint !== undefined) output.err(`  → ${hint}`);
          }
          return ExitCode.FAILED;
        } finally {
          stop();
          await Promise.all(links.map((link) => link.close()));
        }
      }),
    );
}
