/*
 * Over 300 lines on purpose: ErpsConnection is one socket's whole life (reading frames, writing with flow control,
 * the heartbeat, closing once), and each of those reacts to the others' state on the same socket events. The logic
 * that stands alone lives beside it: FrameDecoder, FrameQueue, Heartbeat, LazyDeadline, ByteBudget.
 */
import type { Duplex } from 'node:stream';
import { ErpsConnectionLostError, ErpsError, ErpsProtocolError, ErpsSlowConsumerError, describeError } from '../errors/index.js';
import { EMPTY, Frame, FrameDecoder, FrameFlags, FrameType, HANDSHAKE_MAX_FRAME_BYTES, PartialFrameBudget } from '../protocol/frame.js';
import { FrameCompressor } from './compression.js';
import { FrameQueue } from './frame-queue.js';
import { Heartbeat } from './heartbeat.js';
import { LazyDeadline } from './lazy-deadline.js';
import { CONNECTION_DEFAULTS } from '../config/defaults.js';

export interface ConnectionOptions {
  /** Largest frame body accepted from the peer once the handshake is done (bytes). */
  maxFrameBytes?: number;
  /** Interval between PINGs (ms); 0 turns the heartbeat off. */
  keepaliveMs?: number;
  /** The peer is dead when it has answered none of our PINGs for `keepaliveMs × maxMissedPings` ms. */
  maxMissedPings?: number;
  /**
   * Soft limit on bytes written but not yet taken by the socket. Above it the connection is congested (pushes skip
   * it, the client refuses new calls); above 4× it, or above it for `slowConsumerTimeoutMs`, it is closed.
   */
  maxWriteBufferBytes?: number;
  /** How long the write buffer may stay above `maxWriteBufferBytes` before the connection is closed (ms). */
  slowConsumerTimeoutMs?: number;
  /** A frame that has started must complete within this (ms), or the connection is closed. */
  frameTimeoutMs?: number;
}

/** The hard limit of the write buffer, as a multiple of maxWriteBufferBytes: past it the connection closes at once. */
export const WRITE_BUFFER_HARD_FACTOR = 4;

/** Connection options with their defaults filled in (both ends use the same defaults). */
export function resolveConnectionOptions(options: ConnectionOptions): Required<ConnectionOptions> {
  return {
    maxFrameBytes: options.maxFrameBytes ?? CONNECTION_DEFAULTS.maxFrameBytes,
    keepaliveMs: options.keepaliveMs ?? CONNECTION_DEFAULTS.keepaliveMs,
    maxMissedPings: options.maxMissedPings ?? CONNECTION_DEFAULTS.maxMissedPings,
    maxWriteBufferBytes: options.maxWriteBufferBytes ?? CONNECTION_DEFAULTS.maxWriteBufferBytes,
    slowConsumerTimeoutMs: options.slowConsumerTimeoutMs ?? CONNECTION_DEFAULTS.slowConsumerTimeoutMs,
    frameTimeoutMs: options.frameTimeoutMs ?? CONNECTION_DEFAULTS.frameTimeoutMs,
  };
}

export interface ConnectionHandlers {
  onFrame(frame: Frame): void;
  /** Called once, after the socket is gone. `reason` is undefined for a clean close. */
  onClose(reason: Error | undefined): void;
}

/**
 * Frames queued in one tick leave in one write, except that a burst of this many frames (or bytes) is written
 * at once, so the peer starts on the first replies while later ones are still being produced (pipelining
 * instead of lock-step batches; measured best between 24 and 48 frames).
 */
const EARLY_FLUSH_FRAMES = 24;
const EARLY_FLUSH_BYTES = 64 * 1024;
const NO_IDS: ReadonlySet<number> = new Set();

let nextConnectionId = 1;

/**
 * One socket: framing, write coalescing, heartbeat and close reasons. It knows frames, never patterns:
 * the server session and the client decide what frames mean.
 */
