import type { ErpsErrorCode } from './codes.js';

/**
 * Typed errors with stable `code`s. Callers match on `code` (or `instanceof`), never on message text.
 */
export class ErpsError extends Error {
  constructor(
    readonly code: ErpsErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }

  /**
   * True when the call provably never reached a handler and trying again (later, or on another endpoint) may
   * succeed: it was never sent, or the server refused it before dispatch. False when it may have run, and for
   * refusals that would come again (bad options, a payload the codec refuses, a frame over the limit).
   */
  get retryable(): boolean {
    return false;
  }
}

/** Turns anything thrown into a short, loggable reason string. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}
