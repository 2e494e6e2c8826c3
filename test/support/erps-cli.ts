import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DevCertificates, TlsFiles } from 'nestjs-erps/testing';

/** The built CLI (npm test builds dist/ before jest). */
export const ERPS_CLI = join(__dirname, '..', '..', 'dist', 'cli', 'main.js');

export function assertCliBuilt(): void {
  if (!existsSync(ERPS_CLI)) throw new Error('dist/cli/main.js is missing: run `npm run build` first (npm test does)');
}

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout split into lines, without the last empty one. */
  lines: string[];
}

export interface CliRunOptions {
  /** Written to stdin, which is then closed (closed at once without). */
  input?: string;
  /** Added to the environment (from which ERPS_* variables are removed). */
  env?: Record<string, string>;
  cwd?: string;
  /** Arguments for node itself, before the script (e.g. ['-r', hook]). */
  nodeArgs?: string[];
  /** Called with the child once it is running (to signal it, say). */
  started?: (child: ReturnType<typeof spawn>) => void;
  /** Killed after this long (a hung test fails instead of hanging). */
  killAfterMs?: number;
}

/** Runs `node dist/cli/main.js ...args` as a real process; resolves with its exit code and output. */
export function erps(args: string[], options: CliRunOptions = {}): Promise<CliRun> {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('ERPS_')) env[name] = value;
  Object.assign(env, options.env);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(options.nodeArgs ?? []), ERPS_CLI, ...args], { cwd: options.cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const killer = setTimeout(() => child.kill('SIGKILL'), options.killAfterMs ?? 20_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, stdout, stderr, lines: stdout.split('\n').filter((line, i, all) => line !== '' || i < all.length - 1) });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input);
    options.started?.(child);
  });
}

/** --ca/--cert/--key for a client identity. */
export function tlsArgs(files: TlsFiles): string[] {
  return ['--ca', files.caFile, '--cert', files.certFile, '--key', files.keyFile];
}

/** The options that reach the calc server of test/support/apps as alice. */
export function calcArgs(certs: DevCertificates): string[] {
  return [...tlsArgs(certs.clients.alice), '--identifier', 'calc', '--version', '1.2.0'];
}

/**
 * Runs many `erps` command lines in ONE node process, one after the other, through the built CLI's runCli() (what
 * dist/cli/main.js runs), each with its own captured stdout/stderr and stdin: for the many cheap cases (usage errors,
 * --help) that would otherwise each pay for a process start.
 */
export async function erpsBatch(runs: Array<{ args: string[]; input?: string }>): Promise<Array<Omit<CliRun, 'signal'>>> {
  const program = join(__dirname, '..', '..', 'dist', 'cli', 'program.js');
  const driver = `
    const { Readable } = require('node:stream');
    const { runCli } = require(${JSON.stringify(program)});
    (async () => {
      const results = [];
      for (const run of JSON.parse(process.argv[1])) {
        let stdout = '';
        let stderr = '';
        const env = {
          output: { out: (line) => (stdout += line + '\\n'), err: (line) => (stderr += line + '\\n') },
          stdin: Readable.from(run.input === undefined ? [] : [Buffer.from(run.input)]),
          onInterrupt: () => () => undefined,
        };
        const code = await runCli(['node', 'erps', ...run.args], env);
        results.push({ code, stdout, stderr });
      }
      process.stdout.write(JSON.stringify(results));
    })();`;
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('ERPS_')) env[name] = value;
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', driver, JSON.stringify(runs)], { env, maxBuffer: 16 * 1024 * 1024 });
  return (JSON.parse(stdout) as Array<{ code: number; stdout: string; stderr: string }>).map((result) => ({
    ...result,
    lines: result.stdout.split('\n').filter((line, i, all) => line !== '' || i < all.length - 1),
  }));
}
