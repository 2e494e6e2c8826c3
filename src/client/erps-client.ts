import { Logger } from '@nestjs/common';
import { connectable, filter, Observable, ReplaySubject, Subject, Subscriber, TeardownLogic, throwError } from 'rxjs';
import { ClientProxy, ReadPacket, WritePacket } from '@nestjs/microservices';
import { ClientConfig, resolveClientConfig } from '../config/client-config.js';
import { TlsReloader } from '../config/transport.js';
import { ErpsConfigError, ErpsDisconnectedError, ErpsHealthUnsupportedError, describeError } from '../errors/index.js';
import { ErpsHealthStatus, HEALTH_PATTERN, healthReplyStatus } from '../protocol/health.js';
import { debug, debugEnabled } from '../debug.js';
import { buildMeta, validateHeaders } from '../protocol/headers.js';
import { wirePattern, WirePattern } from '../protocol/message.js';
import { Channel, ErpsClientEvents, ErpsClientStats, ErpsClientStatus } from './channel.js';
import type { ClientLink } from './client-link.js';
import type { Connector } from './connector.js';
import type { ErpsEndpointInfo } from './endpoint.js';
import { CallObserver, OutgoingCall } from './outgoing-call.js';
import { TracedObserver } from './traced-call.js';
import { clientCallChannel, clientCastChannel, ErpsClientCallMessage } from '../observability/channels.js';
import { ErpsRecord } from './erps-record.js';
import { ErpsClientOptions } from './erps-client-options.js';

export type { ErpsClientEvents, ErpsClientStats, ErpsClientStatus, ErpsReconnectingEvent, ErpsDiscoveryEvent } from './channel.js';

/** A message the server pushed (Erps `handle_push`). */
export interface ErpsPush<T = unknown> {
  pattern: string;
  data: T;
}

/** Per-call settings (from the client defaults, overridable per call). */
export interface ErpsCallOptions {
  timeoutMs?: number;
  waitForReady?: boolean;
  /**
   * The call may run twice: if its connection dies after it was written, it is sent again on another endpoint (up to
   * the client's maxRetries, within timeoutMs). Default false: such a call fails with ErpsConnectionLostError.
   */
  idempotent?: boolean;
}

/** Options of `client.health()`. */
export interface ErpsHealthCheckOptions {
  /** How long to wait for the answer (default: the client's timeoutMs). */
  timeoutMs?: number;
  /** Wait (up to timeoutMs) for a connection instead of failing at once while there is none. Default false. */
  waitForReady?: boolean;
}

/** What `client.health()` found: the status the server answered, the round trip, and which endpoint answered. */
export interface ErpsHealthResult {
  /** SERVING, NOT_SERVING (set so, or the server drains), SERVICE_UNKNOWN (a service name the server never set). */
  status: ErpsHealthStatus;
  /** From the CALL written to the reply read, in milliseconds. */
  rttMs: number;
  /** The endpoint whose server answered. */
  endpoint?: { host: string; port: number };
}

interface PreparedMessage {
  wire: WirePattern;
  meta: Record<string, unknown> | null;
  /** What meta was built from, to build it again with the headers tracing adds. */
  headers: Record<string, string> | undefined;
  hasContext: boolean;
  context: unknown;
  data: unknown;
  timeoutMs: number;
  waitForReady: boolean;
  idempotent: boolean;
}

const PATTERN_CACHE_LIMIT = 1024;

/**
 * What emit() returns for a cast written at once: `undefined`, then complete, to every subscriber, whenever it
 * subscribes (what the hot, replaying Observable of a cast under way ends up doing). Stateless, so shared.
 */
const CAST_WRITTEN = new Observable<unknown>((subscriber) => {
  subscriber.next(undefined);
  subscriber.complete();
});

/** The end of a traced cast: written to `link`, or failed with `err`. */
function castDone(traced: ErpsClientCallMessage, link: ClientLink | undefined, err?: unknown): void {
  const endpoint = link?.endpoint;
  if (endpoint !== undefined) traced.endpoint = endpoint;
  if (err !== undefined) {
    traced.error = err;
    clientCastChannel.error.publish(traced);
  }
  clientCastChannel.asyncEnd.publish(traced);
}

/**
 * The Observable `send()` returns: cold, each subscription sends one CALL. The prepared message rides on the
 * Observable itself and the subscribe function is shared, so a call costs no closure.
 */
