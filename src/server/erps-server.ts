import { AsyncLocalStorage } from 'node:async_hooks';
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import * as net from 'node:net';
import * as tls from 'node:tls';
import semver from 'semver';
import { connectable, finalize, isObservable, Subject } from 'rxjs';
import { CustomTransportStrategy, MessageHandler, Server } from '@nestjs/microservices';
import { ErpsConfigError, ErpsOverloadedError, ErpsSlowConsumerError, ErpsTlsError, describeError, errorReply } from '../errors/index.js';
import { DEFAULT_MAX_DEPTH, DEFAULT_MAX_ELEMENTS } from '../protocol/codec.js';
import { ByteBudget } from '../connection/byte-budget.js';
import { HandshakePolicy, Reject, RejectCode } from '../protocol/handshake.js';
import { assertCommonOptions } from '../common-options.js';
import { assertUsable, loadTlsMaterial, secureOptions, watchTlsFiles } from '../tls/tls-options.js';
import { peerIdentityOf } from '../tls/peer-identity.js';
import { hardenedTlsOptions } from '../tls/hardening.js';
import { CallReply } from './call-reply.js';
import { ErpsContext, ErpsSessionInfo } from './erps-context.js';
import { ErpsServerOptions } from './erps-server-options.js';
import { CallTarget, ServerSession, SessionHost, SessionLimits } from './session.js';
import { AcceptTimes } from './accept-times.js';
import { RefusalLog } from './refusal-log.js';
import { describeTlsFailure, TlsFailureKind } from '../tls/tls-failure.js';
import { encodeFrame, FrameType } from '../protocol/frame.js';
import { encodeReject } from '../protocol/handshake.js';
import { resolveConnectionOptions, type ConnectionOptions } from '../connection/connection.js';
import { listenLocal } from '../connection/local-registry.js';
import type { SplitMeta } from '../protocol/headers.js';
import type { ForwardContextOptions } from '../forward-context.js';
import { MissingFilterWarning } from '../nest/missing-filter-warning.js';

export const ERPS_TRANSPORT = Symbol('ERPS_TRANSPORT');

/** Server status values pushed to Nest's `status` observable. */
export type ErpsServerStatus = 'listening' | 'draining' | 'closed';

/** Events for `server.on(event, cb)`. */
export type ErpsServerEvent = 'connection' | 'disconnect' | 'handshakeRejected' | 'tlsClientError' | 'tlsReloaded' | 'error';

/**
 * Why a connection was refused, as 'tlsClientError' (TLS and certificate failures) and 'handshakeRejected' (REJECT)
 * report it, and as the server logs it (once per connection, rate-limited).
 */
export interface ErpsRefusal {
  kind: TlsFailureKind | 'handshake-reject';
  message: string;
  /** The OpenSSL / Node code, or the REJECT code as a string ("reject:3"). */
  code: string | undefined;
  remoteAddress: string | undefined;
  remotePort: number | undefined;
}

/** Default of `maxPartialFrameBytes`: bytes held in incomplete frames across all of a daemon's connections. */
export const DEFAULT_MAX_PARTIAL_FRAME_BYTES = 64 * 1024 * 1024;

/** Handler lookups cached per wire pattern; bounded so hostile patterns cannot grow it. */
const HANDLER_CACHE_LIMIT = 1024;

/**
 * The Erps daemon as a Nest transport strategy: listens (mutual TLS by default), runs one session per
 * accepted connection, routes CALL to @MessagePattern and CAST to @EventPattern handlers.
 */
