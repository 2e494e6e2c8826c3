import type { Duplex } from 'node:stream';
import { ErpsConnectionLostError, ErpsProtocolError, describeError } from '../errors.js';
import { DEFAULT_MAX_FRAME_BYTES, Frame, FrameDecoder, FrameFlags, FrameType } from '../protocol/frame.js';
import { FrameCompressor } from './compression.js';
import { FrameQueue } from './frame-queue.js';

export interface ConnectionOptions {
  /** Largest frame body accepted from the peer (bytes). */
  maxFrameBytes?: number;
  /** Interval between PINGs (ms); 0 turns the heartbeat off. */
  keepaliveMs?: number;
  /** The peer is dead after `keepaliveMs × maxMissedPings` ms without a byte from it. */
  maxMissedPings?: number;
}

/** Connection options with their defaults filled in (both ends use the same defaults). */
export function resolveConnectionOptions(options: ConnectionOptions): Required<ConnectionOptions> {
  return {
    maxFrameBytes: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
    keepaliveMs: options.keepaliveMs ?? 5000,
    maxMissedPings: options.maxMissedPings ?? 2,
  };
}

export interface ConnectionHandlers {
  onFrame(frame: Frame): void;
  /** Called once, after the socket is gone. `reason` is undefined for a clean close. */
  onClose(reason: Error | undefined): void;
}

const EMPTY = Buffer.alloc(0);
/**
 * Frames queued in one tick leave in one write, except that a burst of this many frames (or bytes) is written
 * at once, so the peer starts on the first replies while later ones are still being produced (pipelining
 * instead of lock-step batches; measured best between 24 and 48 frames).
 */
const EARLY_FLUSH_FRAMES = 24;
const EARLY_FLUSH_BYTES = 64 * 1024;

let nextConnectionId = 1;

/**
 * One socket: framing, write coalescing, heartbeat and close reasons. It knows frames, never patterns:
 * the server session and the client decide what frames mean.
 */
export class ErpsConnection {
  readonly id = nextConnectionId++;
  private readonly decoder: FrameDecoder;
  private readonly queue = new FrameQueue();
  private flushScheduled = false;
  private closedFlag = false;
  private lastReceived = Date.now();
  private nextPingAt = 0;
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly keepaliveMs: number;
  private readonly deadAfterMs: number;
  private handlers: ConnectionHandlers;
  private compressor: FrameCompressor | undefined;
  private held: { frames: Frame[]; closed: boolean; reason: Error | undefined } | undefined;
  private readonly maxFrameBytes: number;

  constructor(
    readonly socket: Duplex,
    handlers: ConnectionHandlers,
    options: ConnectionOptions = {},
  ) {
    this.handlers = handlers;
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.decoder = new FrameDecoder((frame) => this.receive(frame), this.maxFrameBytes);
    this.keepaliveMs = options.keepaliveMs ?? 0;
    this.deadAfterMs = this.keepaliveMs * (options.maxMissedPings ?? 2);
    socket.on('data', this.onData);
    socket.on('error', this.onError);
    socket.on('close', this.onSocketClose);
    socket.on('end', this.onEnd);
    if (this.keepaliveMs > 0) this.startHeartbeat();
  }

  get closed(): boolean {
    return this.closedFlag;
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

  /** Queues a whole frame; all frames queued in one tick leave in one write. */
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
    if (this.queue.frames >= EARLY_FLUSH_FRAMES || this.queue.bytes >= EARLY_FLUSH_BYTES) {
      this.flush();
    } else if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(this.flush);
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
    if (this.queue.frames === 0 || this.socket.destroyed) return;
    const chunks = this.queue.take();
    if (chunks.length === 1) {
      this.socket.write(chunks[0]);
    } else {
      this.socket.cork();
      for (const chunk of chunks) this.socket.write(chunk);
      this.socket.uncork();
    }
  };

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
    if (frame.type === FrameType.PONG) return;
    this.handlers.onFrame(frame);
  }

  private readonly onData = (chunk: Buffer): void => {
    this.lastReceived = Date.now();
    if (this.closedFlag) return;
    try {
      this.decoder.push(chunk);
    } catch (err) {
      const reason = err instanceof ErpsProtocolError ? err : new ErpsProtocolError(`frame handling failed: ${describeError(err)}`);
      this.close(reason);
    }
  };

  private readonly onError = (err: Error): void => {
    this.finish(new ErpsConnectionLostError(`socket error: ${err.message}`, err));
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
    this.queue.clear();
    if (this.heartbeat !== undefined) clearTimeout(this.heartbeat);
    if (this.held !== undefined) {
      this.held.closed = true;
      this.held.reason = reason;
      return;
    }
    this.handlers.onClose(reason);
  }

  private startHeartbeat(): void {
    this.nextPingAt = Date.now() + this.keepaliveMs;
    this.scheduleHeartbeat();
  }

  private scheduleHeartbeat(): void {
    const now = Date.now();
    const wakeAt = Math.min(this.nextPingAt, this.lastReceived + this.deadAfterMs);
    this.heartbeat = setTimeout(this.onHeartbeat, Math.max(1, wakeAt - now));
    this.heartbeat.unref();
  }

  private readonly onHeartbeat = (): void => {
    if (this.closedFlag) return;
    const now = Date.now();
    const silentFor = now - this.lastReceived;
    if (silentFor >= this.deadAfterMs) {
      this.close(new ErpsConnectionLostError(`peer silent for ${silentFor} ms (keepalive ${this.keepaliveMs} ms): declared dead`));
      return;
    }
    if (now >= this.nextPingAt) {
      this.send(FrameType.PING, 0, 0);
      this.nextPingAt = now + this.keepaliveMs;
    }
    this.scheduleHeartbeat();
  };
}
