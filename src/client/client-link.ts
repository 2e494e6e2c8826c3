import type { ErpsConnection } from '../connection/connection.js';
import { ErpsCodecError, ErpsConnectionLostError, ErpsFrameTooLargeError, ErpsSlowConsumerError, ErpsTimeoutError, describeError } from '../errors/index.js';
import type { PayloadCodec } from '../protocol/codec.js';
import { Frame, FrameFlags, FrameType } from '../protocol/frame.js';
import { decodeMessageBody, encodeMessagePrefix, PatternCache, WirePattern } from '../protocol/message.js';
import { decodePayload, payloadBytes, payloadFlags } from '../protocol/payload.js';
import { PendingCalls } from './pending-calls.js';
import { CallDeadlines, Expiring } from './call-deadlines.js';

export interface CallObserver {
  next(value: unknown): void;
  error(err: unknown): void;
  complete(): void;
}

interface PendingCall extends Expiring {
  id: number;
  observer: CallObserver;
}

export interface LinkEvents {
  /** The server sent GOAWAY: no new calls on this link; the ones in flight still get their replies. */
  goaway(link: ClientLink): void;
  closed(link: ClientLink, reason: Error | undefined): void;
  push(pattern: string, data: unknown): void;
}

/**
 * One established (handshaken) client connection: its pending-call table and the meaning of the
 * frames the server sends back. The ErpsClient owns links and decides which one carries a call.
 */
export class ClientLink {
  private readonly pending = new PendingCalls<PendingCall>();
  private readonly deadlines = new CallDeadlines<PendingCall>((entry) => this.expire(entry));
  private goingAway = false;
  private readonly pushPatterns = new PatternCache();

  constructor(
    readonly connection: ErpsConnection,
    private readonly codec: PayloadCodec,
    /** The server's maxFrameBytes, from its WELCOME. */
    private readonly peerMaxFrameBytes: number,
    private readonly events: LinkEvents,
  ) {
    connection.setHandlers({ onFrame: (frame) => this.onFrame(frame), onClose: (reason) => this.onClose(reason) });
  }

