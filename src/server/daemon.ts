import { OutgoingPush } from './outgoing-push.js';
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import * as tls from 'node:tls';
import type { ServerConfig } from '../config/server-config.js';
import { TlsReloader } from '../config/transport.js';
import { ByteBudget } from '../connection/byte-budget.js';
import { listenLocal } from '../connection/local-registry.js';
import { ErpsConfigError, ErpsOverloadedError, ErpsSlowConsumerError, ErpsTlsError, describeError } from '../errors/index.js';
import { encodeFrame, FrameType } from '../protocol/frame.js';
import { encodeReject, Reject, RejectCode } from '../protocol/handshake.js';
import { ErpsHealthStatus, ErpsServingStatus, isServingStatus } from '../protocol/health.js';
import { peerIdentityOf } from '../tls/peer-identity.js';
import type { ErpsTlsOptions } from '../tls/tls-options.js';
import { describeTlsFailure, TlsFailure } from '../tls/tls-failure.js';
import { debug, debugEnabled } from '../debug.js';
import { AcceptTimes } from './accept-times.js';
import type { CallReply } from './call-reply.js';
import { RefusalLog } from './refusal-log.js';
import { ErpsConnectionMessage, lifecycleChannels, publishLifecycle, socketBytes } from '../observability/channels.js';
import { CallTarget, InboundMessage, ServerSession, SessionHost } from './session.js';
import type { ErpsSessionInfo } from './session-info.js';
import type { ErpsRefusal, ErpsServerEvent, ErpsServerEvents, ErpsServerStats, ErpsServerStatus } from './server-events.js';

export type { ErpsRefusal, ErpsServerEvent, ErpsServerEvents, ErpsServerStats, ErpsServerStatus } from './server-events.js';

/** Where decoded messages go: the framework adapter finds handlers and runs them. */
export interface MessageRouter {
  findCall(pattern: string): CallTarget | null;
  call(target: CallTarget, message: InboundMessage, reply: CallReply): void;
  cast(message: InboundMessage): void;
}

export interface DaemonLogger {
  log(message: string): void;
  warn(message: string): void;
  error(message: unknown): void;
}

/**
 * The Erps daemon without Nest: listens (mutual TLS, plain TCP or in-process), admits connections, runs one
 * session per connection, keeps the registry that push and broadcast use, and drains on close. What messages mean
 * is the router's business.
 */
export class ErpsDaemon implements SessionHost {
  readonly policy: ServerConfig['policy'];
  readonly connectionOptions: ServerConfig['connection'];
  readonly handshakeTimeoutMs: number;
  readonly compressionThreshold: number | undefined;
  readonly limits: ServerConfig['limits'];
  readonly partialFrames: ByteBudget;
  private readonly events = new EventEmitter();
  /** Open sessions (handshake done), by connection id: what push and broadcast reach. */
  private readonly sessions = new Map<number, ServerSession>();
  /** Sessions accepted and not yet closed, handshaking ones included (maxConnections, drain). */
  private readonly live = new Set<ServerSession>();
  private readonly refusals: RefusalLog;
  private readonly reloader: TlsReloader | undefined;
  private server: net.Server | undefined;
  private stopLocal: (() => void) | undefined;
  private stopWatching: () => void = () => undefined;
  /** TLS only: accept times, so TLS and HELLO share one handshakeTimeoutMs. */
  private acceptTimes: AcceptTimes | undefined;
  private closing: Promise<void> | undefined;
  /** Listening, and not (yet) draining: the overall health status is SERVING. */
  private listening = false;
  /** The health service's statuses, by service name (setServingStatus). */
  private readonly serving = new Map<string, ErpsServingStatus>();

  constructor(
    private readonly config: ServerConfig,
    tlsOptions: ErpsTlsOptions | undefined,
    private readonly router: MessageRouter,
    private readonly logger: DaemonLogger,
    private readonly statusChanged: (status: ErpsServerStatus) => void,
  ) {
    this.policy = config.policy;
    this.connectionOptions = config.connection;
    this.handshakeTimeoutMs = config.handshakeTimeoutMs;
    this.compressionThreshold = config.compressionThreshold;
    this.limits = config.limits;
    this.partialFrames = new ByteBudget(config.maxPartialFrameBytes);
    this.refusals = new RefusalLog((line) => logger.warn(line));
    const context = config.tls?.context;
    if (context !== undefined) {
      this.reloader = new TlsReloader('ErpsServer', tlsOptions, (secure) => {
        if (!(this.server instanceof tls.Server)) throw new ErpsConfigError('ErpsServer.reloadTls(): not listening with transport "tls"');
        this.server.setSecureContext({ ...context, ...secure });
        Object.assign(context, secure);
        this.events.emit('tlsReloaded');
      });
    }
  }

