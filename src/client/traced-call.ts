import type { ErpsClientCallMessage } from '../observability/channels.js';
import { clientCallChannel } from '../observability/channels.js';
import type { CallObserver, OutgoingCall } from './outgoing-call.js';

/**
 * What a traced call's subscriber sees, forwarded, with the end of the call published on `erps:client:call`:
 * `asyncEnd` after the last value, `error` then `asyncEnd` on failure, `asyncEnd` with `cancelled` on unsubscribe.
 * Only used while the channel has subscribers.
 */
export class TracedObserver implements CallObserver {
  private ended = false;
  call: OutgoingCall | undefined;

  constructor(
    private readonly target: CallObserver,
    readonly message: ErpsClientCallMessage,
  ) {}

  next(value: unknown): void {
    this.message.result = value;
    this.message.values = (this.message.values ?? 0) + 1;
    this.target.next(value);
  }

  error(err: unknown): void {
    if (!this.ended) {
      this.ended = true;
      this.noteEndpoint();
      this.message.error = err;
      clientCallChannel.error.publish(this.message);
      clientCallChannel.asyncEnd.publish(this.message);
    }
    this.target.error(err);
  }

  complete(): void {
    this.end();
    this.target.complete();
  }

  /** The caller unsubscribed: a call still under way is cancelled. */
  cancelled(): void {
    if (this.ended) return;
    this.message.cancelled = true;
    this.end();
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.noteEndpoint();
    clientCallChannel.asyncEnd.publish(this.message);
  }

  private noteEndpoint(): void {
    const endpoint = this.call?.endpoint;
    if (endpoint !== undefined) this.message.endpoint = endpoint;
  }
}
