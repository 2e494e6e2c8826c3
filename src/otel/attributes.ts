/** `rpc.system` (and `rpc.system.name`) of every Erps span and metric. */
export const RPC_SYSTEM = 'erps';

/**
 * `error.type`: an ErpsError's code (`ERPS_TIMEOUT`), an error reply's code (`ERPS_FORBIDDEN`), a Nest-shaped reply
 * without one (`_OTHER`), or an Error's class name.
 */
export function errorType(err: unknown): string {
  if (typeof err === 'object' && err !== null) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && code !== '') return code;
    if (err instanceof Error) return err.name;
  }
  return '_OTHER';
}
