import type { Command } from 'commander';
import { runAction, withConnection, type CliEnvironment, type ExitRecord } from '../command-kit.js';
import { ExitCode } from '../errors.js';
import { addConnectionOptions, integer, type ConnectionFlags } from '../options.js';
import { ms, toJson } from '../output.js';
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
      .argument('<target>', 'the daemon, host:port')
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
      .summary('check the daemon serves (ping-based for now)')
      .description(
        'Check that the daemon serves: for now a ping-based check (TCP, TLS, the Erps handshake and one PING round trip); ' +
          'prints SERVING and exits 0, or the failure and exits 3. The daemon has no health service yet: [service] is accepted and reported, not checked.',
      )
      .argument('<target>', 'the daemon, host:port')
      .argument('[service]', 'the service to check (reported only, until the daemon has a health service)')
      .option('--timeout <ms>', 'wait at most this long for the PONG', integer(1), 5000),
  )
    .addHelpText(
      'after',
      `
Examples:
  $ erps health 127.0.0.1:4000 --certs ./certs --identifier calc --version 1.0.0
  SERVING (ping-based: handshake 4.120 ms, round trip 0.312 ms)
  $ erps health 127.0.0.1:4000 calc --json --certs ./certs || echo "not serving"
`,
    )
    .action(
      runAction(exit, output, async (command, flags: HealthFlags, target: string, service: string | undefined) =>
        withConnection(command, flags, target, output, async (connection) => {
          const rtt = await connection.ping(flags.timeout);
          if (flags.json) {
            output.out(toJson({ status: 'SERVING', check: 'ping', service: service ?? null, handshakeMs: round(connection.handshakeMs), rttMs: round(rtt) }));
          } else {
            output.out(`SERVING (ping-based: handshake ${ms(connection.handshakeMs)}, round trip ${ms(rtt)}${service !== undefined ? `; service "${service}" not checked` : ''})`);
          }
          return ExitCode.OK;
        }),
      ),
    );
}
