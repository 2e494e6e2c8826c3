import { Command, CommanderError } from 'commander';
import { processInterrupts, type CliEnvironment, type ExitRecord } from './command-kit.js';
import { registerBench } from './commands/bench.js';
import { registerCall, registerCast, registerPushes } from './commands/call.js';
import { registerCerts } from './commands/certs.js';
import { registerInspect } from './commands/inspect.js';
import { registerHealth, registerPing } from './commands/ping.js';
import { ExitCode, usageError } from './errors.js';
import { packageVersion } from './options.js';
import { printError, processOutput, type Output } from './output.js';

const FOOTER = `
Targets are host:port (127.0.0.1:4000, localhost:4000, [::1]:4000), dns:name:port (A/AAAA records) or srv:name
(SRV records); a looked-up name is the name the server certificate must carry unless --server-name says otherwise.

Certificates (mutual TLS): --certs DIR (a folder written by \`erps certs\`), or --ca, --cert and --key, or the
environment variables ERPS_CA, ERPS_CERT and ERPS_KEY (the options win). --plain for a server with transport 'tcp'.

Exit codes:
  0  success
  1  the call failed (an error reply, a timeout; with --json the error is one JSON object on stderr), or the command did
  2  usage: a bad option or argument, missing certificates, an unsupported target
  3  connection, TLS or handshake failure: nothing listening, a certificate refused, the handshake rejected, the connection lost

Examples:
  $ npx erps certs ./certs
  $ npx erps call 127.0.0.1:4000 sum '[1,2,3]' --certs ./certs
  $ npx erps inspect 127.0.0.1:4000 --certs ./certs
  $ npx erps <command> --help
`;

/** The `erps` program; `exit.code` holds the exit code of the command that ran. */
export function buildProgram(env: CliEnvironment, exit: ExitRecord): Command {
  const program = new Command('erps')
    .description('The command-line client of nestjs-erps: call, cast, watch pushes, ping, inspect a daemon, check health, make certificates, load-test.')
    .version(packageVersion(), '-V, --cli-version', 'print the version of erps (nestjs-erps)')
    .enablePositionalOptions()
    .showHelpAfterError('(add --help for usage)')
    .configureOutput({ writeOut: (text) => env.output.out(text.replace(/\n$/, '')), writeErr: (text) => env.output.err(text.replace(/\n$/, '')) })
    .exitOverride()
    .addHelpText('after', FOOTER);
  registerCall(program, env, exit);
  registerCast(program, env, exit);
  registerPushes(program, env, exit);
  registerPing(program, env, exit);
  registerInspect(program, env, exit);
  registerHealth(program, env, exit);
  registerCerts(program, env, exit);
  registerBench(program, env, exit);
  return program;
}

/** Runs `erps` with `argv` (node's: the first two are the runtime and the script); resolves with the exit code. */
export async function runCli(argv: string[], env: CliEnvironment = { output: processOutput, stdin: process.stdin, onInterrupt: processInterrupts }): Promise<number> {
  const exit: ExitRecord = { code: ExitCode.OK };
  // With --json, what commander refuses is reported as JSON too: its own words are held back, then dropped.
  const json = argv.includes('--json');
  const held: string[] = [];
  const output: Output = json ? { out: (line) => env.output.out(line), err: (line) => void held.push(line) } : env.output;
  const program = buildProgram({ ...env, output }, exit);
  try {
    await program.parseAsync(argv);
    for (const line of held) env.output.err(line);
    return exit.code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help, `erps help` and --cli-version succeed; `erps` alone (help shown) and everything else commander refuses is usage.
      if (err.exitCode === 0) return ExitCode.OK;
      if (json) printError(env.output, usageError(err.message.replace(/^error: /, '')), true);
      else for (const line of held) env.output.err(line);
      return ExitCode.USAGE;
    }
    for (const line of held) env.output.err(line);
    throw err;
  }
}