export class ErpsServer extends Server implements CustomTransportStrategy, SessionHost {
  override readonly transportId = ERPS_TRANSPORT;
  readonly policy: HandshakePolicy;
  readonly connectionOptions: Required<ConnectionOptions>;
  readonly handshakeTimeoutMs: number;
  private readonly host: string;
  private readonly port: number;
  private readonly drainTimeoutMs: number;
  private readonly tlsContext: tls.TlsOptions | undefined;
  private readonly transport: 'tls' | 'tcp' | 'local';
  readonly compressionThreshold: number | undefined;
  private readonly forwardContext: ForwardContextOptions | undefined;
  /** Runs a function in the async context that was active at listen(). */
  private listenContext: (<R>(fn: () => R) => R) | undefined;
  private server: net.Server | undefined;
  private stopLocal: (() => void) | undefined;
  private readonly sessions = new Map<number, ServerSession>();
  private readonly events = new EventEmitter();
  private readonly handlerCache = new Map<string, MessageHandler | null>();
  /** Nest's own no-op start hook, to skip the hook machinery when nobody installed one. */
  private readonly defaultStartHook: unknown = (this as unknown as { onProcessingStartHook?: unknown }).onProcessingStartHook;
  private closing: Promise<void> | undefined;
  readonly limits: SessionLimits;
  readonly partialFrames: ByteBudget;
  private readonly maxConnections: number;
  /** Sessions accepted and not yet closed, handshaking ones included (maxConnections, drain). */
  private readonly live = new Set<ServerSession>();
  private stopWatching: () => void = () => undefined;
  /** TLS only: accept times, so TLS and HELLO share one handshakeTimeoutMs. */
  private acceptTimes: AcceptTimes | undefined;
  /** Whether client certificates are verified (our own check after TLS, so a refusal can say why). */
  private readonly verifyClients: boolean;
  private readonly refusals = new RefusalLog((line) => this.logger.warn(line));
  /** Warns when a call's HttpException may have reached its caller as "Internal server error" (no ErpsExceptionFilter). */
  private readonly missingFilter = new MissingFilterWarning(this.logger);

  constructor(readonly options: ErpsServerOptions = {}) {
    super();
    this.initializeSerializer(options as never);
    this.initializeDeserializer(options as never);
    this.host = options.host ?? '127.0.0.1';
    this.port = options.port ?? 0;
    this.drainTimeoutMs = options.drainTimeoutMs ?? 10_000;
    this.handshakeTimeoutMs = options.handshakeTimeoutMs ?? 10_000;
    const identifier = options.identifier ?? 'erps';
    const versions = options.versions ?? '*';
    const codec = options.codec ?? 'msgpack';
    assertCommonOptions('ErpsServer', identifier, codec);
    if (semver.validRange(versions) === null) throw new ErpsConfigError(`ErpsServer: versions "${versions}" is not a valid semver range`);
    this.policy = { identifier, versions, codec };
    this.connectionOptions = resolveConnectionOptions(options);
    this.maxConnections = options.maxConnections ?? 10_000;
    this.limits = {
      maxInFlightPerConnection: options.maxInFlightPerConnection ?? 1000,
      idleTimeoutMs: options.idleTimeoutMs ?? 0,
      maxDepth: options.maxDepth ?? DEFAULT_MAX_DEPTH,
      maxElements: options.maxElements ?? DEFAULT_MAX_ELEMENTS,
    };
    this.partialFrames = new ByteBudget(options.maxPartialFrameBytes ?? DEFAULT_MAX_PARTIAL_FRAME_BYTES);
    const transport = options.transport ?? 'tls';
    this.transport = transport;
    this.compressionThreshold = options.compression ? (options.compression.threshold ?? 1024) : undefined;
    this.forwardContext = options.forwardContext;
    if (transport === 'tls') {
      const material = loadTlsMaterial(options.tls, 'ErpsServer');
      assertUsable(material, 'ErpsServer');
      this.tlsContext = {
        minVersion: 'TLSv1.2',
        handshakeTimeout: this.handshakeTimeoutMs,
        ...material.rest,
        ...hardenedTlsOptions(material.rest),
        ...secureOptions(material),
        requestCert: material.rest.requestCert ?? true,
        // Verified in accept() instead: Node's own refusal closes without a word, ours tells the client and the log why.
        rejectUnauthorized: false,
      };
      this.verifyClients = (material.rest.requestCert ?? true) && (material.rest.rejectUnauthorized ?? true);
    } else if (transport === 'tcp' || transport === 'local') {
      this.tlsContext = undefined;
      this.verifyClients = false;
    } else {
      throw new ErpsConfigError(`ErpsServer: unknown transport "${String(transport)}" (expected 'tls', 'tcp' or 'local')`);
    }
  }

