import type { Command } from 'commander';
import { commandFailed, runAction, withConnection, type CliEnvironment, type ExitRecord } from '../command-kit.js';
import type { CliConnection } from '../cli-connection.js';
import { HEALTH_PATTERN, healthReplyStatus } from '../../protocol/health.js';
import { ExitCode } from '../errors.js';
import { addConnectionOptions, integer, type ConnectionFlags } from '../options.js';
import { ms, toJson, type Output } from '../output.js';
import { percentile } from '../percentiles.js';

interface PingFlags extends ConnectionFlags {
  count: number;
  interval: number;
  timeout: number;
}

const round = (value: number): number => Math.round(value * 1000) / 1000;

export function registerPing(program: Command, env: CliEnvironment, exit: ExitRecord): void {
  const { output } = env;
  addConnectionOptions(
    program
      .command('ping')
      .summary('time handshake and PING round trips')
      .description('Connect (TCP, TLS, Erps handshake), then time PING → PONG round trips: min, median, p99.')
      .argument('<target>', 'the daemon: host:port, dns:name:port or srv:name')
      .option('--count <n>', 'round trips to time', integer(1), 5)
      .option('--interval <ms>', 'pause between round trips', integer(0), 200)
      .option('--timeout <ms>', 'wait at most this long for each PONG', integer(1), 5000),
  )
    .addHelpText(
      'after',
      `
Examples:
  $ erps ping 127.0.0.1:4000 --certs ./certs --identifier calc --version 1.0.0
  $ erps ping 127.0.0.1:4000 --count 100 --interval 0 --json --certs ./certs
`,
    )
    .action(
      runAction(exit, output, async (command, flags: PingFlags, target: string) =>
        withConnection(command, flags, target, output, async (connection) => {
          if (!flags.json) output.out(`connected to ${target}: handshake ${ms(connection.handshakeMs)}`);
          const rtts: number[] = [];
          for (let seq = 1; seq <= flags.count; seq++) {
            if (seq > 1 && flags.interval > 0) await new Promise((resolve) => setTimeout(resolve, flags.interval));
            const rtt = await connection.ping(flags.timeout);
            rtts.push(rtt);
            if (!flags.json) output.out(`pong from ${target}: seq=${seq} time=${ms(rtt)}`);
          }
          const sorted = [...rtts].sort((a, b) => a - b);
          const summary = { min: sorted[0]!, median: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted[sorted.length - 1]! };
          if (flags.json) {
            output.out(
              toJson({
                target,
                handshakeMs: round(connection.handshakeMs),
                count: rtts.length,
                rttMs: { min: round(summary.min), median: round(summary.median), p99: round(summary.p99), max: round(summary.max) },
                samplesMs: rtts.map(round),
              }),
            );
          } else {
            output.out(`${rtts.length} round trips: min ${ms(summary.min)}, median ${ms(summary.median)}, p99 ${ms(summary.p99)}, max ${ms(summary.max)}`);
          }
          return ExitCode.OK;
        }),
      ),
    );
}

interface HealthFlags extends ConnectionFlags {
  timeout: number;
}

export function registerHealth(program: Command, env: CliEnvironment, exit: ExitRecord): void {
  const { output } = env;
  addConnectionOptions(
    program
      .command('health')
      .summary("ask the daemon's health service whether it serves")
      .description(
        "Ask the daemon's health service (gRPC's Health Checking Protocol: docs/PROTOCOL.md) for the status of [service] " +
          "(default '': the daemon as a whole). SERVING exits 0; NOT_SERVING (set by the app, or the daemon drains) and " +
          'SERVICE_UNKNOWN exit 1; no connection exits 3. A daemon without the health service (an older nestjs-erps) gets ' +
          'a ping-based check instead (the handshake and one PING round trip), and the output says so.',
      )
      .argument('<target>', 'the daemon, host:port (or dns:name:port, srv:name)')
      .argument('[service]', "the service to check; '' (the default) is the daemon as a whole")
      .option('--timeout <ms>', 'wait at most this long for the answer', integer(1), 5000),
  )
    .addHelpText(
      'after',
      `
Examples:
  $ erps health 127.0.0.1:4000 --certs ./certs --identifier calc --version 1.0.0
  SERVING (round trip 0.412 ms)
  $ erps health 127.0.0.1:4000 billing --json --certs ./certs || echo "not serving"
`,
    )
    .action(
      runAction(exit, output, async (command, flags: HealthFlags, target: string, service: string | undefined) =>
        withConnection(command, flags, target, output, async (connection) => {
          const startedAt = performance.now();
          let reply: unknown;
          try {
            reply = await callOnce(connection, HEALTH_PATTERN, { service: service ?? '' }, flags.timeout);
          } catch (err) {
            if ((err as { code?: unknown } | null)?.code !== 'ERPS_NO_HANDLER') throw err;
            return pingBased(connection, flags, service, output);
          }
          const rtt = performance.now() - startedAt;
          const status = healthReplyStatus(reply);
          if (status === undefined) throw commandFailed(`the health service answered ${toJson(reply)}`, 'is the server a nestjs-erps daemon?');
          if (flags.json) output.out(toJson({ status, check: 'health', service: service ?? '', rttMs: round(rtt) }));
          else output.out(`${status}${service ? ` (service "${service}")` : ''} (round trip ${ms(rtt)})`);
          return status === 'SERVING' ? ExitCode.OK : ExitCode.FAILED;
        }),
      ),
    );
}

/** A daemon without the health service: the handshake and one PING round trip say it serves. */
async function pingBased(connection: CliConnection, flags: HealthFlags, service: string | undefined, output: Output): Promise<ExitCode> {
  const rtt = await connection.ping(flags.timeout);
  if (flags.json) {
    output.out(toJson({ status: 'SERVING', check: 'ping', service: service ?? null, handshakeMs: round(connection.handshakeMs), rttMs: round(rtt) }));
  } else {
    output.out(
      `SERVING (ping-based, the daemon has no health service: handshake ${ms(connection.handshakeMs)}, round trip ${ms(rtt)}${service ? `; service "${service}" not checked` : ''})`,
    );
  }
  return ExitCode.OK;
}

/** One call's single reply. */
function callOnce(connection: CliConnection, pattern: string, data: unknown, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let value: unknown;
    connection.call(pattern, data, undefined, timeoutMs, { next: (v) => (value = v), error: reject, complete: () => resolve(value) });
  });
}