class CallObservable<T> extends Observable<T> {
  constructor(
    readonly client: ErpsClient,
    /** Undefined for a plain message (see ErpsClient.plainWire): `wire` and `data` are all there is to it. */
    readonly message: PreparedMessage | Error | undefined,
    readonly wire: WirePattern | undefined,
    readonly data: unknown,
    /** rxjs calls it with the Observable as `this`. */
    subscribe: (this: CallObservable<T>, subscriber: Subscriber<T>) => TeardownLogic,
  ) {
    super(subscribe as (this: Observable<T>, subscriber: Subscriber<T>) => TeardownLogic);
  }
}

/**
 * The Erps client: a thin proxy over one persistent, self-healing connection. `send()` is a call,
 * `emit()` a cast. A Nest adapter over the Nest-free channel (channel.ts → endpoint.ts → client-link.ts): it turns
 * Nest's calls into prepared messages and replies into Observables. Registered with `ErpsClientsModule` or
 * `ClientsModule.register([{ name, customClass: ErpsClient, options }])`.
 */
// Plain `ClientProxy` (string status) so that `ClientsModule.register({ customClass: ErpsClient })` type-checks.
export class ErpsClient extends ClientProxy {
  private readonly config: ClientConfig;
  private readonly channel: Channel;
  private readonly patternCache = new Map<string, WirePattern>();
  private readonly reloader: TlsReloader | undefined;
  private stopWatching: () => void = () => undefined;
  private pushSubject = new Subject<ErpsPush>();
  /** Whether a subclass overrides ClientProxy's serializeError/serializeResponse, or a deserializer was given. */
  private readonly mapsReplies: boolean;

  /** `connector` replaces how connections are obtained (tests use a fake); the default dials TCP/TLS. */
  constructor(
    readonly options: ErpsClientOptions,
    connector?: Connector,
  ) {
    super();
    this.initializeSerializer(options as never);
    this.initializeDeserializer(options as never);
    const config = resolveClientConfig(options);
    this.config = config;
    if (config.transport === 'tcp') new Logger('ErpsClient').warn('ErpsClient uses transport "tcp": no encryption, no peer identity. For development only.');
    this.channel = new Channel(
      config,
      (pattern, data) => this.pushSubject.next({ pattern, data }),
      (status) => this._status$.next(status),
      connector,
    );
    this.channel.on('discovery', (event) => {
      if (event.error !== undefined) new Logger('ErpsClient').warn(`${event.error.message} (keeping ${event.endpoints.length} known endpoints)`);
    });
    if (debugEnabled()) this.debugLifecycle();
    if (config.tls !== undefined) this.reloader = new TlsReloader('ErpsClient', options.tls, (secure) => (config.tls = { ...config.tls, ...secure }));
    this.watchTls();
    this.mapsReplies =
      this.serializeError !== (ClientProxy.prototype as unknown as ErpsClient).serializeError ||
      this.serializeResponse !== (ClientProxy.prototype as unknown as ErpsClient).serializeResponse ||
      options.deserializer !== undefined;
  }

  /** Status changes: 'connecting', 'connected', 'disconnected', 'reconnecting', 'failed', 'closed'. */
  override get status(): Observable<ErpsClientStatus> {
    return super.status as Observable<ErpsClientStatus>;
  }

  /** The current status (also on `status` and `on('status')`). */
  get currentStatus(): ErpsClientStatus {
    return this.channel.status;
  }

  /** Live numbers: calls awaiting replies on every connection, calls queued for a connection, each endpoint's. */
  stats(): ErpsClientStats {
    return this.channel.stats();
  }

  /** Every endpoint of the fleet: address, state, calls in flight, connections, last error. */
  endpoints(): ErpsEndpointInfo[] {
    return this.channel.endpointInfo();
  }

  /**
   * Connects (idempotent: concurrent callers share one attempt). Resolves once connected; rejects with the
   * attempt's typed error. After a failure the client keeps retrying in the background (see `reconnect`). After
   * close(), it starts afresh (as Nest's TCP client does): a new push stream, new connections.
   */
  connect(): Promise<void> {
    if (this.channel.status === 'closed') {
      this.pushSubject = new Subject<ErpsPush>();
      this.watchTls();
    }
    return this.channel.connect();
  }