  on<K extends ErpsServerEvent>(event: K, callback: ErpsServerEvents[K]): void {
    this.events.on(event, callback);
  }

  listen(): Promise<void> {
    const config = this.config;
    if (config.transport === 'local') {
      this.stopLocal = listenLocal(config.localName, (socket) => this.acceptLocal(socket));
      this.listening = true;
      debug('server: listening on the local transport as "%s"', config.localName);
      this.statusChanged('listening');
      return Promise.resolve();
    }
    const context = config.tls?.context;
    if (context === undefined) this.logger.warn('ErpsServer uses transport "tcp": no encryption, no peer identity. For development only.');
    const server = context !== undefined ? tls.createServer(context, (socket) => this.accept(socket)) : net.createServer((socket) => this.accept(socket));
    if (server instanceof tls.Server) {
      this.acceptTimes = new AcceptTimes(this.handshakeTimeoutMs);
      server.on('connection', this.acceptTimes.accepted);
      server.on('tlsClientError', (err, socket) => {
        const refusal = refusalOf(describeTlsFailure(err), socket);
        debug('server: TLS failed with %s:%s: %s (%s)', refusal.remoteAddress, refusal.remotePort, refusal.message, refusal.code);
        socket.destroy();
        this.refused(refusal);
        this.events.emit('tlsClientError', err, refusal);
      });
      this.stopWatching =
        this.reloader?.watch(
          () => this.logger.log('TLS certificates reloaded'),
          (err) => this.logger.error(`TLS reload failed, keeping the previous certificates: ${describeError(err)}`),
        ) ?? this.stopWatching;
    }
    this.server = server;
    return new Promise<void>((resolve, reject) => {
      let listening = false;
      server.on('error', (err: Error) => {
        if (!listening) return reject(err);
        this.events.emit('error', err);
      });
      server.listen(config.port, config.host, () => {
        listening = true;
        this.listening = true;
        debug('server: listening on %s:%d over %s', config.host, (server.address() as net.AddressInfo).port, context !== undefined ? 'mutual TLS' : 'plain TCP');
        this.statusChanged('listening');
        resolve();
      });
    });
  }

  /** The bound address after listen(); `port` is the real port when 0 was asked for. */
  address(): { address: string; port: number; family: string } {
    if (this.config.transport === 'local') return { address: `local:${this.config.localName}`, port: 0, family: 'local' };
    const address = this.server?.address();
    if (address == null || typeof address === 'string') throw new ErpsConfigError('ErpsServer is not listening');
    return { address: address.address, port: address.port, family: address.family };
  }

  /** The underlying `net.Server` / `tls.Server` (after listen). */
  unwrap<T>(): T {
    if (this.server === undefined) throw new ErpsConfigError('ErpsServer is not listening: call listen() first');
    return this.server as T;
  }

  /** Stops accepting, sends GOAWAY, lets in-flight calls finish (up to drainTimeoutMs), then closes. */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  /** Re-reads the certificates and installs them for new connections; throws ErpsConfigError and keeps the old ones. */
  reloadTls(): void {
    if (this.reloader === undefined) throw new ErpsConfigError('ErpsServer.reloadTls(): not listening with transport "tls"');
    this.reloader.reload();
  }

  connections(): ErpsSessionInfo[] {
    return [...this.sessions.values()].map((session) => session.info);
  }

  stats(): ErpsServerStats {
    let inFlight = 0;
    let writeBufferedBytes = 0;
    let maxWriteBufferedBytes = 0;
    for (const session of this.sessions.values()) {
      inFlight += session.inFlight;
      const buffered = session.connection.writeBufferedBytes;
      writeBufferedBytes += buffered;
      if (buffered > maxWriteBufferedBytes) maxWriteBufferedBytes = buffered;
    }
    return { connections: this.sessions.size, inFlight, writeBufferedBytes, maxWriteBufferedBytes, partialFrameBytes: this.partialFrames.usedBytes };
  }

  /** Erps `Server.push/2` to one connection. False if there is no such open connection or it does not keep up. */
  push(connectionId: number, pattern: string, data: unknown): boolean {
    return this.sessions.get(connectionId)?.push(pattern, data) ?? false;
  }

  /** Pushes to every connection (or those `filter` accepts); returns how many got it. */
  broadcast(pattern: string, data: unknown, filter?: (connection: ErpsSessionInfo) => boolean): number {
    let sent = 0;
    const message = new OutgoingPush(pattern, data);
    for (const session of this.sessions.values()) {
      if (filter !== undefined && !filter(session.info)) continue;
      if (session.pushMessage(message)) sent++;
    }
    return sent;
  }

