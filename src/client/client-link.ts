import { performance } from 'node:perf_hooks';
import type { ErpsConnection } from '../connection/connection.js';
import { ErpsCodecError, ErpsConnectionLostError, ErpsFrameTooLargeError, ErpsSlowConsumerError, ErpsTimeoutError, describeError, isRetryable } from '../errors/index.js';
import type { PayloadCodec } from '../protocol/codec.js';
import { Frame, FrameFlags, FrameType } from '../protocol/frame.js';
import { decodeMessageBody, encodeMessagePrefix, PatternCache, WirePattern } from '../protocol/message.js';
import { decodePayload, payloadBytes, payloadFlags } from '../protocol/payload.js';
import { PendingCalls } from './pending-calls.js';
import { CallDeadlines } from './call-deadlines.js';
import type { CallCarrier, OutgoingCall } from './outgoing-call.js';

export type { CallObserver } from './outgoing-call.js';

/** The endpoint a link belongs to, as the link sees it: the failure streak outlier detection reads. */
export interface LinkOwner {
  /** Undefined for a link that belongs to no endpoint (tests, the CLI's single connection). */
  readonly address?: { host: string; port: number };
  /** Calls in a row that failed with a transport error or a timeout; any reply resets it. */
  consecutiveFailures: number;
}

export interface LinkEvents {
  /** The server sent GOAWAY: no new calls on this link; the ones in flight still get their replies. */
  goaway(link: ClientLink): void;
  closed(link: ClientLink, reason: Error | undefined): void;
  push(pattern: string, data: unknown): void;
  /**
   * `call` failed here before it produced a value: refused before dispatch (`written` false for a frame that never
   * left, or an ERPS_BUSY/ERPS_GOAWAY reply), or its connection died after it was written (`written`). Returns true
   * if it was sent again elsewhere; false leaves the error to the caller.
   */
  resend(call: OutgoingCall, from: ClientLink, err: unknown, written: boolean): boolean;
  /** A call failed with a transport error or timed out (the owner's streak has been counted). */
  callFailed(link: ClientLink): void;
}

/**
 * One established (handshaken) client connection: its pending-call table and the meaning of the
 * frames the server sends back. The channel picks the link that carries a call; the endpoint owns it.
 */
export class ClientLink implements CallCarrier {
  private readonly pending = new PendingCalls<OutgoingCall>();
  private readonly deadlines = new CallDeadlines<OutgoingCall>((call) => this.expire(call));
  private goingAway = false;
  /** Retired: closes once the last pending call settles. */
  private retiring = false;
  private readonly pushPatterns = new PatternCache();
  /** Calls sent over this link, resends included. */
  callsSent = 0;
  /**
   * Reply latency (ms), a peak-sensitive moving average: a slower reply raises it at once, faster ones pull it down
   * gradually. Only measured while `timed` (the channel sets it when a latency-aware balancer has a choice to make).
   */
  latencyMs = 1;
  timed = false;

  constructor(
    readonly connection: ErpsConnection,
    private readonly codec: PayloadCodec,
    /** The server's maxFrameBytes, from its WELCOME. */
    private readonly peerMaxFrameBytes: number,
    private readonly events: LinkEvents,
    readonly owner: LinkOwner = { consecutiveFailures: 0 },
  ) {
    connection.setHandlers({ onFrame: (frame) => this.onFrame(frame), onClose: (reason) => this.onClose(reason) });
    connection.earlyFlushFrames = CLIENT_EARLY_FLUSH_FRAMES;
    connection.flushAtEndOfTurn = true;
  }