export class ErpsConnection {
  readonly id = nextConnectionId++;
  private readonly decoder: FrameDecoder;
  private readonly queue = new FrameQueue();
  private unsentCalls: ReadonlySet<number> = NO_IDS;
  private flushScheduled = false;
  /** write() said the socket has enough: frames wait in `queue` until 'drain'. */
  private awaitingDrain = false;
  private closedFlag = false;
  private readonly heartbeat: Heartbeat | undefined;
  private handlers: ConnectionHandlers;
  private compressor: FrameCompressor | undefined;
  private held: { frames: Frame[]; closed: boolean; reason: Error | undefined } | undefined;
  private readonly maxFrameBytes: number;
  readonly maxWriteBufferBytes: number;
  /** The write buffer went above maxWriteBufferBytes and has not drained since. */
  private overSoftLimit = false;
  private readonly slowConsumerDeadline: LazyDeadline;
  /** The incomplete frame being timed: framesCompleted when it started. */
  private partialFrameMark = -1;
  private readonly frameDeadline: LazyDeadline;
  /**
   * Hears the id of every PONG (the heartbeat hears of it first). The peer answers a PING with a PONG of the same id:
   * PINGs sent with ids of one's own measure round trips (the heartbeat's use id 0).
   */
  onPong: ((id: number) => void) | undefined = undefined;
  /** A burst of this many queued frames is written at once (EARLY_FLUSH_FRAMES unless the owner sets another). */
  earlyFlushFrames = EARLY_FLUSH_FRAMES;
  /**
   * True: the write waits for the end of the event loop's turn (setImmediate) instead of the end of the tick. One
   * socket read can carry several TLS records, each a 'data' event with ticks run after it: a client that answers
   * replies with new calls then writes once per read, not once per record (~40 % fewer writes at 100 calls in flight).
   * A server keeps tick-end writes: deferring its replies delays them behind the rest of the read (casts followed by a
   * call ran ~15 % slower).
   */
  flushAtEndOfTurn = false;

