import { CustomTransportStrategy, MessageHandler, Server } from '@nestjs/microservices';
import { resolveServerConfig } from '../config/server-config.js';
import { MissingFilterWarning } from '../nest/missing-filter-warning.js';
import { ErpsHealthStatus, ErpsServingStatus, RESERVED_PATTERN_PREFIX } from '../protocol/health.js';
import type { CallReply } from './call-reply.js';
import { ErpsDaemon, ErpsServerEvent, ErpsServerEvents, ErpsServerStats, ErpsServerStatus } from './daemon.js';
import { Dispatcher, Handler, ProcessingHooks } from './dispatch.js';
import { ErpsContext } from './erps-context.js';
import type { ErpsServerOptions } from './erps-server-options.js';
import { containerOf, DirectDispatchServer, DirectHandler, ErpsDispatchPlanEntry, planDirectDispatch } from '../nest/direct-dispatch.js';
import type { CallTarget, InboundMessage } from './session.js';
import type { ErpsSessionInfo } from './session-info.js';

export type { ErpsRefusal, ErpsServerEvent, ErpsServerEvents, ErpsServerStats, ErpsServerStatus } from './daemon.js';

export const ERPS_TRANSPORT = Symbol('ERPS_TRANSPORT');

/** Handler lookups cached per wire pattern; bounded so hostile patterns cannot grow it. */
const HANDLER_CACHE_LIMIT = 1024;

/**
 * The Erps daemon as a Nest transport strategy: a thin adapter that gives the Nest-free daemon (daemon.ts) Nest's
 * handlers, contexts and processing hooks, and the dispatch pipeline (dispatch.ts) to run them with. CALL goes to
 * @MessagePattern handlers, CAST to @EventPattern handlers.
 */
export class ErpsServer extends Server<ErpsServerEvents, ErpsServerStatus> implements CustomTransportStrategy {
  override readonly transportId = ERPS_TRANSPORT;
  private readonly daemon: ErpsDaemon;
  private readonly dispatcher: Dispatcher;
  private readonly handlerCache = new Map<string, Handler | null>();
  /** The application enableDirectDispatch() was given, and what was planned from it (at listen()). */
  private directApp: object | undefined;
  private directPlan: { byNestHandler: Map<unknown, DirectHandler>; plan: ErpsDispatchPlanEntry[] } | undefined;
  private listening = false;
  /** Nest's own no-op start hook, to skip the hook machinery when nobody installed one. */
  private readonly defaultStartHook: unknown = (this as unknown as NestHooks).onProcessingStartHook;
  /** Warns when a call's HttpException may have reached its caller as "Internal server error" (no ErpsExceptionFilter). */
  private readonly missingFilter = new MissingFilterWarning(this.logger);
  private statusValue: ErpsServerStatus | 'idle' = 'idle';

  constructor(readonly options: ErpsServerOptions = {}) {
    super();
    this.initializeSerializer(options as never);
    this.initializeDeserializer(options as never);
    const config = resolveServerConfig(options);
    this.dispatcher = new Dispatcher(
      { authorize: options.authorize, forwardContext: options.forwardContext, logger: this.logger },
      {
        contextFor: (message) => new ErpsContext([message.pattern, message.session.info, message.meta.headers, message.session]),
        processingHooks: () => this.processingHooks(),
        streamFailed: (pattern, err) => this.missingFilter.check(pattern, err),
      },
    );
    const router = {
      findCall: (pattern: string): CallTarget | null => {
        const handler = this.findHandler(pattern);
        return handler !== null && !handler.isEventHandler ? handler : null;
      },
      call: (target: CallTarget, message: InboundMessage, reply: CallReply): void => this.dispatcher.call(target as Handler, message, reply),
      cast: (message: InboundMessage): void => {
        const handler = this.findHandler(message.pattern);
        if (handler === null || !handler.isEventHandler) return this.daemon.castDropped(message.pattern, 'no @EventPattern handler for it');
        this.dispatcher.cast(handler, message, (reason) => this.daemon.castDropped(message.pattern, reason));
      },
    };
    this.daemon = new ErpsDaemon(config, options.tls, router, this.logger, (status) => {
      this.statusValue = status;
      this._status$.next(status);
    });
  }

