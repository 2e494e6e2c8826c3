import type { WirePattern } from '../protocol/message.js';
import type { Expiring } from './call-deadlines.js';

export interface CallObserver {
  next(value: unknown): void;
  error(err: unknown): void;
  complete(): void;
}

/** The link a call is pending on, as the call sees it: enough to cancel it there, and where it leads. */
export interface CallCarrier {
  cancel(call: OutgoingCall): void;
  /** The endpoint the link connects to (undefined for a link that belongs to no endpoint). */
  readonly endpoint: { host: string; port: number } | undefined;
}

/**
 * One call, from send() to its last reply: what to send (kept, so a call that never reached a handler can be sent
 * again elsewhere), who hears the replies, and where it is pending now. It is also the subscription's teardown
 * (`unsubscribe()` sends CANCEL on whichever link carries it), so a call costs one object.
 */
export class OutgoingCall implements Expiring {
  /** Request id on the current link; 0 while not pending anywhere. */
  id = 0;
  carrier: CallCarrier | undefined = undefined;
  expiresAt = 0;
  prevExpiring: Expiring | null = null;
  nextExpiring: Expiring | null = null;
  /** When the call's own deadline passes (performance.now() ms); 0 until first sent, Infinity without a timeout. */
  deadline = 0;
  /** A value has been delivered: the call has run; it is never sent again. */
  answered = false;
  /** Times it was sent again: after a refusal before dispatch, or (idempotent) after a lost connection. */
  resends = 0;
  /** Times it was sent again because it was idempotent and its connection died after it was written. */
  retries = 0;

  constructor(
    readonly pattern: WirePattern,
    readonly meta: Record<string, unknown> | null,
    readonly data: unknown,
    readonly observer: CallObserver,
    /** The wait for the first reply and between stream values; a resend gets what is left of the deadline. */
    public timeoutMs: number,
    readonly idempotent: boolean,
  ) {}

  /** The endpoint it was last sent to. */
  get endpoint(): { host: string; port: number } | undefined {
    return this.carrier?.endpoint;
  }

  unsubscribe(): void {
    this.carrier?.cancel(this);
  }
}