  /**
   * Re-reads the certificate files (or PEM options): the next connection uses them; the current one is kept.
   * Throws ErpsConfigError (and keeps the old certificates) if they cannot be read.
   */
  reloadTls(): void {
    if (this.reloader === undefined) throw new ErpsConfigError('ErpsClient.reloadTls(): the transport is not "tls"');
    this.reloader.reload();
  }

  private watchTls(): void {
    this.stopWatching =
      this.reloader?.watch(
        () => undefined,
        (err) => new Logger('ErpsClient').error(`TLS reload failed, keeping the previous certificates: ${describeError(err)}`),
      ) ?? this.stopWatching;
  }

  /** Closes every connection; pending and queued calls fail with ErpsClosedError. A later connect() starts afresh. */
  async close(): Promise<void> {
    if (this.channel.status === 'closed') return;
    this.stopWatching();
    this.pushSubject.complete();
    await this.channel.close();
  }

  override on<K extends keyof ErpsClientEvents = keyof ErpsClientEvents, C extends ErpsClientEvents[K] = ErpsClientEvents[K]>(event: K, callback: C): void {
    this.channel.on<K>(event, callback);
  }

  /**
   * The socket (`tls.TLSSocket`, `net.Socket`, or a Duplex for 'local') of the current connection, or of the one
   * being dialled while the handshake is under way. Throws ErpsDisconnectedError when there is none.
   */
  unwrap<T>(): T {
    const socket = this.channel.socket();
    if (socket === undefined) throw new ErpsDisconnectedError('ErpsClient has no connection: nothing to unwrap (call connect() first)');
    return socket as T;
  }

  /**
   * A call. Cold: each subscription sends one CALL; unsubscribing before the end sends CANCEL.
   * `data` may be an ErpsRecord (headers + per-call options).
   */
  override send<TResult = unknown, TInput = unknown>(pattern: unknown, data: TInput, options?: ErpsCallOptions): Observable<TResult> {
    const wire = this.plainWire(pattern, data, options);
    const message = wire === undefined ? this.prepare(pattern, data, options) : undefined;
    // eslint-disable-next-line @typescript-eslint/unbound-method -- rxjs calls it as a method of the CallObservable
    return new CallObservable<TResult>(this, message, wire, data, ErpsClient.subscribeCall);
  }

  /** The subscribe function of every CallObservable (one function, no closure per call). */
  private static readonly subscribeCall = function (this: CallObservable<unknown>, subscriber: Subscriber<unknown>): TeardownLogic {
    return this.client.subscribeCall(this, subscriber);
  };

  /** One subscription to a call's Observable: sends the CALL. Returns the teardown (CANCEL). */
  private subscribeCall(source: CallObservable<unknown>, subscriber: Subscriber<unknown>): TeardownLogic {
    // Replies go through the user's serializers, if any; the subscription's life (closed, teardowns) stays the subscriber's.
    const observer: CallObserver = this.mapsReplies ? this.mapReplies(subscriber) : subscriber;
    const message = source.message;
    if (message instanceof Error) return observer.error(message);
    if (clientCallChannel.hasSubscribers) return this.tracedCall(message ?? this.plainMessage(source.wire!, source.data), subscriber, observer);
    const call =
      message === undefined
        ? new OutgoingCall(source.wire!, null, source.data, observer, this.config.timeoutMs, false)
        : new OutgoingCall(message.wire, message.meta, message.data, observer, message.timeoutMs, message.idempotent);
    const current = this.channel.pick();
    // The common case, with no closures: connected, so the call goes out now; the call is its own teardown (CANCEL).
    if (current !== undefined) {
      current.call(call);
      return call;
    }
    this.routeCall(call, message ?? this.plainMessage(source.wire!, source.data), subscriber, observer);
    return call;
  }

  private routeCall(call: OutgoingCall, message: PreparedMessage, subscriber: Subscriber<unknown>, observer: CallObserver): void {
    const start = (link: ClientLink): void => {
      if (!subscriber.closed) link.call(call);
    };
    this.channel.route({ start, fail: (err) => observer.error(err) }, message.waitForReady, message.timeoutMs, (leave) => subscriber.add(leave));
  }

