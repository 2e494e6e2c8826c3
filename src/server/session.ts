import type { ServerConfig } from '../config/server-config.js';
import type { Duplex } from 'node:stream';
import { ErpsConnection, ConnectionOptions } from '../connection/connection.js';
import { ErpsHeadersError, ErpsProtocolError, describeError, errorReply } from '../errors/index.js';
import { createCodec, PayloadCodec } from '../protocol/codec.js';
import { OutgoingPush } from './outgoing-push.js';
import { ActiveCalls } from './active-calls.js';
import { Frame, FrameType, PartialFrameBudget } from '../protocol/frame.js';
import { checkHello, decodeHello, encodeReject, encodeWelcome, HandshakePolicy, Reject, RejectCode, WIRE_VERSION } from '../protocol/handshake.js';
import { decodeMessageBody, MessageBody, PatternCache } from '../protocol/message.js';
import { decodePayload } from '../protocol/payload.js';
import { splitMeta, SplitMeta } from '../protocol/headers.js';
import { ErpsHealthStatus, HEALTH_PATTERN, healthRequestService } from '../protocol/health.js';
import { algorithmFromFeatures, COMPRESSION_FEATURES, FrameCompressor } from '../connection/compression.js';
import type { PeerIdentity } from '../tls/peer-identity.js';
import { debug } from '../debug.js';
import { CallReply } from './call-reply.js';
import type { ErpsPushChannel, ErpsSessionInfo } from './session-info.js';

/** What a session needs from the daemon that owns it (ErpsServer implements this). */
export interface SessionHost {
  readonly policy: HandshakePolicy;
  readonly connectionOptions: Required<ConnectionOptions>;
  readonly handshakeTimeoutMs: number;
  /** Compression this server allows (threshold in bytes); undefined = off. */
  readonly compressionThreshold: number | undefined;
  readonly limits: ServerConfig['limits'];
  /** Where incomplete incoming frames of every session reserve their bytes. */
  readonly partialFrames: PartialFrameBudget;
  /** Whether this connection may proceed (allowPeers, maxConnections): null, or the REJECT to send. */
  admit(session: ServerSession): Reject | null;
  /** The message handler for a CALL to `pattern` (opaque to the session), or null if there is none. */
  findCallHandler(pattern: string): CallTarget | null;
  invokeCall(target: CallTarget, message: InboundMessage, reply: CallReply): void;
  invokeEvent(message: InboundMessage): void;
  /** A CAST could not be delivered (a cast has no reply, so the server only logs it). */
  castDropped(pattern: string, reason: string): void;
  sessionOpened(session: ServerSession): void;
  /** Every session ends here once; `opened` tells whether its handshake had succeeded. */
  sessionClosed(session: ServerSession, reason: Error | undefined, opened: boolean): void;
  handshakeRejected(session: ServerSession, reject: Reject): void;
  /** The health service's answer for `service` ('' = the server as a whole). */
  servingStatus(service: string): ErpsHealthStatus;
}

/** What a host found for a CALL pattern; the session only hands it back to `invokeCall`. */
export type CallTarget = object;

/** A decoded CALL or CAST and the session it came over. */
export interface InboundMessage {
  pattern: string;
  data: unknown;
  meta: SplitMeta;
  session: ServerSession;
}

export interface SessionEndpoint {
  socket: Duplex;
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  peer: PeerIdentity | undefined;
  remote: boolean;
  /** What TLS left of handshakeTimeoutMs for HELLO (the deadline runs from the TCP accept). Default: all of it. */
  handshakeMsLeft?: number;
}

type SessionState = 'handshake' | 'open' | 'draining' | 'closed';

const NO_META: SplitMeta = Object.freeze({ headers: Object.freeze({}), hasContext: false, context: undefined });
/** After a drain's running calls are done, how long to wait for the client to close its side (a client that does not). */
const DRAIN_LINGER_MS = 1000;

/** One accepted connection: the Erps server session. Handshake first, then CALL / CAST / CANCEL. */
export class ServerSession implements ErpsPushChannel {
  readonly connection: ErpsConnection;
  readonly info: ErpsSessionInfo;
  private state: SessionState = 'handshake';
  private codec: PayloadCodec | undefined;
  private readonly active = new ActiveCalls<CallReply>();
  private readonly patterns = new PatternCache();
  private handshakeTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private drained: (() => void) | undefined;
  private readonly finishReply = (reply: CallReply): void => {
    this.active.delete(reply.id);
    if (this.active.size > 0) return;
    // Idle from now, not from the last CALL: the reply just queued must not be cut off by idleTimeoutMs.
    this.idleTimer?.refresh();
    this.drained?.();
  };