  listen(callback: (err?: unknown, ...optionalParams: unknown[]) => void): void {
    this.dispatcher.captureListenContext();
    this.warnOfReservedPatterns();
    this.listening = true;
    if (this.directApp !== undefined) this.planDirectDispatch();
    let listening: Promise<void>;
    try {
      listening = this.daemon.listen();
    } catch (err) {
      return callback(err);
    }
    listening.then(
      () => callback(),
      (err: unknown) => callback(err),
    );
  }

  /**
   * Lets handlers that no guard, pipe, interceptor, custom parameter decorator or pre-request hook applies to
   * (method, controller or global) be called directly, without Nest's per-call pipeline. Exception filters and
   * processing hooks still apply: a failure goes through the exceptions handler Nest builds for the method, and the
   * hooks run around every handler, direct or not. `app` is the application this server belongs to (the microservice from
   * `NestFactory.createMicroservice`, the hybrid app, or a TestingModule); what applies to each handler is read from
   * it once, at listen() (or now, if already listening). Every other handler goes through Nest as before; see
   * `dispatchPlan()` for which and why.
   */
  enableDirectDispatch(app: object): this {
    if (containerOf(app) === undefined) {
      this.logger.warn("enableDirectDispatch(): this is not a Nest application (no container): every handler stays on Nest's pipeline.");
      return this;
    }
    this.directApp = app;
    if (this.listening) this.planDirectDispatch();
    return this;
  }

  /** How each registered pattern is dispatched: directly, or through Nest's pipeline, and why. */
  dispatchPlan(): ErpsDispatchPlanEntry[] {
    if (this.directPlan !== undefined) return this.directPlan.plan.map((entry) => ({ ...entry }));
    if (this.directApp !== undefined) return planDirectDispatch(this.directApp, this.planView(), this.messageHandlers).plan;
    return [...this.messageHandlers].map(([pattern, handler]) => ({
      pattern,
      kind: handler.isEventHandler ? 'event' : 'call',
      direct: false,
      reason: 'enableDirectDispatch(app) was not called',
    }));
  }

  /** The bound address after listen(); `port` is the real port when 0 was asked for. */
  address(): { address: string; port: number; family: string } {
    return this.daemon.address();
  }

  /** Stops accepting, sends GOAWAY, lets in-flight calls finish (up to drainTimeoutMs), then closes. */
  close(): Promise<void> {
    return this.daemon.close();
  }

  /** The daemon's status now: 'idle' before listen(), then 'listening', 'draining', 'closed' (as on `status`). */
  get currentStatus(): ErpsServerStatus | 'idle' {
    return this.statusValue;
  }

  /**
   * Sets what the health service answers for `service` (gRPC's Health Checking Protocol). The empty name '' is the
   * server as a whole: SERVING once listening unless set otherwise. As soon as a drain starts (close()) every
   * service answers NOT_SERVING; a name never set answers SERVICE_UNKNOWN. Clients ask with `client.health(service)`.
   */
  setServingStatus(service: string, status: ErpsServingStatus): void {
    this.daemon.setServingStatus(service, status);
  }

  /** What the health service answers for `service` now (default '': the server as a whole). */
  servingStatus(service = ''): ErpsHealthStatus {
    return this.daemon.servingStatus(service);
  }

  /**
   * Re-reads the certificate files (or PEM options) and installs them with `setSecureContext`: established
   * connections are kept, new ones use the new certificates and CRL. Throws ErpsConfigError (and keeps the old
   * certificates) if the files cannot be read or do not form a valid context.
   */
  reloadTls(): void {
    this.daemon.reloadTls();
  }