  /** A call while `erps:client:call` has subscribers: they may add headers (trace context) before it is encoded. */
  private tracedCall(message: PreparedMessage, subscriber: Subscriber<unknown>, target: CallObserver): () => void {
    const traced: ErpsClientCallMessage = { kind: 'call', pattern: message.wire.text, headers: { ...message.headers }, data: message.data };
    clientCallChannel.start.publish(traced);
    let observer: TracedObserver;
    try {
      const meta = buildMeta(traced.headers, message.hasContext, message.context);
      observer = new TracedObserver(target, traced);
      const call = new OutgoingCall(message.wire, meta, message.data, observer, message.timeoutMs, message.idempotent);
      observer.call = call;
      const current = this.channel.pick();
      if (current !== undefined) current.call(call);
      else this.routeCall(call, message, subscriber, target);
    } finally {
      clientCallChannel.end.publish(traced);
    }
    return () => {
      observer.cancelled();
      observer.call?.unsubscribe();
    };
  }

  /**
   * Asks a server of the fleet (the one the balancer picks, as for a call) for the status of `service` through the
   * health service (docs/PROTOCOL.md): '' (the default) is the server as a whole. A real round trip, answered by the
   * server itself (no handler, guard or interceptor runs). Resolves with SERVING, NOT_SERVING (set so, or draining)
   * or SERVICE_UNKNOWN (a name the server never set) and the round-trip time. Rejects like a call when no server
   * answers (ErpsDisconnectedError, ErpsTimeoutError, ...), and with ErpsHealthUnsupportedError when the server
   * predates the health service. Headers, dispatch hooks and serializers do not apply.
   */
  health(service = '', options: ErpsHealthCheckOptions = {}): Promise<ErpsHealthResult> {
    const timeoutMs = options.timeoutMs ?? this.config.timeoutMs;
    return new Promise<ErpsHealthResult>((resolve, reject) => {
      let sentAt = 0;
      let answer: unknown;
      // An error reply is passed on as a call's would be, except the one of a server without the health service.
      const failed = (err: unknown): void => reject((err as { code?: unknown } | null)?.code === 'ERPS_NO_HANDLER' && !(err instanceof Error) ? this.healthRefused(call, err) : err);
      const call = new OutgoingCall(
        this.encodePattern(HEALTH_PATTERN),
        null,
        { service },
        {
          next: (value) => (answer = value),
          error: failed,
          complete: () => {
            const rttMs = performance.now() - sentAt;
            const status = healthReplyStatus(answer);
            if (status === undefined) return reject(this.healthRefused(call, answer));
            const endpoint = call.endpoint;
            resolve(endpoint === undefined ? { status, rttMs } : { status, rttMs, endpoint });
          },
        },
        timeoutMs,
        false,
      );
      const start = (link: ClientLink): void => {
        sentAt = performance.now();
        link.call(call);
      };
      const current = this.channel.pick();
      if (current !== undefined) return start(current);
      this.channel.route({ start, fail: failed }, options.waitForReady ?? false, timeoutMs, () => undefined);
    });
  }

  /** NODE_DEBUG=erps: the client's status, each endpoint's state (with why it failed or closed), each reconnect scheduled. */
  private debugLifecycle(): void {
    this.channel.on<'status'>('status', (status) => debug('client: status %s', status));
    this.channel.on<'endpoint'>('endpoint', (info) => {
      const why = info.lastError === undefined ? '' : `: ${describeError(info.lastError)}`;
      debug('client: endpoint %s:%d is %s%s', info.host, info.port, info.state, why);
    });
    this.channel.on<'reconnecting'>('reconnecting', (event) => debug('client: reconnecting in %d ms (attempt %d) after: %s', event.delayMs, event.attempt, describeError(event.error)));
  }

  /** A server that answered the health check with something else than a health reply. */
  private healthRefused(call: OutgoingCall, answer: unknown): ErpsHealthUnsupportedError {
    const endpoint = call.endpoint;
    const server = endpoint === undefined ? 'the server' : `${endpoint.host}:${endpoint.port}`;
    const code = (answer as { code?: unknown } | null)?.code;
    const message =
      code === 'ERPS_NO_HANDLER'
        ? `${server} does not answer Erps health checks: it predates the health service (ERPS_NO_HANDLER for "${HEALTH_PATTERN}")`
        : `${server} answered the health check with something else than a health reply: ${describeAnswer(answer)}`;
    return new ErpsHealthUnsupportedError(message, answer);
  }