  constructor(
    endpoint: SessionEndpoint,
    private readonly host: SessionHost,
  ) {
    this.connection = new ErpsConnection(
      endpoint.socket,
      { onFrame: (frame) => this.onFrame(frame), onClose: (reason) => this.onClose(reason) },
      host.connectionOptions,
      host.partialFrames,
    );
    this.info = Object.freeze({
      connectionId: this.connection.id,
      remoteAddress: endpoint.remoteAddress,
      remotePort: endpoint.remotePort,
      peer: endpoint.peer,
      remote: endpoint.remote,
      connectedAt: new Date(),
    });
    this.handshakeTimer = setTimeout(() => {
      this.connection.close(new ErpsProtocolError(`no HELLO within handshakeTimeoutMs (${host.handshakeTimeoutMs} ms from the TCP accept)`));
    }, endpoint.handshakeMsLeft ?? host.handshakeTimeoutMs);
    this.handshakeTimer.unref();
  }

  get id(): number {
    return this.connection.id;
  }

  /**
   * Erps `Server.push/2`: sends a PUSH to this client. False if the session is not open, or if the client does not
   * keep up with what is sent to it (more than maxWriteBufferBytes unread): the push is skipped, not queued.
   */
  push(pattern: string, data: unknown): boolean {
    return this.pushMessage(new OutgoingPush(pattern, data));
  }

  /** Sends a PUSH built once for many connections (broadcast). */
  pushMessage(message: OutgoingPush): boolean {
    if (this.codec === undefined || this.state === 'closed' || this.connection.closed || this.connection.congested) return false;
    this.connection.sendFrame(FrameType.PUSH, message.flags, 0, message.prefix, message.payloadFor(this.codec));
    return true;
  }

  /** Calls still running on this connection. */
  get inFlight(): number {
    return this.active.size;
  }

