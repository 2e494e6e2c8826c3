import type { Command } from 'commander';
import { connect, type CliConnection } from './cli-connection.js';
import { CliError, ExitCode, explain, type Attempt } from './errors.js';
import { attemptOf, connectOptions, parseTarget, type ConnectionFlags } from './options.js';
import { printError, type Output } from './output.js';

/** What commands run with: where they write, what they read, how they hear Ctrl-C. */
export interface CliEnvironment {
  output: Output;
  stdin: NodeJS.ReadableStream;
  /** Calls `listener` once on SIGINT or SIGTERM; returns the function that stops listening. */
  onInterrupt(listener: () => void): () => void;
}

/** Process signals as interrupts. */
export function processInterrupts(listener: () => void): () => void {
  const once = (): void => {
    stop();
    listener();
  };
  const stop = (): void => {
    process.removeListener('SIGINT', once);
    process.removeListener('SIGTERM', once);
  };
  process.once('SIGINT', once);
  process.once('SIGTERM', once);
  return stop;
}

/** The exit code of the last command run (commander's actions return nothing). */
export interface ExitRecord {
  code: ExitCode | 130;
}

/**
 * Wraps a command's body: any failure is explained (what happened, what to do), printed on stderr (as JSON with
 * --json) and turned into its exit code, recorded in `exit`.
 */
export function runAction<F extends Partial<ConnectionFlags>, A extends unknown[]>(
  exit: ExitRecord,
  output: Output,
  body: (command: Command, flags: F, ...args: A) => Promise<ExitCode | 130>,
): (...received: unknown[]) => Promise<void> {
  return async (...received: unknown[]) => {
    // commander passes the arguments, then the options, then the command.
    const command = received[received.length - 1] as Command;
    const flags = command.opts<F>();
    const args = received.slice(0, -2) as A;
    const target = typeof args[0] === 'string' ? args[0] : '';
    try {
      exit.code = await body(command, flags, ...args);
    } catch (err) {
      const attempt: Attempt = attemptOf(target, flags);
      const error = explain(err, attempt);
      printError(output, error, flags.json === true);
      exit.code = error.exitCode;
    }
  };
}

/** Connects to the target of a command with its options; the connection is closed when `use` settles. */
export async function withConnection<T>(command: Command, flags: ConnectionFlags, target: string, output: Output, use: (connection: CliConnection) => Promise<T>): Promise<T> {
  const where = parseTarget(target);
  const options = connectOptions(command, flags, output);
  const connection = await connect(where, options);
  try {
    return await use(connection);
  } finally {
    await connection.close();
  }
}

/** A failure of the command itself (not of a connection), exit code 1. */
export function commandFailed(message: string, hint?: string): CliError {
  return new CliError(message, ExitCode.FAILED, hint);
}
