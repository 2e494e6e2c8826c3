import type { Observable, Subscription } from 'rxjs';
import { FrameFlags, FrameType } from '../protocol/frame.js';
import type { PayloadCodec } from '../protocol/codec.js';
import { payloadBytes, payloadFlags } from '../protocol/payload.js';
import type { ErpsConnection } from '../connection/connection.js';
import { describeError, errorReply } from '../errors/index.js';

function flushScheduledValues(reply: CallReply): void {
  reply.flushValues();
}

/**
 * Sends the replies of one CALL: a single value, or every value of an Observable in order, then the end.
 * Values emitted in one tick leave together and the last one of a completed stream carries the end,
 * so `of(x)` costs one frame. `cancel()` tears the handler's Observable down (CANCEL, or connection lost).
 */
export class CallReply {
  private subscription: Subscription | undefined;
  /** Stream values waiting for the end of this tick (created by the first one: most replies are single values). */
  private queue: unknown[] | undefined;
  private flushScheduled = false;
  private finished = false;
  private doneCallback: (() => void) | undefined;
  /** How it ended, for tracing: the single value, the error reply, or a cancel. */
  value: unknown;
  failure: unknown;
  cancelled = false;

  constructor(
    private readonly connection: ErpsConnection,
    private readonly codec: PayloadCodec,
    readonly id: number,
    private readonly onFinish: (reply: CallReply) => void,
  ) {}

  get done(): boolean {
    return this.finished;
  }

  /** Runs `callback` once the reply is finished (at once if it already is). */
  onDone(callback: () => void): void {
    if (this.finished) return callback();
    const before = this.doneCallback;
    this.doneCallback =
      before === undefined
        ? callback
        : () => {
            before();
            callback();
          };
  }

  /** The handler produced a plain value (or a Promise resolved to one). */
  single(value: unknown): void {
    if (this.finished) return;
    this.value = value;
    this.sendValue(value, 0);
    this.finish();
  }

  /** The handler produced an Observable: stream it. `onError` sees the error it fails with, if it does. */
  follow(stream$: Observable<unknown>, onError?: (err: unknown) => void): void {
    if (this.finished) return;
    this.subscription = stream$.subscribe({
      next: (value) => this.push(value),
      error: (err) => {
        this.flushValues();
        this.error(err);
        onError?.(err);
      },
      complete: () => this.complete(),
    });
    if (this.finished) this.subscription.unsubscribe();
  }

  /** Sends an error reply (already shaped by Nest's exception filters, or by us). */
  error(err: unknown): void {
    if (this.finished) return;
    this.failure = err;
    let body: Buffer;
    try {
      body = this.codec.encode(err);
    } catch (encodeErr) {
      body = this.codec.encode(errorReply('ERPS_CODEC', `cannot encode error reply: ${describeError(encodeErr)}`));
    }
    this.connection.send(FrameType.ERROR, 0, this.id, body);
    this.finish();
  }

  /** Stops the handler's stream and sends nothing more (the client cancelled or is gone). */
  cancel(): void {
    if (this.finished) return;
    this.cancelled = true;
    this.finish();
  }

  private push(value: unknown): void {
    if (this.finished) return;
    (this.queue ??= []).push(value);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(flushScheduledValues, this);
    }
  }

  /** Sends the values queued so far, each flagged MORE (the stream has not ended). */
  flushValues(): void {
    this.flushScheduled = false;
    const queue = this.queue;
    if (queue === undefined) return;
    this.queue = undefined;
    for (const value of queue) {
      if (this.finished) return;
      this.sendValue(value, FrameFlags.MORE);
    }
  }

  private complete(): void {
    if (this.finished) return;
    if (this.queue !== undefined && this.queue.length > 0) {
      const last = this.queue.pop();
      this.flushValues();
      this.sendValue(last, 0);
    } else {
      this.connection.send(FrameType.REPLY, FrameFlags.NO_VALUE, this.id);
    }
    this.finish();
  }

  private sendValue(value: unknown, flags: number): void {
    let payload: Buffer;
    try {
      payload = payloadBytes(this.codec, value);
    } catch (err) {
      this.error(errorReply('ERPS_CODEC', `cannot encode reply: ${describeError(err)}`));
      return;
    }
    this.connection.send(FrameType.REPLY, flags | payloadFlags(value), this.id, payload);
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.queue = undefined;
    this.subscription?.unsubscribe();
    this.onFinish(this);
    this.doneCallback?.();
  }
}