  listen(callback: (err?: unknown, ...optionalParams: unknown[]) => void): void {
    if (this.forwardContext !== undefined) this.listenContext = AsyncLocalStorage.snapshot();
    if (this.transport === 'local') {
      try {
        this.stopLocal = listenLocal(this.localName, (socket) => this.acceptLocal(socket));
      } catch (err) {
        return callback(err);
      }
      this._status$.next('listening' as never);
      return callback();
    }
    if (this.tlsContext === undefined) {
      this.logger.warn('ErpsServer uses transport "tcp": no encryption, no peer identity. For development only.');
    }
    const server = this.tlsContext
      ? tls.createServer(this.tlsContext, (socket) => this.accept(socket))
      : net.createServer((socket) => this.accept(socket));
    if (server instanceof tls.Server) {
      this.acceptTimes = new AcceptTimes(this.handshakeTimeoutMs);
      server.on('connection', this.acceptTimes.accepted);
      server.on('tlsClientError', (err, socket) => {
        const refusal = this.refusalOf(describeTlsFailure(err), socket);
        socket.destroy();
        this.refused(refusal);
        this.events.emit('tlsClientError', err, refusal);
      });
    }
    this.server = server;
    if (server instanceof tls.Server) this.stopWatching = watchTlsFiles(this.options.tls, () => this.reloadFromWatch());
    let listening = false;
    server.on('error', (err) => {
      if (!listening) return callback(err);
      this.events.emit('error', err);
    });
    server.listen(this.port, this.host, () => {
      listening = true;
      this._status$.next('listening' as never);
      callback();
    });
  }

  private get localName(): string {
    return this.options.localName ?? this.policy.identifier;
  }

  /** The bound address after listen(); `port` is the real port when 0 was asked for. */
  address(): { address: string; port: number; family: string } {
    if (this.transport === 'local') return { address: `local:${this.localName}`, port: 0, family: 'local' };
    const address = this.server?.address();
    if (address == null || typeof address === 'string') throw new ErpsConfigError('ErpsServer is not listening');
    return { address: address.address, port: address.port, family: address.family };
  }

  /** Stops accepting, sends GOAWAY, lets in-flight calls finish (up to drainTimeoutMs), then closes. */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  /**
   * Re-reads the certificate files (or PEM options) and installs them with `setSecureContext`: established
   * connections are kept, new ones use the new certificates and CRL. Throws ErpsConfigError (and keeps the old
   * certificates) if the files cannot be read or do not form a valid context.
   */
  reloadTls(): void {
    if (!(this.server instanceof tls.Server)) throw new ErpsConfigError('ErpsServer.reloadTls(): not listening with transport "tls"');
    const material = loadTlsMaterial(this.options.tls, 'ErpsServer');
    const context = { ...this.tlsContext, ...secureOptions(material) };
    try {
      this.server.setSecureContext(context);
    } catch (err) {
      throw new ErpsConfigError(`ErpsServer.reloadTls(): ${describeError(err)}`);
    }
    Object.assign(this.tlsContext!, secureOptions(material));
    this.events.emit('tlsReloaded');
  }

  private reloadFromWatch(): void {
    try {
      this.reloadTls();
      this.logger.log('TLS certificates reloaded');
    } catch (err) {
      this.logger.error(`TLS reload failed, keeping the previous certificates: ${describeError(err)}`);
    }
  }

  private async shutDown(): Promise<void> {
    this.stopWatching();
    const server = this.server;
    this.stopLocal?.();
    if (server === undefined && this.stopLocal === undefined) return;
    this._status$.next('draining' as never);
    const stopped = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    await Promise.all([...this.live].map((session) => session.drain(this.drainTimeoutMs)));
    await stopped;
    this._status$.next('closed' as never);
  }

  on<EventKey extends string = ErpsServerEvent, EventCallback extends Function = Function>(event: EventKey, callback: EventCallback): this {
    this.events.on(event, callback as never);
    return this;
  }

  /** The underlying `net.Server` / `tls.Server` (after listen). */
  unwrap<T>(): T {
    if (this.server === undefined) throw new ErpsConfigError('ErpsServer is not listening: call listen() first');
    return this.server as T;
  }