  /** Accepts new calls: open and not told to go away. */
  get usable(): boolean {
    return !this.goingAway && !this.connection.closed;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Sends a CALL. Returns the function that cancels it (sends CANCEL while the call is still pending).
   * `timeoutMs` bounds the wait for the first reply and between the values of a stream.
   */
  call(pattern: WirePattern, meta: Record<string, unknown> | null, data: unknown, observer: CallObserver, timeoutMs: number): () => void {
    let prefix: Buffer;
    let payload: Buffer;
    try {
      this.refuseIfCongested();
      payload = payloadBytes(this.codec, data);
      prefix = this.prefixFor(pattern, meta, payload);
    } catch (err) {
      observer.error(err);
      return noop;
    }
    const entry: PendingCall = { id: 0, observer, timeoutMs, expiresAt: 0, prevExpiring: null, nextExpiring: null };
    const id = this.pending.add(entry);
    entry.id = id;
    if (timesOut(entry)) this.deadlines.arm(entry);
    this.connection.sendFrame(FrameType.CALL, payloadFlags(data), id, prefix, payload);
    return () => this.cancel(id);
  }

  /** Sends a CAST (no reply). Throws ErpsCodecError, ErpsFrameTooLargeError or ErpsSlowConsumerError; nothing is sent then. */
  cast(pattern: WirePattern, meta: Record<string, unknown> | null, data: unknown): void {
    this.refuseIfCongested();
    const payload = payloadBytes(this.codec, data);
    this.connection.sendFrame(FrameType.CAST, payloadFlags(data), 0, this.prefixFor(pattern, meta, payload), payload);
  }

  /** A server that does not read what we send gets no more: the message fails here, never sent, never buffered. */
  private refuseIfCongested(): void {
    const connection = this.connection;
    if (!connection.congested) return;
    const buffered = connection.writeBufferedBytes;
    throw new ErpsSlowConsumerError(`the server is not reading: ${buffered} bytes wait to be sent (maxWriteBufferBytes); message not sent`, buffered, connection.maxWriteBufferBytes);
  }

  /**
   * The body prefix of a CALL/CAST. A body the server would refuse (above the maxFrameBytes from its WELCOME) fails
   * here, for this message only, instead of making the server close the connection under every other call.
   */
  private prefixFor(pattern: WirePattern, meta: Record<string, unknown> | null, payload: Buffer): Buffer {
    const prefix = meta === null ? pattern.barePrefix : encodeMessagePrefix(pattern.bytes, this.codec.encode(meta));
    const length = prefix.length + payload.length;
    if (length > this.peerMaxFrameBytes) throw new ErpsFrameTooLargeError(length, this.peerMaxFrameBytes);
    return prefix;
  }

  /** Fails what is pending with `reason`, closes cleanly, resolves once the socket is gone. */
  shutdown(reason: Error): Promise<void> {
    this.failAll(reason);
    const socket = this.connection.socket;
    const gone = socket.closed ? Promise.resolve() : new Promise<void>((resolve) => socket.once('close', () => resolve()));
    this.connection.close();
    return gone;
  }

  private cancel(id: number): void {
    const entry = this.pending.get(id);
    if (entry === undefined) return;
    this.settle(id, entry);
    this.connection.send(FrameType.CANCEL, 0, id);
  }

  private expire(entry: PendingCall): void {
    if (this.pending.get(entry.id) !== entry) return;
    this.cancel(entry.id);
    entry.observer.error(new ErpsTimeoutError(entry.timeoutMs));
  }

  private settle(id: number, entry: PendingCall): void {
    this.pending.delete(id);
    this.deadlines.disarm(entry);
  }

  private onFrame(frame: Frame): void {
    switch (frame.type) {
      case FrameType.REPLY:
        return this.onReply(frame);
      case FrameType.ERROR:
        return this.onError(frame);
      case FrameType.PUSH: {
        const message = decodeMessageBody(frame.source, frame.start, frame.end, this.pushPatterns);
        return this.events.push(message.pattern, decodePayload(this.codec, frame.source, message.payloadStart, frame.end, frame.flags));
      }
      case FrameType.GOAWAY:
        this.goingAway = true;
        return this.events.goaway(this);
      default:
        // Unknown-but-valid frame types from a newer server are ignored; the decoder already rejected garbage.
        return;
    }
  }

  private onReply(frame: Frame): void {
    const entry = this.pending.get(frame.id);
    if (entry === undefined) return; // cancelled or timed out: late replies are dropped
    const more = (frame.flags & FrameFlags.MORE) !== 0;
    if ((frame.flags & FrameFlags.NO_VALUE) !== 0) {
      this.settle(frame.id, entry);
      entry.observer.complete();
      return;
    }
    let value: unknown;
    try {
      value = decodePayload(this.codec, frame.source, frame.start, frame.end, frame.flags);
    } catch (err) {
      if (more) this.cancel(frame.id);
      else this.settle(frame.id, entry);
      entry.observer.error(err instanceof ErpsCodecError ? err : new ErpsCodecError(describeError(err), err));
      return;
    }
    if (more) {
      if (timesOut(entry)) this.deadlines.arm(entry);
      entry.observer.next(value);
    } else {
      this.settle(frame.id, entry);
      entry.observer.next(value);
      entry.observer.complete();
    }
  }

  private onError(frame: Frame): void {
    const entry = this.pending.get(frame.id);
    if (entry === undefined) return;
    this.settle(frame.id, entry);
    let err: unknown;
    try {
      err = this.codec.decode(frame.source, frame.start, frame.end);
    } catch (decodeErr) {
      err = new ErpsCodecError(`undecodable error reply: ${describeError(decodeErr)}`, decodeErr);
    }
    entry.observer.error(err);
  }

  private onClose(reason: Error | undefined): void {
    const lost = new ErpsConnectionLostError(reason ? `Erps connection lost while the call was in flight: ${describeError(reason)}` : undefined, reason);
    this.failAll(lost);
    this.events.closed(this, reason);
  }

  private failAll(err: Error): void {
    this.deadlines.clear();
    for (const entry of this.pending.drain()) entry.observer.error(err);
  }
}

/** 0 (or Infinity) means no timeout. */
function timesOut(entry: PendingCall): boolean {
  return entry.timeoutMs > 0 && Number.isFinite(entry.timeoutMs);
}

function noop(): void {}