  /**
   * Sets what the health service answers for `service` (gRPC's `setServingStatus`). '' is the server as a whole:
   * SERVING once listening unless set otherwise. Once a drain starts every service answers NOT_SERVING, whatever
   * was set; a name never set answers SERVICE_UNKNOWN.
   */
  setServingStatus(service: string, status: ErpsServingStatus): void {
    if (typeof service !== 'string') throw new ErpsConfigError(`setServingStatus(): the service name must be a string, got ${typeof service}`);
    if (!isServingStatus(status)) throw new ErpsConfigError(`setServingStatus(): the status must be 'SERVING' or 'NOT_SERVING', got ${JSON.stringify(status)}`);
    this.serving.set(service, status);
  }

  /** What the health service answers for `service` now. */
  servingStatus(service: string): ErpsHealthStatus {
    const stopped = !this.listening || this.closing !== undefined;
    if (service === '') return stopped ? 'NOT_SERVING' : (this.serving.get('') ?? 'SERVING');
    const status = this.serving.get(service);
    if (status === undefined) return 'SERVICE_UNKNOWN';
    return stopped ? 'NOT_SERVING' : status;
  }

  private async shutDown(): Promise<void> {
    this.stopWatching();
    const server = this.server;
    this.stopLocal?.();
    if (server === undefined && this.stopLocal === undefined) return;
    debug('server: draining %d connections (drainTimeoutMs %d)', this.live.size, this.config.drainTimeoutMs);
    this.statusChanged('draining');
    const stopped = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    await Promise.all([...this.live].map((session) => session.drain(this.config.drainTimeoutMs)));
    await stopped;
    debug('server: closed');
    this.statusChanged('closed');
  }

  private acceptLocal(socket: Duplex): void {
    if (this.closing !== undefined) {
      socket.destroy();
      return;
    }
    debug('server: accepted a local connection');
    this.live.add(new ServerSession({ socket, remoteAddress: undefined, remotePort: undefined, peer: undefined, remote: false }, this));
  }

  private accept(socket: net.Socket | tls.TLSSocket): void {
    if (this.closing !== undefined) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    if (debugEnabled()) debugAccepted(socket);
    if (this.config.tls?.verifyClients && socket instanceof tls.TLSSocket && !socket.authorized) return this.refuseCertificate(socket);
    const session = new ServerSession(
      {
        socket,
        remoteAddress: socket.remoteAddress,
        remotePort: socket.remotePort,
        peer: socket instanceof tls.TLSSocket ? peerIdentityOf(socket) : undefined,
        remote: true,
        handshakeMsLeft: this.acceptTimes?.msLeft(socket),
      },
      this,
    );
    this.live.add(session);
  }

