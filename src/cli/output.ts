import { CliError } from './errors.js';

/**
 * JSON for any decoded value: binary as `{"$base64": "…"}`, bigint as a string, Map as an object, Set as an array,
 * undefined as null. One line, no spaces: one JSON value per line on stdout.
 */
export function toJson(value: unknown): string {
  return JSON.stringify(value === undefined ? null : value, replacer) ?? 'null';
}

function replacer(this: unknown, key: string, value: unknown): unknown {
  // JSON.stringify has already called Buffer's toJSON: read the original from the holder.
  const original = (this as Record<string, unknown>)[key];
  if (original instanceof Uint8Array) return { $base64: Buffer.from(original.buffer, original.byteOffset, original.byteLength).toString('base64') };
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Map) return Object.fromEntries([...(value as Map<unknown, unknown>)].map(([k, v]) => [String(k), v]));
  if (value instanceof Set) return [...(value as Set<unknown>)];
  return value;
}

/** Where a command writes: stdout for results, stderr for errors and notes. Replaceable in tests. */
export interface Output {
  out(line: string): void;
  err(line: string): void;
}

export const processOutput: Output = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/** Prints a failure on stderr: `erps: message` and `  hint`, or one JSON object with --json. */
export function printError(output: Output, error: CliError, json: boolean): void {
  if (json) {
    const body: Record<string, unknown> = { code: error.code, message: error.replyMessage ?? error.message, exitCode: error.exitCode };
    if (error.hint !== undefined) body.hint = error.hint;
    if (error.reply !== undefined) body.reply = error.reply;
    output.err(toJson({ error: body }));
    return;
  }
  output.err(`erps: ${error.message}`);
  if (error.reply !== undefined) output.err(`  ${toJson(error.reply)}`);
  if (error.hint !== undefined) output.err(`  → ${error.hint}`);
}

/** Milliseconds for people: 0.412 ms, 12.3 ms, 1234 ms. */
export function ms(value: number): string {
  if (value < 10) return `${value.toFixed(3)} ms`;
  if (value < 100) return `${value.toFixed(1)} ms`;
  return `${Math.round(value)} ms`;
}

/** Lines of `label  value` with the labels padded to one width. */
export function table(rows: Array<[string, string]>, indent = ''): string[] {
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `${indent}${label.padEnd(width)}  ${value}`);
}