  /**
   * A cast. Hot (sent even without a subscriber); emits `undefined` once written, then completes.
   * `data` may be an ErpsRecord.
   */
  override emit<TResult = unknown, TInput = unknown>(pattern: unknown, data: TInput, options?: ErpsCallOptions): Observable<TResult> {
    const traced = clientCastChannel.hasSubscribers;
    const wire = traced ? undefined : this.plainWire(pattern, data, options);
    const message = wire === undefined ? this.prepare(pattern, data, options) : undefined;
    if (message instanceof Error) return throwError(() => message);
    // The common case: connected and untraced, so the cast is written now and its outcome is already known.
    if (!traced) {
      const link = this.channel.pick();
      if (link !== undefined) {
        try {
          if (message === undefined) link.cast(wire!, null, data);
          else link.cast(message.wire, message.meta, message.data);
        } catch (err) {
          return throwError(() => err);
        }
        return CAST_WRITTEN as Observable<TResult>;
      }
    }
    return this.routeCast(message ?? this.plainMessage(wire!, data));
  }

  /** A cast that waits for a connection, or is traced: hot, its outcome replayed to whoever subscribes later. */
  private routeCast<TResult>(message: PreparedMessage): Observable<TResult> {
    const source = new Observable<TResult>((subscriber) => {
      const traced: ErpsClientCallMessage | undefined = clientCastChannel.hasSubscribers
        ? { kind: 'cast', pattern: message.wire.text, headers: { ...message.headers }, data: message.data }
        : undefined;
      let meta = message.meta;
      if (traced !== undefined) {
        clientCastChannel.start.publish(traced);
        meta = buildMeta(traced.headers, message.hasContext, message.context);
        clientCastChannel.end.publish(traced);
      }
      const start = (link: ClientLink): void => {
        try {
          link.cast(message.wire, meta, message.data);
          if (traced !== undefined) castDone(traced, link);
          subscriber.next(undefined as TResult);
          subscriber.complete();
        } catch (err) {
          if (traced !== undefined) castDone(traced, link, err);
          subscriber.error(err);
        }
      };
      const fail = (err: Error): void => {
        if (traced !== undefined) castDone(traced, undefined, err);
        subscriber.error(err);
      };
      this.channel.route({ start, fail }, message.waitForReady, message.timeoutMs, (leave) => subscriber.add(leave));
    });
    // A replaying connector: a caller that subscribes after a synchronous dispatch still sees the outcome.
    const hot = connectable(source, { connector: () => new ReplaySubject<TResult>(1), resetOnDisconnect: false });
    hot.connect();
    return hot;
  }

  /**
   * Messages the server pushes, optionally only those of one pattern. Survives reconnects: one stream
   * from connect() to close().
   */
  pushes<T = unknown>(pattern?: unknown): Observable<ErpsPush<T>> {
    const pushes$ = this.pushSubject.asObservable() as Observable<ErpsPush<T>>;
    if (pattern === undefined) return pushes$;
    const wire = typeof pattern === 'string' ? pattern : this.normalizePattern(pattern as never);
    return pushes$.pipe(filter((push) => push.pattern === wire));
  }

  /**
   * The wire pattern of a plain message, else undefined (then prepare() does the work, errors included): a pattern
   * already sent once, with no per-call options, no ErpsRecord, no client headers, no dispatch hook and no context to
   * forward. Such a message is its pattern and data; the rest is the client's defaults (plainMessage).
   */
  private plainWire(pattern: unknown, data: unknown, options: ErpsCallOptions | undefined): WirePattern | undefined {
    if (typeof pattern !== 'string' || options !== undefined || data instanceof ErpsRecord) return undefined;
    if (this.options.headers !== undefined || this.options.forwardContext !== undefined || this.dispatchHook !== undefined) return undefined;
    return this.patternCache.get(pattern);
  }

  /** What prepare() would have made of a plain message. */
  private plainMessage(wire: WirePattern, data: unknown): PreparedMessage {
    const config = this.config;
    return { wire, meta: null, headers: undefined, hasContext: false, context: undefined, data, timeoutMs: config.timeoutMs, waitForReady: config.waitForReady, idempotent: false };
  }