  /**
   * Graceful drain: tell the client (GOAWAY) to send nothing new here, let running calls finish for up to
   * `timeoutMs`, then close. Calls the client sent before GOAWAY reached it may still be on their way: once the
   * running calls are done, the session keeps reading (answering those with ERPS_GOAWAY, so the client sends them
   * elsewhere) until the client closes its side, which it does when it has no call left here, or DRAIN_LINGER_MS.
   * Resolves once the connection is closed.
   */
  drain(timeoutMs: number): Promise<void> {
    if (this.state === 'closed') return Promise.resolve();
    if (this.state === 'open') this.connection.send(FrameType.GOAWAY, 0, 0, Buffer.from('server shutting down'));
    // Still handshaking: a REJECT the client retries later (code SHUTTING_DOWN), instead of a silent close.
    if (this.state === 'handshake') this.connection.send(FrameType.REJECT, 0, 0, encodeReject({ code: RejectCode.SHUTTING_DOWN, reason: 'server shutting down; try again later' }));
    const handshaking = this.codec === undefined;
    this.state = 'draining';
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => close(), timeoutMs);
      let linger: NodeJS.Timeout | undefined;
      const close = (): void => {
        clearTimeout(timer);
        clearTimeout(linger);
        this.drained = undefined;
        for (const reply of this.active.values()) reply.cancel();
        this.connection.close();
        resolve();
      };
      this.drained = () => {
        if (this.connection.closed || handshaking) close();
        else if (this.active.size === 0 && linger === undefined) linger = setTimeout(close, DRAIN_LINGER_MS);
      };
      this.drained();
    });
  }

  private onFrame(frame: Frame): void {
    switch (frame.type) {
      case FrameType.CALL:
        return this.onCall(frame);
      case FrameType.CAST:
        return this.onCast(frame);
      case FrameType.CANCEL:
        this.requireOpen('CANCEL');
        return this.active.get(frame.id)?.cancel();
      case FrameType.HELLO:
        return this.onHello(frame);
      default:
        throw new ErpsProtocolError(`unexpected frame type 0x${frame.type.toString(16)} from client`);
    }
  }

  private onHello(frame: Frame): void {
    if (this.state !== 'handshake') throw new ErpsProtocolError('HELLO after the handshake');
    clearTimeout(this.handshakeTimer);
    const hello = decodeHello(frame.body);
    const reject = this.host.admit(this) ?? checkHello(hello, this.host.policy);
    if (reject !== null) {
      this.connection.send(FrameType.REJECT, 0, 0, encodeReject(reject));
      this.host.handshakeRejected(this, reject);
      this.connection.close();
      return;
    }
    this.codec = createCodec(hello.codec, { maxDepth: this.host.limits.maxDepth, maxElements: this.host.limits.maxElements });
    this.state = 'open';
    this.connection.handshakeDone();
    this.startIdleTimer();
    const { keepaliveMs, maxFrameBytes } = this.host.connectionOptions;
    const threshold = this.host.compressionThreshold;
    const features = threshold === undefined ? 0 : hello.features & COMPRESSION_FEATURES;
    this.connection.send(FrameType.WELCOME, 0, 0, encodeWelcome({ wireVersion: WIRE_VERSION, features, keepaliveMs, maxFrameBytes }));
    debug('server: connection %d: HELLO "%s" %s (codec %s) accepted, WELCOME features 0x%s', this.id, hello.identifier, hello.version, hello.codec, features.toString(16));
    const algorithm = algorithmFromFeatures(features);
    if (algorithm !== undefined) this.connection.enableCompression(new FrameCompressor(algorithm, threshold!));
    this.host.sessionOpened(this);
  }

  private requireOpen(what: string): PayloadCodec {
    if (this.codec === undefined) throw new ErpsProtocolError(`${what} before the handshake`);
    return this.codec;
  }

  private onCall(frame: Frame): void {
    const codec = this.requireOpen('CALL');
    const id = frame.id;
    if (this.active.has(id)) throw new ErpsProtocolError(`request id ${id} reused while still pending`);
    const message = decodeMessageBody(frame.source, frame.start, frame.end, this.patterns);
    if (message.pattern === HEALTH_PATTERN) return this.answerHealth(codec, frame, message);
    this.idleTimer?.refresh();
    const reply = new CallReply(this.connection, codec, id, this.finishReply);
    if (this.state !== 'open') {
      reply.error(errorReply('ERPS_GOAWAY', 'server is shutting down'));
      return;
    }
    const { maxInFlightPerConnection } = this.host.limits;
    if (this.active.size >= maxInFlightPerConnection) {
      reply.error(errorReply('ERPS_BUSY', `too many calls in flight on this connection (maxInFlightPerConnection ${maxInFlightPerConnection})`));
      return;
    }
    const target = this.host.findCallHandler(message.pattern);
    if (target === null) {
      reply.error(errorReply('ERPS_NO_HANDLER', `There is no matching message handler defined in the remote service for pattern "${message.pattern}".`));
      return;
    }
    let inbound: InboundMessage;
    try {
      inbound = this.inbound(codec, message, frame);
    } catch (err) {
      reply.error(errorReply(err instanceof ErpsHeadersError ? 'ERPS_HEADERS' : 'ERPS_CODEC', describeError(err)));
      return;
    }
    this.active.add(reply);
    this.host.invokeCall(target, inbound, reply);
  }

  /**
   * The health service (docs/PROTOCOL.md): answered here, draining or not, before every other check. It runs no
   * handler, guard or authorize, is not a call in flight (maxInFlightPerConnection, drain) and does not count as use
   * of the connection (idleTimeoutMs).
   */
  private answerHealth(codec: PayloadCodec, frame: Frame, message: MessageBody): void {
    let service: string | undefined;
    let problem = 'a health check carries { service: string } or nothing';
    try {
      service = healthRequestService(decodePayload(codec, frame.source, message.payloadStart, frame.end, frame.flags));
    } catch (err) {
      problem = describeError(err);
    }
    if (service === undefined) {
      this.connection.send(FrameType.ERROR, 0, frame.id, codec.encode(errorReply('ERPS_CODEC', problem)));
      return;
    }
    this.connection.send(FrameType.REPLY, 0, frame.id, codec.encode({ status: this.host.servingStatus(service) }));
  }

  private onCast(frame: Frame): void {
    const codec = this.requireOpen('CAST');
    const message = decodeMessageBody(frame.source, frame.start, frame.end, this.patterns);
    this.idleTimer?.refresh();
    let inbound: InboundMessage;
    try {
      inbound = this.inbound(codec, message, frame);
    } catch (err) {
      // A cast has no reply: a payload we cannot read is dropped with a log line, the connection goes on.
      this.host.castDropped(message.pattern, `undecodable payload: ${describeError(err)}`);
      return;
    }
    this.host.invokeEvent(inbound);
  }

  /** A CALL/CAST with its payload and metadata decoded; throws ErpsCodecError or ErpsHeadersError. */
  private inbound(codec: PayloadCodec, message: MessageBody, frame: Frame): InboundMessage {
    return {
      pattern: message.pattern,
      session: this,
      data: decodePayload(codec, frame.source, message.payloadStart, frame.end, frame.flags),
      meta: message.meta === null ? NO_META : splitMeta(codec.decode(message.meta)),
    };
  }

  /** Closes the connection when it has carried no CALL/CAST and run nothing for idleTimeoutMs. */
  private startIdleTimer(): void {
    const idleMs = this.host.limits.idleTimeoutMs;
    if (idleMs <= 0) return;
    this.idleTimer = setTimeout(() => {
      if (this.active.size > 0) return this.idleTimer?.refresh();
      this.connection.close(new ErpsProtocolError(`idle for ${idleMs} ms (idleTimeoutMs)`));
    }, idleMs);
    this.idleTimer.unref();
  }

  private onClose(reason: Error | undefined): void {
    clearTimeout(this.handshakeTimer);
    clearTimeout(this.idleTimer);
    this.state = 'closed';
    for (const reply of this.active.values()) reply.cancel();
    this.active.clear();
    this.drained?.();
    this.host.sessionClosed(this, reason, this.codec !== undefined);
  }
}