  override on<K extends ErpsServerEvent = ErpsServerEvent, C extends ErpsServerEvents[K] = ErpsServerEvents[K]>(event: K, callback: C): this {
    this.daemon.on(event, callback);
    return this;
  }

  /** The underlying `net.Server` / `tls.Server` (after listen). */
  unwrap<T>(): T {
    return this.daemon.unwrap<T>();
  }

  /** Live connections (id, address, peer identity, connectedAt). */
  connections(): ErpsSessionInfo[] {
    return this.daemon.connections();
  }

  /** Live numbers: connections, calls in flight, write buffers, bytes held in incomplete frames. */
  stats(): ErpsServerStats {
    return this.daemon.stats();
  }

  /** Erps `Server.push/2` to one connection. False if it is gone, or not reading (more than maxWriteBufferBytes wait). */
  push(connectionId: number, pattern: unknown, data: unknown): boolean {
    return this.daemon.push(connectionId, this.wirePattern(pattern), data);
  }

  /** Pushes to every connection (or those `filter` accepts, e.g. by peer CN); returns how many got it. */
  broadcast(pattern: unknown, data: unknown, filter?: (connection: ErpsSessionInfo) => boolean): number {
    return this.daemon.broadcast(this.wirePattern(pattern), data, filter);
  }

  /** A handler for a reserved pattern ($erps.*) would be shadowed by the transport: say so once, at listen(). */
  private warnOfReservedPatterns(): void {
    for (const pattern of this.messageHandlers.keys()) {
      if (pattern.startsWith(RESERVED_PATTERN_PREFIX)) {
        this.logger.warn(
          `Pattern "${pattern}": patterns starting with "${RESERVED_PATTERN_PREFIX}" are reserved for the Erps transport (the health service answers "$erps.health" itself).`,
        );
      }
    }
  }

  private wirePattern(pattern: unknown): string {
    return typeof pattern === 'string' ? pattern : this.normalizePattern(pattern as never);
  }

  private findHandler(pattern: string): Handler | null {
    let handler = this.handlerCache.get(pattern);
    if (handler !== undefined) return handler;
    const nestHandler: MessageHandler | null = this.messageHandlers.get(pattern) ?? this.getHandlerByPattern(pattern);
    handler = (nestHandler === null ? null : (this.directPlan?.byNestHandler.get(nestHandler) ?? nestHandler)) as Handler | null;
    if (handler !== null && this.handlerCache.size < HANDLER_CACHE_LIMIT) this.handlerCache.set(pattern, handler);
    return handler;
  }

  private planView(): DirectDispatchServer {
    return {
      instance: this,
      transportId: this.transportId,
      propagatesEventHandlerErrors: (this as { propagatesEventHandlerErrors?: boolean }).propagatesEventHandlerErrors,
      normalizePattern: (pattern) => this.normalizePattern(pattern as never),
    };
  }

  private planDirectDispatch(): void {
    const planned = planDirectDispatch(this.directApp as object, this.planView(), this.messageHandlers);
    const byNestHandler = new Map<unknown, DirectHandler>();
    for (const [pattern, direct] of planned.direct) byNestHandler.set(this.messageHandlers.get(pattern), direct);
    this.directPlan = { byNestHandler, plan: planned.plan };
    this.handlerCache.clear();
  }

  /** Nest's processing hooks, when instrumentation installed them (they exist only in some Nest versions). */
  private processingHooks(): ProcessingHooks | undefined {
    const self = this as unknown as NestHooks;
    const start = self.onProcessingStartHook;
    if (typeof start !== 'function' || (start === this.defaultStartHook && self.onProcessingEndHook === undefined)) return undefined;
    return {
      start: (ctx, run) => start.call(this, this.transportId, ctx, run),
      end: (ctx) => self.onProcessingEndHook?.(this.transportId, ctx),
    };
  }
}

interface NestHooks {
  onProcessingStartHook?: (transportId: symbol, ctx: unknown, done: () => Promise<void>) => unknown;
  onProcessingEndHook?: (transportId: symbol, ctx: unknown) => void;
}