  /**
   * Until handshakeDone(), frames above HANDSHAKE_MAX_FRAME_BYTES are refused at their header. Bytes of frames split
   * across reads are reserved from `partialFrames` (shared by many connections) when given.
   */
  constructor(
    readonly socket: Duplex,
    handlers: ConnectionHandlers,
    options: ConnectionOptions = {},
    partialFrames?: PartialFrameBudget,
  ) {
    const resolved = resolveConnectionOptions(options);
    this.handlers = handlers;
    this.maxFrameBytes = resolved.maxFrameBytes;
    this.maxWriteBufferBytes = resolved.maxWriteBufferBytes;
    const { slowConsumerTimeoutMs, frameTimeoutMs } = resolved;
    this.slowConsumerDeadline = new LazyDeadline(
      slowConsumerTimeoutMs,
      () => !this.closedFlag && this.overSoftLimit,
      (overFor) => this.close(this.slowConsumer(this.writeBufferedBytes, `above maxWriteBufferBytes for ${overFor} ms (slowConsumerTimeoutMs ${slowConsumerTimeoutMs})`)),
    );
    this.frameDeadline = new LazyDeadline(
      frameTimeoutMs,
      () => !this.closedFlag && this.decoder.inFrame && this.partialFrameMark === this.decoder.framesCompleted,
      (waited) => this.close(new ErpsProtocolError(`frame incomplete after ${waited} ms (frameTimeoutMs ${frameTimeoutMs}; ${this.decoder.bufferedBytes} bytes held)`)),
    );
    this.decoder = new FrameDecoder((frame) => this.receive(frame), Math.min(HANDSHAKE_MAX_FRAME_BYTES, this.maxFrameBytes), partialFrames);
    socket.on('data', this.onData);
    socket.on('error', this.onError);
    socket.on('close', this.onSocketClose);
    socket.on('end', this.onEnd);
    socket.on('drain', this.onDrain);
    const keepaliveMs = resolved.keepaliveMs;
    if (keepaliveMs > 0) {
      this.heartbeat = new Heartbeat(
        keepaliveMs,
        resolved.maxMissedPings,
        () => this.send(FrameType.PING, 0, 0),
        (silentFor) => this.close(new ErpsConnectionLostError(`peer answered no PING for ${silentFor} ms (keepalive ${keepaliveMs} ms): declared dead`)),
      );
    }
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** The handshake succeeded: frames up to maxFrameBytes are accepted from now on. */
  handshakeDone(): void {
    this.decoder.setMaxFrameBytes(this.maxFrameBytes);
  }

  /**
   * After the close: the ids of the CALL frames that were still queued, never handed to the socket. Those calls
   * provably never reached the server.
   */
  get unsentCallIds(): ReadonlySet<number> {
    return this.unsentCalls;
  }

  /** Bytes written but not yet taken by the socket: queued frames plus the socket's own buffer. */
  get writeBufferedBytes(): number {
    return this.queue.bytes + this.socket.writableLength;
  }

  /** The peer is not keeping up: more than maxWriteBufferBytes wait for its socket. */
  get congested(): boolean {
    return this.awaitingDrain && this.writeBufferedBytes > this.maxWriteBufferBytes;
  }

  /** Bytes held for an incomplete incoming frame. */
  get partialFrameBytes(): number {
    return this.decoder.bufferedBytes;
  }

  /** Replaces the frame/close handlers (the client swaps them once the handshake is done). */
  setHandlers(handlers: ConnectionHandlers): void {
    this.handlers = handlers;
    const held = this.held;
    this.held = undefined;
    if (held === undefined) return;
    try {
      for (const frame of held.frames) this.receive(frame);
    } catch (err) {
      this.close(err instanceof Error ? err : new ErpsProtocolError(describeError(err)));
    }
    if (held.closed) this.handlers.onClose(held.reason);
  }

  /**
   * Keeps frames (and the close) that arrive from now on until the next setHandlers(), which replays them:
   * a hand-over between two owners, e.g. a PUSH in the same read as WELCOME, before the client link exists.
   */
  hold(): void {
    this.held = { frames: [], closed: false, reason: undefined };
  }

  /** Queues a whole frame; all frames queued in one tick (or turn, flushAtEndOfTurn) leave in one write. */
  send(type: FrameType, flags: number, id: number, body: Buffer = EMPTY): void {
    this.sendFrame(type, flags, id, EMPTY, body);
  }

  /**
   * Queues a frame whose body is `prefix` followed by `payload` (neither is copied unless compressed).
   * Bodies above the negotiated compression threshold are compressed and flagged.
   */
  sendFrame(type: FrameType, flags: number, id: number, prefix: Buffer, payload: Buffer): void {
    if (this.closedFlag) return;
    const compressor = this.compressor;
    if (compressor !== undefined && compressor.wants(type, prefix.length + payload.length)) {
      this.queue.push(type, flags | FrameFlags.COMPRESSED, id, EMPTY, compressor.compress(prefix, payload));
    } else {
      this.queue.push(type, flags, id, prefix, payload);
    }
    if (this.awaitingDrain) {
      this.checkWriteBuffer();
      return;
    }
    if (this.queue.frames >= this.earlyFlushFrames || this.queue.bytes >= EARLY_FLUSH_BYTES) {
      this.flush();
    } else if (!this.flushScheduled) {
      this.flushScheduled = true;
      if (this.flushAtEndOfTurn) setImmediate(this.flush);
      else process.nextTick(this.flush);
    }
  }

  /** Turns per-frame compression on (after the handshake negotiated it). */
  enableCompression(compressor: FrameCompressor): void {
    this.compressor = compressor;
  }

  /**
   * Closes the connection. With no reason it is a clean close: queued frames are flushed and the socket
   * ended; with a reason the socket is destroyed at once.
   */
  close(reason?: Error): void {
    if (this.closedFlag) return;
    if (reason === undefined) {
      this.flush();
      this.socket.end();
      this.finish(undefined);
      // A peer that never answers our FIN must not keep the socket forever.
      setTimeout(() => this.socket.destroy(), 2000).unref();
    } else {
      this.finish(reason);
      this.socket.destroy();
    }
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    if (this.queue.frames === 0 || this.awaitingDrain || this.socket.destroyed) return;
    const chunks = this.queue.take();
    let more: boolean;
    if (chunks.length === 1) {
      more = this.socket.write(chunks[0]);
    } else {
      this.socket.cork();
      more = true;
      for (const chunk of chunks) more = this.socket.write(chunk);
      this.socket.uncork();
    }
    if (!more) {
      this.awaitingDrain = true;
      this.checkWriteBuffer();
    }
  };

  private readonly onDrain = (): void => {
    if (!this.awaitingDrain) return;
    this.awaitingDrain = false;
    this.overSoftLimit = false;
    if (this.queue.frames > 0) this.flush();
  };

  /**
   * While writes wait for 'drain': past the hard limit the peer is a slow consumer at once; above the soft limit it
   * has slowConsumerTimeoutMs to catch up (Redis's client-output-buffer-limit does the same).
   */
  private checkWriteBuffer(): void {
    const buffered = this.writeBufferedBytes;
    if (buffered <= this.maxWriteBufferBytes) return;
    if (buffered > WRITE_BUFFER_HARD_FACTOR * this.maxWriteBufferBytes) {
      this.close(this.slowConsumer(buffered, `more than ${WRITE_BUFFER_HARD_FACTOR} × maxWriteBufferBytes`));
      return;
    }
    if (this.overSoftLimit) return;
    this.overSoftLimit = true;
    this.slowConsumerDeadline.start();
  }

  private slowConsumer(buffered: number, why: string): ErpsSlowConsumerError {
    return new ErpsSlowConsumerError(
      `slow consumer: the peer does not read what is sent to it (${buffered} bytes waiting, ${why}, maxWriteBufferBytes ${this.maxWriteBufferBytes})`,
      buffered,
      this.maxWriteBufferBytes,
    );
  }

  private receive(frame: Frame): void {
    if (this.held !== undefined) {
      this.held.frames.push(frame);
      return;
    }
    if ((frame.flags & FrameFlags.COMPRESSED) !== 0) {
      if (this.compressor === undefined) throw new ErpsProtocolError('compressed frame, but compression was not negotiated');
      frame = Frame.of(frame.type, frame.flags & ~FrameFlags.COMPRESSED, frame.id, this.compressor.decompress(frame.body, this.maxFrameBytes));
    }
    if (frame.type === FrameType.PING) {
      this.send(FrameType.PONG, 0, frame.id);
      return;
    }
    if (frame.type === FrameType.PONG) {
      this.heartbeat?.pong();
      this.onPong?.(frame.id);
      return;
    }
    this.handlers.onFrame(frame);
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.closedFlag) return;
    try {
      this.decoder.push(chunk);
    } catch (err) {
      const reason = err instanceof ErpsError ? err : new ErpsProtocolError(`frame handling failed: ${describeError(err)}`);
      this.close(reason);
      return;
    }
    if (this.decoder.inFrame && this.partialFrameMark !== this.decoder.framesCompleted) this.timePartialFrame();
  };

