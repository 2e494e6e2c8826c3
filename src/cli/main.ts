#!/usr/bin/env node
/*
 * `erps`, the command-line client (package.json "bin"). Runs without Nest and rxjs: nothing under src/cli/ imports
 * them, directly or through what it imports (the client core, protocol, connection, tls, errors).
 */
import { runCli } from './program.js';

/** Exits once stdout and stderr have taken what was written (a pipe may still hold it). */
function exitWith(code: number): void {
  let pending = 2;
  const done = (): void => {
    if (--pending === 0) process.exit(code);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
}

runCli(process.argv).then(exitWith, (err: unknown) => {
  process.stderr.write(`erps: unexpected failure: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  exitWith(1);
});
