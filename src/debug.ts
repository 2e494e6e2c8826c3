import { debuglog } from 'node:util';

const log = debuglog('erps');

/**
 * `NODE_DEBUG=erps`: connection lifecycle and handshake details, one line each on stderr (`ERPS <pid>: ...`), through
 * Node's `util.debuglog`. Without it the function does nothing; arguments are formatted (`%s`, `%d`) only when on,
 * so call it with a format string, never a template literal. Warnings and errors stay on Nest's Logger.
 */
export const debug: (format: string, ...args: unknown[]) => void = log;

/** Whether NODE_DEBUG includes erps: for lines whose arguments cost something to compute, and listeners to add. */
export function debugEnabled(): boolean {
  return log.enabled;
}
