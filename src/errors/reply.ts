import { ErpsError } from './erps-error.js';
import type { ErpsReplyCode } from './codes.js';

/** An error reply as the server sends it and the caller receives it: Nest's shape, plus our code. */
export interface ErpsErrorReply {
  status: 'error';
  message: string;
  code?: ErpsReplyCode;
}

/** The one builder of the server's own error replies. Without a code it is Nest's "Internal server error". */
export function errorReply(code?: ErpsReplyCode, message = 'Internal server error'): ErpsErrorReply {
  return code === undefined ? { status: 'error', message } : { status: 'error', message, code };
}

/** Error replies sent before the handler was dispatched that another try (later, elsewhere) may get past. */
const RETRYABLE_REPLIES: ReadonlySet<string> = new Set<ErpsReplyCode>(['ERPS_BUSY', 'ERPS_GOAWAY']);

/**
 * Whether a failed call provably never reached a handler and may succeed if tried again (on another connection or
 * endpoint): `err.retryable` for ErpsErrors, and ERPS_BUSY / ERPS_GOAWAY error replies.
 */
export function isRetryable(err: unknown): boolean {
  if (err instanceof ErpsError) return err.retryable;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof err === 'object' && err !== null && (err as { status?: unknown }).status === 'error' && typeof code === 'string' && RETRYABLE_REPLIES.has(code);
}