  /**
   * A client certificate that failed verification: the client gets a REJECT saying why (TLS is up, so it can be
   * told, which a TLS-level refusal never does), the log and 'tlsClientError' too. No session is created.
   */
  private refuseCertificate(socket: tls.TLSSocket): void {
    const noCertificate = Object.keys(socket.getPeerCertificate()).length === 0;
    const failure = describeTlsFailure(noCertificate ? 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE' : String(socket.authorizationError));
    const refusal = refusalOf(failure, socket);
    debug('server: %s:%s: client certificate refused (%s), sending REJECT code %d', socket.remoteAddress, socket.remotePort, failure.message, RejectCode.CERTIFICATE);
    socket.on('error', () => undefined);
    socket.end(encodeFrame(FrameType.REJECT, 0, 0, encodeReject({ code: RejectCode.CERTIFICATE, reason: `client certificate refused: ${failure.message}` })));
    setTimeout(() => socket.destroy(), 1000).unref();
    this.refused(refusal);
    this.events.emit('tlsClientError', new ErpsTlsError(`client certificate refused: ${failure.message}`), refusal);
  }

  private refused(refusal: ErpsRefusal): void {
    const from = refusal.remoteAddress === undefined ? 'a peer' : `${refusal.remoteAddress}:${refusal.remotePort}`;
    this.refusals.refused(`Refused connection from ${from}: ${refusal.message}`);
    publishLifecycle(lifecycleChannels.serverReject, () => ({
      side: 'server',
      remoteAddress: refusal.remoteAddress,
      remotePort: refusal.remotePort,
      code: refusal.code,
      reason: new Error(refusal.message),
    }));
  }

  // ---- SessionHost ----

  sessionOpened(session: ServerSession): void {
    this.sessions.set(session.id, session);
    this.events.emit('connection', session.info);
    publishLifecycle(lifecycleChannels.serverConnect, () => ({ ...sessionMessage(session), bytes: socketBytes(session.connection.socket) }));
  }

  sessionClosed(session: ServerSession, reason: Error | undefined, opened: boolean): void {
    this.live.delete(session);
    this.sessions.delete(session.id);
    if (reason instanceof ErpsSlowConsumerError || reason instanceof ErpsOverloadedError) {
      this.logger.warn(`Connection ${session.id} from ${session.info.remoteAddress ?? 'local'}${peerSuffix(session.info)} closed: ${reason.message}`);
    }
    debug(
      'server: connection %d from %s closed%s: %s',
      session.id,
      addressOf(session.info),
      opened ? '' : ' before its handshake',
      reason === undefined ? 'cleanly' : describeError(reason),
    );
    if (opened || reason !== undefined) this.events.emit('disconnect', session.info, reason);
    publishLifecycle(lifecycleChannels.serverDisconnect, () => ({ ...sessionMessage(session), reason }));
    if (reason instanceof ErpsSlowConsumerError) publishLifecycle(lifecycleChannels.slowConsumer, () => ({ ...sessionMessage(session), reason }));
  }

  handshakeRejected(session: ServerSession, reject: Reject): void {
    const { remoteAddress, remotePort } = session.info;
    const who = peerSuffix(session.info);
    debug('server: connection %d from %s%s: handshake rejected, REJECT code %d: %s', session.id, addressOf(session.info), who, reject.code, reject.reason);
    const refusal: ErpsRefusal = { kind: 'handshake-reject', message: `handshake rejected${who}: ${reject.reason}`, code: `reject:${reject.code}`, remoteAddress, remotePort };
    this.refused(refusal);
    this.events.emit('handshakeRejected', session.info, reject.reason, refusal);
  }

  admit(session: ServerSession): Reject | null {
    const peer = session.info.peer;
    const allowPeers = this.config.allowPeers;
    if (allowPeers !== undefined && !allowPeers(peer)) {
      return { code: RejectCode.UNAUTHORIZED, reason: `peer ${peer?.cn === undefined ? '(no certificate)' : `"${peer.cn}"`} is not allowed to connect` };
    }
    if (this.closing !== undefined) return { code: RejectCode.SHUTTING_DOWN, reason: 'server shutting down; try again later' };
    if (this.live.size > this.config.maxConnections) {
      return { code: RejectCode.SERVER_FULL, reason: `server full (maxConnections ${this.config.maxConnections}); try again later` };
    }
    return null;
  }

  findCallHandler(pattern: string): CallTarget | null {
    return this.router.findCall(pattern);
  }

  invokeCall(target: CallTarget, message: InboundMessage, reply: CallReply): void {
    this.router.call(target, message, reply);
  }

  invokeEvent(message: InboundMessage): void {
    this.router.cast(message);
  }

  castDropped(pattern: string, reason: string): void {
    this.logger.error(`Erps cast "${pattern}" dropped: ${reason}`);
  }
}

function refusalOf(failure: TlsFailure, socket: net.Socket): ErpsRefusal {
  return { ...failure, remoteAddress: socket.remoteAddress, remotePort: socket.remotePort };
}

/** ` (peer "cn")` for log lines, or nothing for a peer without a certificate name. */
function peerSuffix(info: ErpsSessionInfo): string {
  return info.peer?.cn === undefined ? '' : ` (peer "${info.peer.cn}")`;
}

/** `address:port`, or `local` for the in-process transport (debug lines). */
function addressOf(info: ErpsSessionInfo): string {
  return info.remoteAddress === undefined ? 'local' : `${info.remoteAddress}:${info.remotePort}`;
}

/** NODE_DEBUG=erps: a connection accepted, with its TLS details and client certificate. */
function debugAccepted(socket: net.Socket | tls.TLSSocket): void {
  const from = `${socket.remoteAddress}:${socket.remotePort}`;
  if (!(socket instanceof tls.TLSSocket)) return debug('server: accepted %s (plain TCP)', from);
  const subject = socket.getPeerCertificate().subject as Record<string, unknown> | undefined;
  const verdict = socket.authorized ? 'verified' : `not verified: ${String(socket.authorizationError)}`;
  debug('server: accepted %s (%s, %s), client certificate CN "%s" %s', from, socket.getProtocol(), socket.getCipher().name, subject?.CN, verdict);
}

function sessionMessage(session: ServerSession): ErpsConnectionMessage {
  const { remoteAddress, remotePort, peer } = session.info;
  return { side: 'server', connectionId: session.id, remoteAddress, remotePort, peer };
}