  /** Accepts new calls: open and not told to go away. */
  get usable(): boolean {
    return !this.goingAway && !this.connection.closed;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  get endpoint(): { host: string; port: number } | undefined {
    const address = this.owner.address;
    return address === undefined ? undefined : { host: address.host, port: address.port };
  }

  /**
   * Sends a CALL; `call.unsubscribe()` cancels it (sends CANCEL while it is still pending). `call.timeoutMs` bounds
   * the wait for the first reply and between the values of a stream.
   */
  call(call: OutgoingCall): void {
    let prefix: Buffer;
    let payload: Buffer;
    try {
      this.refuseIfCongested();
      payload = payloadBytes(this.codec, call.data);
      prefix = this.prefixFor(call.pattern, call.meta, payload);
    } catch (err) {
      // A server that does not read refuses the call before it is sent: another endpoint may take it.
      if (err instanceof ErpsSlowConsumerError && !call.answered && this.events.resend(call, this, err, false)) return;
      call.observer.error(err);
      return;
    }
    const id = this.pending.add(call);
    call.id = id;
    call.carrier = this;
    if (timesOut(call)) {
      this.deadlines.arm(call);
      if (call.deadline === 0) call.deadline = call.expiresAt;
    } else if (call.deadline === 0) {
      call.deadline = Infinity;
    }
    this.callsSent++;
    this.connection.sendFrame(FrameType.CALL, payloadFlags(call.data), id, prefix, payload);
  }

  /** No new calls; the connection closes once the calls in flight are answered (an endpoint left the fleet). */
  retire(): void {
    this.goingAway = true;
    if (this.pending.size === 0) this.connection.close();
    else this.retiring = true;
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

  cancel(call: OutgoingCall): void {
    if (this.pending.get(call.id) !== call) return;
    this.settle(call);
    this.connection.send(FrameType.CANCEL, 0, call.id);
  }

  private expire(call: OutgoingCall): void {
    if (this.pending.get(call.id) !== call) return;
    this.cancel(call);
    this.owner.consecutiveFailures++;
    this.events.callFailed(this);
    call.observer.error(new ErpsTimeoutError(call.timeoutMs));
  }

  private settle(call: OutgoingCall): void {
    this.pending.delete(call.id);
    this.deadlines.disarm(call);
    if (this.retiring && this.pending.size === 0) this.connection.close();
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
        // Closing our side once our calls here are answered tells the draining server that nothing more is coming.
        this.retire();
        return this.events.goaway(this);
      default:
        // Unknown-but-valid frame types from a newer server are ignored; the decoder already rejected garbage.
        return;
    }
  }

  private onReply(frame: Frame): void {
    const entry = this.pending.get(frame.id);
    if (entry === undefined) return; // cancelled or timed out: late replies are dropped
    if (this.timed) this.observeLatency(entry);
    this.owner.consecutiveFailures = 0;
    entry.answered = true;
    const more = (frame.flags & FrameFlags.MORE) !== 0;
    if ((frame.flags & FrameFlags.NO_VALUE) !== 0) {
      this.settle(entry);
      entry.observer.complete();
      return;
    }
    let value: unknown;
    try {
      value = decodePayload(this.codec, frame.source, frame.start, frame.end, frame.flags);
    } catch (err) {
      if (more) this.cancel(entry);
      else this.settle(entry);
      entry.observer.error(err instanceof ErpsCodecError ? err : new ErpsCodecError(describeError(err), err));
      return;
    }
    if (more) {
      if (timesOut(entry)) this.deadlines.arm(entry);
      entry.observer.next(value);
    } else {
      this.settle(entry);
      entry.observer.next(value);
      entry.observer.complete();
    }
  }

  private onError(frame: Frame): void {
    const entry = this.pending.get(frame.id);
    if (entry === undefined) return;
    if (this.timed) this.observeLatency(entry);
    this.settle(entry);
    let err: unknown;
    try {
      err = this.codec.decode(frame.source, frame.start, frame.end);
    } catch (decodeErr) {
      err = new ErpsCodecError(`undecodable error reply: ${describeError(decodeErr)}`, decodeErr);
    }
    // ERPS_BUSY / ERPS_GOAWAY: refused before dispatch, so another endpoint may take it. Any other reply is an answer.
    if (!entry.answered && isRetryable(err)) {
      if (this.events.resend(entry, this, err, false)) return;
    } else {
      this.owner.consecutiveFailures = 0;
    }
    entry.observer.error(err);
  }

  /** The time since the call was sent (or since its last stream value), from its armed deadline: no clock read at send. */
  private observeLatency(call: OutgoingCall): void {
    if (call.expiresAt === 0) return; // no timeout, so no send time to measure from
    const sample = performance.now() - (call.expiresAt - call.timeoutMs);
    this.latencyMs = sample > this.latencyMs ? sample : this.latencyMs + (sample - this.latencyMs) * LATENCY_DECAY;
  }

  private onClose(reason: Error | undefined): void {
    const calls = this.pending.drain();
    this.deadlines.clear();
    if (calls.length > 0) this.owner.consecutiveFailures++;
    // Out of the channel's ready set first, so nothing is resent over this link.
    this.events.closed(this, reason);
    if (calls.length === 0) return;
    this.events.callFailed(this);
    const neverSent = this.connection.unsentCallIds;
    const lost = new ErpsConnectionLostError(reason ? `Erps connection lost while the call was in flight: ${describeError(reason)}` : undefined, reason);
    for (const call of calls) {
      const written = !neverSent.has(call.id);
      if (!call.answered && (!written || call.idempotent) && this.events.resend(call, this, lost, written)) continue;
      call.observer.error(lost);
    }
  }

  private failAll(err: Error): void {
    this.deadlines.clear();
    for (const entry of this.pending.drain()) entry.observer.error(err);
  }
}

/**
 * The client's bursts (the calls made in answer to one read of replies, a loop of casts) leave in one write up to this
 * many frames (or the connection's byte threshold) instead of one write per 24 frames: fewer socket writes, and the
 * server, whose replies keep the early flush, loses no pipelining over it (bench: casts ~0.85-0.9x client CPU, echo100
 * calls/s level).
 */
const CLIENT_EARLY_FLUSH_FRAMES = 256;

/** How far each faster reply pulls the latency average down. */
const LATENCY_DECAY = 0.2;

/** 0 (or Infinity) means no timeout. */
function timesOut(call: OutgoingCall): boolean {
  return call.timeoutMs > 0 && Number.isFinite(call.timeoutMs);
}