  /** Live connections (id, address, peer identity, connectedAt). */
  connections(): ErpsSessionInfo[] {
    return [...this.sessions.values()].map((session) => session.info);
  }

  /**
   * Live numbers: open connections, calls running on them, bytes waiting to be written to them (all of them, and
   * the most on one), bytes held in incomplete incoming frames.
   */
  stats(): { connections: number; inFlight: number; writeBufferedBytes: number; maxWriteBufferedBytes: number; partialFrameBytes: number } {
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

  /** Erps `Server.push/2` to one connection. Returns false if there is no such open connection. */
  push(connectionId: number, pattern: unknown, data: unknown): boolean {
    return this.sessions.get(connectionId)?.push(this.wirePattern(pattern), data) ?? false;
  }

  /** Pushes to every connection (or those `filter` accepts, e.g. by peer CN); returns how many got it. */
  broadcast(pattern: unknown, data: unknown, filter?: (connection: ErpsSessionInfo) => boolean): number {
    const wire = this.wirePattern(pattern);
    let sent = 0;
    for (const session of this.sessions.values()) {
      if (filter !== undefined && !filter(session.info)) continue;
      if (session.push(wire, data)) sent++;
    }
    return sent;
  }

  private wirePattern(pattern: unknown): string {
    return typeof pattern === 'string' ? pattern : this.normalizePattern(pattern as never);
  }

  private acceptLocal(socket: Duplex): void {
    if (this.closing !== undefined) {
      socket.destroy();
      return;
    }
    this.live.add(new ServerSession({ socket, remoteAddress: undefined, remotePort: undefined, peer: undefined, remote: false }, this));
  }

  private accept(socket: net.Socket | tls.TLSSocket): void {
    if (this.closing !== undefined) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    if (this.verifyClients && socket instanceof tls.TLSSocket && !socket.authorized) return this.refuseCertificate(socket);
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
    const refusal = this.refusalOf(failure, socket);
    socket.on('error', () => undefined);
    socket.end(encodeFrame(FrameType.REJECT, 0, 0, encodeReject({ code: RejectCode.CERTIFICATE, reason: `client certificate refused: ${failure.message}` })));
    setTimeout(() => socket.destroy(), 1000).unref();
    this.refused(refusal);
    const error = new ErpsTlsError(`client certificate refused: ${failure.message}`);
    this.events.emit('tlsClientError', error, refusal);
  }

  private refusalOf(failure: { kind: TlsFailureKind; message: string; code: string | undefined }, socket: net.Socket): ErpsRefusal {
    return { ...failure, remoteAddress: socket.remoteAddress, remotePort: socket.remotePort };
  }

  private refused(refusal: ErpsRefusal): void {
    const from = refusal.remoteAddress === undefined ? 'a peer' : `${refusal.remoteAddress}:${refusal.remotePort}`;
    this.refusals.refused(`Refused connection from ${from}: ${refusal.message}`);
  }

  // ---- SessionHost ----

  sessionOpened(session: ServerSession): void {
    this.sessions.set(session.id, session);
    this.events.emit('connection', session.info);
  }

  sessionClosed(session: ServerSession, reason: Error | undefined, opened: boolean): void {
    this.live.delete(session);
    this.sessions.delete(session.id);
    if (reason instanceof ErpsSlowConsumerError || reason instanceof ErpsOverloadedError) {
      this.logger.warn(`Connection ${session.id} from ${session.info.remoteAddress ?? 'local'}${describePeerOf(session.info)} closed: ${reason.message}`);
    }
    if (opened || reason !== undefined) this.events.emit('disconnect', session.info, reason);
  }

  handshakeRejected(session: ServerSession, reject: Reject): void {
    const { remoteAddress, remotePort, peer } = session.info;
    const refusal: ErpsRefusal = { kind: 'handshake-reject', message: `handshake rejected${peer?.cn === undefined ? '' : ` (peer "${peer.cn}")`}: ${reject.reason}`, code: `reject:${reject.code}`, remoteAddress, remotePort };
    this.refused(refusal);
    this.events.emit('handshakeRejected', session.info, reject.reason, refusal);
  }

  admit(session: ServerSession): Reject | null {
    const peer = session.info.peer;
    if (this.options.allowPeers !== undefined && !this.options.allowPeers(peer)) {
      return { code: RejectCode.UNAUTHORIZED, reason: `peer ${peer?.cn === undefined ? '(no certificate)' : `"${peer.cn}"`} is not allowed to connect` };
    }
    if (this.closing !== undefined) return { code: RejectCode.SHUTTING_DOWN, reason: 'server shutting down; try again later' };
    if (this.live.size > this.maxConnections) {
      return { code: RejectCode.SERVER_FULL, reason: `server full (maxConnections ${this.maxConnections}); try again later` };
    }
    return null;
  }

  findCallHandler(pattern: string): CallTarget | null {
    const handler = this.findHandler(pattern);
    return handler !== null && !handler.isEventHandler ? handler : null;
  }

  invokeCall(target: CallTarget, pattern: string, data: unknown, ctx: ErpsContext, reply: CallReply, meta: SplitMeta): void {
    const handler = target as MessageHandler;
    // Same outcome as below when neither hook is configured, without the two closures per call.
    if (this.options.authorize === undefined && this.forwardContext === undefined) return this.runCall(handler, data, ctx, reply);
    this.whenAuthorized(pattern, 'call', ctx, (allowed) => {
      if (allowed) this.inCallerContext(meta, () => this.runCall(handler, data, ctx, reply), (reason) => reply.error(errorReply('ERPS_CODEC', reason)));
      else reply.error(errorReply('ERPS_FORBIDDEN', `peer ${describePeer(ctx)} may not call "${pattern}"`));
    });
  }

  /** Runs `then` with the `authorize` hook's verdict (at once when there is no hook or it answers synchronously). */
  private whenAuthorized(pattern: string, kind: 'call' | 'cast', ctx: ErpsContext, then: (allowed: boolean) => void): void {
    const authorize = this.options.authorize;
    if (authorize === undefined) return then(true);
    let verdict: boolean | Promise<boolean>;
    try {
      verdict = authorize({ peer: ctx.peer, pattern, kind, connectionId: ctx.connectionId });
    } catch (err) {
      this.logger.error(`authorize() threw, denying: ${describeError(err)}`);
      return then(false);
    }
    if (typeof verdict === 'boolean') return then(verdict);
    Promise.resolve(verdict).then(
      (allowed) => then(allowed === true),
      (err: unknown) => {
        this.logger.error(`authorize() rejected, denying: ${describeError(err)}`);
        then(false);
      },
    );
  }

  private runCall(handler: MessageHandler, data: unknown, ctx: ErpsContext, reply: CallReply): void {
    if (!this.hooksInstalled()) {
      // The common case: Nest's handler already returns a Promise, so one `then` is all the plumbing needed.
      let result: unknown;
      try {
        result = handler(data, ctx);
      } catch (err) {
        return this.handlerFailed(err, reply);
      }
      if (isPromiseLike(result)) {
        result.then(
          (value) => this.deliver(value, reply, ctx),
          (err: unknown) => this.handlerFailed(err, reply),
        );
      } else {
        this.deliver(result, reply, ctx);
      }
      return;
    }
    this.runWithHooks(ctx, async (end) => {
      const result = await handler(data, ctx);
      if (isObservable(result)) {
        reply.follow(result, (err) => this.missingFilter.check(ctx.getPattern(), err));
        // The end hook runs when the reply is done: completed, failed or cancelled.
        reply.onDone(end);
      } else {
        reply.single(result);
        end();
      }
    }).catch((err: unknown) => this.handlerFailed(err, reply));
  }

  /** A handler's result: a stream is followed, anything else is the single reply. Never throws. */
  private deliver(value: unknown, reply: CallReply, ctx: ErpsContext): void {
    try {
      if (isObservable(value)) reply.follow(value, (err) => this.missingFilter.check(ctx.getPattern(), err));
      else reply.single(value);
    } catch (err) {
      this.handlerFailed(err, reply);
    }
  }

  /** Nest's pipeline turns handler errors into error values; what still escapes it is a bug worth a log line. */
  private handlerFailed(err: unknown, reply: CallReply): void {
    this.logger.error(err);
    reply.error(errorReply());
  }

  invokeEvent(pattern: string, data: unknown, ctx: ErpsContext, meta: SplitMeta): void {
    const handler = this.findHandler(pattern);
    if (handler === null || !handler.isEventHandler) {
      this.castDropped(pattern, 'no @EventPattern handler for it');
      return;
    }
    this.whenAuthorized(pattern, 'cast', ctx, (allowed) => {
      if (allowed) this.inCallerContext(meta, () => this.runEvent(handler, data, ctx), (reason) => this.castDropped(pattern, reason));
      else this.castDropped(pattern, `peer ${describePeer(ctx)} may not cast it`);
    });
  }

  /**
   * What Nest's handleEvent does (the head handler runs the chain of @EventPattern handlers of a pattern),
   * without its per-message pattern re-parsing.
   */
  private runEvent(handler: MessageHandler, data: unknown, ctx: ErpsContext): void {
    this.runWithHooks(ctx, async (end) => {
      const result = await handler(data, ctx);
      if (isObservable(result)) {
        connectable(result.pipe(finalize(end)), { connector: () => new Subject(), resetOnDisconnect: false }).connect();
      } else {
        end();
      }
    }).catch((err: unknown) => this.logger.error(err));
  }

  /**
   * Runs `fn` in the forwarded caller context, or in the context active at listen() (forwardContext only).
   * A forwarded value that `decode` refuses means the handler does not run: `refuse` gets the reason.
   */
  private inCallerContext(meta: SplitMeta, fn: () => unknown, refuse: (reason: string) => void): void {
    const forward = this.forwardContext;
    if (forward === undefined) {
      fn();
    } else if (meta.hasContext) {
      let store: unknown;
      try {
        store = forward.decode ? forward.decode(meta.context) : meta.context;
      } catch (err) {
        return refuse(`forwardContext.decode refused the caller context: ${describeError(err)}`);
      }
      forward.storage.run(store, fn);
    } else {
      this.listenContext!(fn);
    }
  }

  castDropped(pattern: string, reason: string): void {
    this.logger.error(`Erps cast "${pattern}" dropped: ${reason}`);
  }

  private findHandler(pattern: string): MessageHandler | null {
    let handler = this.handlerCache.get(pattern);
    if (handler !== undefined) return handler;
    handler = this.messageHandlers.get(pattern) ?? this.getHandlerByPattern(pattern);
    if (handler !== null && this.handlerCache.size < HANDLER_CACHE_LIMIT) this.handlerCache.set(pattern, handler);
    return handler;
  }

  /** Whether instrumentation installed Nest processing hooks (they exist only in some Nest versions). */
  private hooksInstalled(): boolean {
    const self = this as unknown as ProcessingHooks;
    const start = self.onProcessingStartHook;
    return typeof start === 'function' && (start !== this.defaultStartHook || self.onProcessingEndHook !== undefined);
  }

  /**
   * Runs `fn` between Nest's processing start and end hooks where this Nest version has them
   * (instrumentation such as OpenTelemetry installs them); otherwise runs it directly.
   */
  private runWithHooks(ctx: ErpsContext, fn: (end: () => void) => Promise<void>): Promise<void> {
    const self = this as unknown as ProcessingHooks;
    const start = self.onProcessingStartHook;
    if (!this.hooksInstalled()) return fn(noop);
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      self.onProcessingEndHook?.(this.transportId, ctx);
    };
    return Promise.resolve(start!.call(this, this.transportId, ctx, () => fn(end))).then(noop, (err: unknown) => {
      end();
      throw err;
    });
  }
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return value instanceof Promise || (typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function');
}

interface ProcessingHooks {
  onProcessingStartHook?: (transportId: symbol, ctx: unknown, done: () => Promise<void>) => unknown;
  onProcessingEndHook?: (transportId: symbol, ctx: unknown) => void;
}

function noop(): void {}

function describePeerOf(info: ErpsSessionInfo): string {
  return info.peer?.cn !== undefined ? ` (peer "${info.peer.cn}")` : '';
}

function describePeer(ctx: ErpsContext): string {
  return ctx.peer?.cn !== undefined ? `"${ctx.peer.cn}"` : ctx.isRemote() ? '(no certificate)' : '(local)';
}