  /** A frame started in this read and did not complete: it has frameTimeoutMs to do so. */
  private timePartialFrame(): void {
    this.partialFrameMark = this.decoder.framesCompleted;
    this.frameDeadline.start();
  }

  private readonly onError = (err: Error): void => {
    this.finish(new ErpsConnectionLostError(`socket error: ${err.message}`, err));
    // Some TLS errors (a refused renegotiation, Node's ERR_TLS_SESSION_ATTACK) arrive on a socket left open.
    this.socket.destroy();
  };

  private readonly onEnd = (): void => {
    // The peer ended its side: answer with ours so the socket closes on both ends.
    if (!this.closedFlag) this.socket.end();
  };

  private readonly onSocketClose = (): void => {
    this.finish(this.closedFlag ? undefined : new ErpsConnectionLostError('connection closed by peer'));
  };

  private finish(reason: Error | undefined): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.decoder.stop();
    if (this.queue.frames > 0) this.unsentCalls = new Set(this.queue.idsOf(FrameType.CALL));
    this.queue.clear();
    this.heartbeat?.stop();
    this.slowConsumerDeadline.stop();
    this.frameDeadline.stop();
    if (this.held !== undefined) {
      this.held.closed = true;
      this.held.reason = reason;
      return;
    }
    this.handlers.onClose(reason);
  }
}