  /** Nest's onDispatch hook, where the Nest version has one. */
  private get dispatchHook(): ((packet: ReadPacket) => void) | undefined {
    return (this as unknown as { onDispatchHook?: (packet: ReadPacket) => void }).onDispatchHook;
  }

  /**
   * Everything a message needs before it can go out, computed at send()/emit() time (so the caller's
   * AsyncLocalStorage context is the one captured). Returns the error instead of throwing.
   */
  private prepare(pattern: unknown, data: unknown, options: ErpsCallOptions | undefined): PreparedMessage | Error {
    try {
      let headers = this.options.headers;
      let callOptions = options;
      if (data instanceof ErpsRecord) {
        headers = headers ? { ...headers, ...data.headers } : data.headers;
        callOptions = { ...data.options, ...options };
        data = data.data;
      }
      const hook = this.dispatchHook;
      if (hook !== undefined) {
        const packet: ReadPacket & { metadata?: Record<string, string> } = { pattern, data }; // Nest 11's ReadPacket has no metadata
        hook(packet);
        if (packet.metadata !== undefined) headers = { ...headers, ...packet.metadata };
      }
      if (headers !== undefined && headers !== this.options.headers) validateHeaders(headers);
      const forward = this.options.forwardContext;
      const store: unknown = forward?.storage.getStore();
      const hasContext = store !== undefined;
      const context = hasContext && forward!.encode ? forward!.encode(store) : store;
      const meta = buildMeta(headers, hasContext, context);
      const timeoutMs = callOptions?.timeoutMs ?? this.config.timeoutMs;
      return {
        wire: this.encodePattern(pattern),
        meta,
        headers,
        hasContext,
        context,
        data,
        timeoutMs,
        waitForReady: callOptions?.waitForReady ?? this.config.waitForReady,
        idempotent: callOptions?.idempotent === true,
      };
    } catch (err) {
      return err instanceof Error ? err : new Error(String(err));
    }
  }

  /**
   * What Nest's clients do with replies: `serializeResponse` on each value, `serializeError` on the error (a subclass
   * may override either), after a `deserializer` given in the options.
   */
  private mapReplies(subscriber: Subscriber<unknown>): CallObserver {
    const deserializer = this.options.deserializer;
    const incoming = (packet: { response?: unknown; err?: unknown }): { response?: unknown; err?: unknown } =>
      deserializer === undefined ? packet : (deserializer.deserialize(packet) as { response?: unknown; err?: unknown });
    return {
      next: (value) => {
        let mapped: unknown;
        try {
          const packet = incoming({ response: value });
          if (packet.err !== undefined && packet.err !== null) return subscriber.error(this.serializeError(packet.err));
          mapped = this.serializeResponse(packet.response);
        } catch (err) {
          // A throwing hook fails this call only, never the connection that read the reply.
          return subscriber.error(err);
        }
        subscriber.next(mapped);
      },
      error: (err: unknown) => {
        let mapped: unknown;
        try {
          mapped = this.serializeError(incoming({ err }).err ?? err);
        } catch (thrown) {
          mapped = thrown;
        }
        subscriber.error(mapped);
      },
      complete: () => subscriber.complete(),
    };
  }

  protected publish(packet: ReadPacket, callback: (packet: WritePacket) => void): () => void {
    const subscription = this.send(packet.pattern, packet.data).subscribe({
      next: (response) => callback({ response }),
      error: (err: unknown) => callback({ err }),
      complete: () => callback({ isDisposed: true }),
    });
    return () => subscription.unsubscribe();
  }

  protected dispatchEvent<T = unknown>(packet: ReadPacket): Promise<T> {
    return new Promise<T>((resolve, reject) => this.emit<T>(packet.pattern, packet.data).subscribe({ next: resolve, error: reject }));
  }

  private encodePattern(pattern: unknown): WirePattern {
    const key = typeof pattern === 'string' ? pattern : this.normalizePattern(pattern as never);
    let wire = this.patternCache.get(key);
    if (wire === undefined) {
      wire = wirePattern(key);
      if (this.patternCache.size < PATTERN_CACHE_LIMIT) this.patternCache.set(key, wire);
    }
    return wire;
  }
}

/** The endpoint of the link that carried `call` last (its answer came from there). */
function describeAnswer(answer: unknown): string {
  try {
    return JSON.stringify(answer)?.slice(0, 200) ?? String(answer);
  } catch {
    return String(answer);
  }
}
