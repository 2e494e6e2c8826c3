import { EventEmitter } from 'node:events';
import { checkServerIdentity, type ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import { Logger } from '@nestjs/common';
import { connectable, filter, Observable, ReplaySubject, Subject, Subscriber } from 'rxjs';
import { ClientProxy, ReadPacket, WritePacket } from '@nestjs/microservices';
import semver from 'semver';
import { resolveConnectionOptions, type ConnectionOptions } from '../connection/connection.js';
import {
  ErpsClosedError,
  ErpsConfigError,
  ErpsDisconnectedError,
  ErpsHandshakeError,
  ErpsQueueFullError,
  ErpsReconnectGaveUpError,
  ErpsTimeoutError,
  describeError,
} from '../errors/index.js';
import { createCodec, DEFAULT_MAX_DEPTH, DEFAULT_MAX_ELEMENTS } from '../protocol/codec.js';
import { Hello, WIRE_VERSION } from '../protocol/handshake.js';
import { assertCommonOptions } from '../config/common.js';
import { assertUsable, loadTlsMaterial, secureOptions, watchTlsFiles } from '../tls/tls-options.js';
import { hardenedTlsOptions } from '../tls/hardening.js';
import { backoffDelay } from './backoff.js';
import { ErpsRecord } from './erps-record.js';
import { buildMeta, validateHeaders } from '../protocol/headers.js';
import { wirePattern, WirePattern } from '../protocol/message.js';
import { algorithmFromFeatures, CompressionFeature, FrameCompressor } from '../connection/compression.js';
import { CallObserver, ClientLink, LinkEvents } from './client-link.js';
import { dial, DialOptions } from './dial.js';
import { ErpsClientOptions } from './erps-client-options.js';

/** Client status values, pushed to Nest's `status` observable and emitted as `on('status')`. */
export type ErpsClientStatus = 'idle' | 'connecting' | 'connected' | 'disconnected' | 'reconnecting' | 'failed' | 'closed';

export interface ErpsReconnectingEvent {
  attempt: number;
  delayMs: number;
  error: Error;
}

/** A message the server pushed (Erps `handle_push`). */
export interface ErpsPush<T = unknown> {
  pattern: string;
  data: T;
}

/** Per-call settings (from the client defaults, overridable per call). */
export interface ErpsCallOptions {
  timeoutMs?: number;
  waitForReady?: boolean;
}

interface PreparedMessage {
  wire: WirePattern;
  meta: Record<string, unknown> | null;
  data: unknown;
  timeoutMs: number;
  waitForReady: boolean;
}

interface QueuedCall {
  start(link: ClientLink): void;
  fail(err: Error): void;
  timer: NodeJS.Timeout | undefined;
}

const PATTERN_CACHE_LIMIT = 1024;

/**
 * The Erps client: a thin proxy over one persistent, self-healing connection. `send()` is a call,
 * `emit()` a cast. Registered with `ClientsModule.register([{ name, customClass: ErpsClient, options }])`.
 */
// Plain `ClientProxy` (string status) so that `ClientsModule.register({ customClass: ErpsClient })` type-checks.
export class ErpsClient extends ClientProxy {
  private readonly dialOptions: DialOptions;
  private readonly timeoutMs: number;
  private readonly waitForReady: boolean;
  private readonly maxQueued: number;
  private readonly reconnect: Required<Exclude<ErpsClientOptions['reconnect'], false | undefined>> | false;
  private readonly events = new EventEmitter();
  private readonly patternCache = new Map<string, WirePattern>();
  private readonly links = new Set<ClientLink>();
  private link: ClientLink | undefined;
  private state: ErpsClientStatus = 'idle';
  private everConnected = false;
  private attemptInFlight = false;
  private attempts = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private outcome: { promise: Promise<void>; resolve(): void; reject(err: Error): void } | undefined;
  private failure: Error | undefined;
  /** The error of the last failed connection attempt (cause of queued calls' timeouts). */
  private lastConnectError: Error | undefined;
  /** The socket of the connection being dialled, for unwrap() before the handshake is done. */
  private dialling: unknown;
  private stopWatching: () => void = () => undefined;
  private queue: QueuedCall[] = [];
  private readonly compression: FrameCompressor | undefined;
  private readonly budget: { maxDepth: number; maxElements: number };
  private pushSubject = new Subject<ErpsPush>();
  /** Whether a subclass overrides ClientProxy's serializeError/serializeResponse, or a deserializer was given. */
  private readonly mapsReplies: boolean;
  private readonly linkEvents: LinkEvents = {
    goaway: (link) => this.onGoaway(link),
    closed: (link, reason) => this.onLinkClosed(link, reason),
    push: (pattern, data) => this.pushSubject.next({ pattern, data }),
  };

  constructor(readonly options: ErpsClientOptions) {
    super();
    this.initializeSerializer(options as never);
    this.initializeDeserializer(options as never);
    if (options == null) throw new ErpsConfigError('ErpsClient: options are required');
    const transport = options.transport ?? 'tls';
    const port = options.port ?? -1;
    if (transport !== 'local' && (!Number.isInteger(port) || port < 1 || port > 65535)) {
      throw new ErpsConfigError(`ErpsClient: options.port must be an integer 1..65535, got ${String(options.port)}`);
    }
    const identifier = options.identifier ?? 'erps';
    const version = options.version ?? '0.0.0';
    const codec = options.codec ?? 'msgpack';
    assertCommonOptions('ErpsClient', identifier, codec);
    if (semver.valid(version) === null) throw new ErpsConfigError(`ErpsClient: version "${version}" is not a valid semver version`);
    const host = options.host ?? '127.0.0.1';
    let tlsOptions: TlsConnectionOptions | undefined;
    if (transport === 'tls') {
      const material = loadTlsMaterial(options.tls, 'ErpsClient');
      assertUsable(material, 'ErpsClient');
      const serverName = options.tls?.serverName;
      tlsOptions = {
        minVersion: 'TLSv1.2',
        ...material.rest,
        ...hardenedTlsOptions(material.rest),
        ...secureOptions(material),
        ...(serverName !== undefined ? { servername: serverName, checkServerIdentity: checkAgainst(serverName) } : {}),
      };
    } else if (transport === 'local') {
      // In-process: no socket, no certificates.
    } else if (transport === 'tcp') {
      new Logger('ErpsClient').warn('ErpsClient uses transport "tcp": no encryption, no peer identity. For development only.');
    } else {
      throw new ErpsConfigError(`ErpsClient: unknown transport "${String(transport)}" (expected 'tls', 'tcp' or 'local')`);
    }
    if (options.headers !== undefined) {
      try {
        validateHeaders(options.headers);
      } catch (err) {
        throw new ErpsConfigError(`ErpsClient: headers: ${describeError(err)}`);
      }
    }
    this.compression = options.compression ? new FrameCompressor(options.compression.algorithm ?? 'deflate', options.compression.threshold ?? 1024) : undefined;
    const connection: Required<ConnectionOptions> = resolveConnectionOptions(options);
    const features = this.compression ? CompressionFeature[this.compression.algorithm] : 0;
    const hello: Hello = { wireVersion: WIRE_VERSION, codec, features, identifier, version };
    this.dialOptions = {
      host,
      port,
      localName: transport === 'local' ? (options.localName ?? identifier) : undefined,
      tls: tlsOptions,
      hello,
      connection,
      timeoutMs: options.connectTimeoutMs ?? 10_000,
    };
    this.watchTls();
    this.mapsReplies =
      this.serializeError !== (ClientProxy.prototype as unknown as ErpsClient).serializeError ||
      this.serializeResponse !== (ClientProxy.prototype as unknown as ErpsClient).serializeResponse ||
      options.deserializer !== undefined;
    this.budget = { maxDepth: options.maxDepth ?? DEFAULT_MAX_DEPTH, maxElements: options.maxElements ?? DEFAULT_MAX_ELEMENTS };
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.waitForReady = options.waitForReady ?? false;
    this.maxQueued = options.maxQueued ?? 1000;
    this.reconnect =
      options.reconnect === false
        ? false
        : {
            minDelayMs: options.reconnect?.minDelayMs ?? 100,
            maxDelayMs: options.reconnect?.maxDelayMs ?? 5000,
            maxAttempts: options.reconnect?.maxAttempts ?? Infinity,
          };
  }

  /** Status changes: 'connecting', 'connected', 'disconnected', 'reconnecting', 'failed', 'closed'. */
  override get status(): Observable<ErpsClientStatus> {
    return super.status as Observable<ErpsClientStatus>;
  }

  /** The current status (also on `status` and `on('status')`). */
  get currentStatus(): ErpsClientStatus {
    return this.state;
  }

  /** Live numbers: calls awaiting replies on every connection, calls queued for a connection. */
  stats(): { status: ErpsClientStatus; inFlight: number; queued: number; connections: number } {
    let inFlight = 0;
    for (const link of this.links) inFlight += link.inFlight;
    return { status: this.state, inFlight, queued: this.queue.length, connections: this.links.size };
  }

  /**
   * Connects (idempotent: concurrent callers share one attempt). Resolves once connected; rejects with the
   * attempt's typed error. After a failure the client keeps retrying in the background (see `reconnect`).
   */
  connect(): Promise<void> {
    if (this.state === 'closed') this.reopen();
    if (this.link?.usable) return Promise.resolve();
    if (this.state === 'failed') return Promise.reject(this.failure);
    const outcome = this.nextOutcome();
    if (!this.attemptInFlight && this.reconnectTimer === undefined) void this.runAttempt();
    return outcome;
  }

  /**
   * Re-reads the certificate files (or PEM options): the next connection uses them; the current one is kept.
   * Throws ErpsConfigError (and keeps the old certificates) if they cannot be read.
   */
  reloadTls(): void {
    if (this.dialOptions.tls === undefined) throw new ErpsConfigError('ErpsClient.reloadTls(): the transport is not "tls"');
    const material = loadTlsMaterial(this.options.tls, 'ErpsClient');
    this.dialOptions.tls = { ...this.dialOptions.tls, ...secureOptions(material) };
  }

  private reloadFromWatch(): void {
    try {
      this.reloadTls();
    } catch (err) {
      new Logger('ErpsClient').error(`TLS reload failed, keeping the previous certificates: ${describeError(err)}`);
    }
  }

  /** After close(), connect() starts afresh (as Nest's TCP client does): a new push stream, new connections. */
  private reopen(): void {
    this.state = 'idle';
    this.failure = undefined;
    this.lastConnectError = undefined;
    this.attempts = 0;
    this.everConnected = false;
    this.pushSubject = new Subject<ErpsPush>();
    this.watchTls();
  }

  private watchTls(): void {
    if (this.dialOptions.tls !== undefined) this.stopWatching = watchTlsFiles(this.options.tls, () => this.reloadFromWatch());
  }

  /** Closes every connection; pending and queued calls fail with ErpsClosedError. A later connect() starts afresh. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.setStatus('closed');
    this.stopWatching();
    this.pushSubject.complete();
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const closed = new ErpsClosedError();
    this.settleOutcome(closed);
    this.failQueue(closed);
    const links = [...this.links];
    this.link = undefined;
    await Promise.all(links.map((link) => link.shutdown(closed)));
  }

  override on<EventKey extends string = string, EventCallback extends Function = Function>(event: EventKey, callback: EventCallback): void {
    this.events.on(event, callback as never);
  }

  /**
   * The socket (`tls.TLSSocket`, `net.Socket`, or a Duplex for 'local') of the current connection, or of the one
   * being dialled while the handshake is under way. Throws ErpsDisconnectedError when there is none.
   */
  unwrap<T>(): T {
    if (this.link !== undefined) return this.link.connection.socket as T;
    if (this.dialling !== undefined) return this.dialling as T;
    throw new ErpsDisconnectedError('ErpsClient has no connection: nothing to unwrap (call connect() first)');
  }

  /**
   * A call. Cold: each subscription sends one CALL; unsubscribing before the end sends CANCEL.
   * `data` may be an ErpsRecord (headers + per-call options).
   */
  override send<TResult = unknown, TInput = unknown>(pattern: unknown, data: TInput, options: ErpsCallOptions = {}): Observable<TResult> {
    const message = this.prepare(pattern, data, options);
    return new Observable<TResult>((subscriber) => {
      if (this.mapsReplies) subscriber = this.mapReplies(subscriber);
      if (message instanceof Error) return subscriber.error(message);
      const current = this.link;
      // The common case, with no closures: connected, so the call goes out now and its cancel is the teardown.
      if (current !== undefined && current.usable) {
        return current.call(message.wire, message.meta, message.data, subscriber as CallObserver, message.timeoutMs);
      }
      let cancel: (() => void) | undefined;
      const start = (link: ClientLink): void => {
        if (subscriber.closed) return;
        cancel = link.call(message.wire, message.meta, message.data, subscriber as CallObserver, message.timeoutMs);
      };
      this.route(start, (err) => subscriber.error(err), message.waitForReady, message.timeoutMs, subscriber);
      return () => cancel?.();
    });
  }

  /**
   * A cast. Hot (sent even without a subscriber); emits `undefined` once written, then completes.
   * `data` may be an ErpsRecord.
   */
  override emit<TResult = unknown, TInput = unknown>(pattern: unknown, data: TInput, options: ErpsCallOptions = {}): Observable<TResult> {
    const message = this.prepare(pattern, data, options);
    const source = new Observable<TResult>((subscriber) => {
      if (message instanceof Error) return subscriber.error(message);
      const start = (link: ClientLink): void => {
        try {
          link.cast(message.wire, message.meta, message.data);
          subscriber.next(undefined as TResult);
          subscriber.complete();
        } catch (err) {
          subscriber.error(err);
        }
      };
      this.route(start, (err) => subscriber.error(err), message.waitForReady, message.timeoutMs, subscriber);
    });
    // A replaying connector: a caller that subscribes after a synchronous dispatch still sees the outcome.
    const hot = connectable(source, { connector: () => new ReplaySubject<TResult>(1), resetOnDisconnect: false });
    hot.connect();
    return hot;
  }

  /**
   * Messages the server pushes, optionally only those of one pattern. Survives reconnects: one stream
   * for the client's lifetime, completed by close().
   */
  pushes<T = unknown>(pattern?: unknown): Observable<ErpsPush<T>> {
    const pushes$ = this.pushSubject.asObservable() as Observable<ErpsPush<T>>;
    if (pattern === undefined) return pushes$;
    const wire = typeof pattern === 'string' ? pattern : this.normalizePattern(pattern as never);
    return pushes$.pipe(filter((push) => push.pattern === wire));
  }

  /**
   * Everything a message needs before it can go out, computed at send()/emit() time (so the caller's
   * AsyncLocalStorage context is the one captured). Returns the error instead of throwing.
   */
  private prepare(pattern: unknown, data: unknown, options: ErpsCallOptions): PreparedMessage | Error {
    try {
      let headers = this.options.headers;
      let callOptions = options;
      if (data instanceof ErpsRecord) {
        headers = headers ? { ...headers, ...data.headers } : data.headers;
        callOptions = { ...data.options, ...options };
        data = data.data;
      }
      const hook = (this as unknown as { onDispatchHook?: (packet: ReadPacket) => void }).onDispatchHook;
      if (hook !== undefined) {
        const packet: ReadPacket & { metadata?: Record<string, string> } = { pattern, data }; // Nest 11's ReadPacket has no metadata
        hook(packet);
        if (packet.metadata !== undefined) headers = { ...headers, ...packet.metadata };
      }
      if (headers !== undefined && headers !== this.options.headers) validateHeaders(headers);
      const forward = this.options.forwardContext;
      const store = forward?.storage.getStore();
      const hasContext = store !== undefined;
      const meta = buildMeta(headers, hasContext, hasContext && forward!.encode ? forward!.encode(store) : store);
      const timeoutMs = callOptions.timeoutMs ?? this.timeoutMs;
      return { wire: this.encodePattern(pattern), meta, data, timeoutMs, waitForReady: callOptions.waitForReady ?? this.waitForReady };
    } catch (err) {
      return err instanceof Error ? err : new Error(String(err));
    }
  }

  /**
   * What Nest's clients do with replies: `serializeResponse` on each value, `serializeError` on the error (a subclass
   * may override either), after a `deserializer` given in the options.
   */
  private mapReplies<T>(subscriber: Subscriber<T>): Subscriber<T> {
    const deserializer = this.options.deserializer;
    const incoming = (packet: { response?: unknown; err?: unknown }): { response?: unknown; err?: unknown } =>
      deserializer === undefined ? packet : (deserializer.deserialize(packet) as { response?: unknown; err?: unknown });
    return new Subscriber<T>({
      next: (value) => {
        const packet = incoming({ response: value });
        if (packet.err !== undefined && packet.err !== null) subscriber.error(this.serializeError(packet.err));
        else subscriber.next(this.serializeResponse(packet.response) as T);
      },
      error: (err: unknown) => subscriber.error(this.serializeError(incoming({ err }).err ?? err)),
      complete: () => subscriber.complete(),
    });
  }

  protected publish(packet: ReadPacket, callback: (packet: WritePacket) => void): () => void {
    const subscription = this.send(packet.pattern, packet.data).subscribe({
      next: (response) => callback({ response }),
      error: (err) => callback({ err }),
      complete: () => callback({ isDisposed: true }),
    });
    return () => subscription.unsubscribe();
  }

  protected dispatchEvent<T = unknown>(packet: ReadPacket): Promise<T> {
    return new Promise<T>((resolve, reject) => this.emit<T>(packet.pattern, packet.data).subscribe({ next: resolve, error: reject }));
  }

  /** Sends `start` over the current connection, or connects lazily, queues (waitForReady) or fails fast. */
  private route(start: (link: ClientLink) => void, fail: (err: Error) => void, waitForReady: boolean, timeoutMs: number, subscriber: Subscriber<unknown>): void {
    const link = this.link;
    if (link !== undefined && link.usable) return start(link);
    if (this.state === 'closed') return fail(new ErpsClosedError());
    if (this.state === 'failed') return fail(this.failure!);
    if (waitForReady) return this.enqueue(start, fail, timeoutMs, subscriber);
    if (!this.everConnected) {
      // The first use connects lazily, as Nest clients do.
      this.connect().then(
        () => (this.link?.usable ? start(this.link) : fail(new ErpsDisconnectedError())),
        (err: Error) => fail(err),
      );
      return;
    }
    fail(new ErpsDisconnectedError(`Erps client is ${this.state}: call failed fast (set waitForReady to queue it)`));
  }

  private enqueue(start: (link: ClientLink) => void, fail: (err: Error) => void, timeoutMs: number, subscriber: Subscriber<unknown>): void {
    if (this.queue.length >= this.maxQueued) return fail(new ErpsQueueFullError(this.maxQueued));
    const entry: QueuedCall = { start, fail, timer: undefined };
    const leave = (): void => {
      const at = this.queue.indexOf(entry);
      if (at >= 0) this.queue.splice(at, 1);
      clearTimeout(entry.timer);
    };
    if (timeoutMs > 0 && Number.isFinite(timeoutMs)) {
      entry.timer = setTimeout(() => {
        leave();
        fail(new ErpsTimeoutError(timeoutMs, this.lastConnectError));
      }, timeoutMs);
    }
    subscriber.add(leave);
    this.queue.push(entry);
    // Queued calls keep the process alive until they are sent or fail.
    this.reconnectTimer?.ref();
    if (!this.attemptInFlight && this.reconnectTimer === undefined) void this.runAttempt();
  }

  private flushQueue(link: ClientLink): void {
    const queue = this.queue;
    this.queue = [];
    for (const entry of queue) {
      clearTimeout(entry.timer);
      entry.start(link);
    }
  }

  private failQueue(err: Error): void {
    const queue = this.queue;
    this.queue = [];
    for (const entry of queue) {
      clearTimeout(entry.timer);
      entry.fail(err);
    }
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

  private nextOutcome(): Promise<void> {
    if (this.outcome === undefined) {
      let resolve!: () => void;
      let reject!: (err: Error) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      promise.catch(() => undefined); // nobody may be listening
      this.outcome = { promise, resolve, reject };
    }
    return this.outcome.promise;
  }

  private settleOutcome(err?: Error): void {
    const outcome = this.outcome;
    this.outcome = undefined;
    if (outcome === undefined) return;
    if (err === undefined) outcome.resolve();
    else outcome.reject(err);
  }

  private async runAttempt(): Promise<void> {
    if (this.state === 'closed' || this.state === 'failed') return;
    this.attemptInFlight = true;
    this.reconnectTimer = undefined;
    this.setStatus(this.everConnected || this.attempts > 0 ? 'reconnecting' : 'connecting');
    try {
      const { connection, welcome } = await dial(this.dialOptions, (socket) => (this.dialling = socket));
      this.dialling = undefined;
      if ((this.state as ErpsClientStatus) === 'closed') {
        connection.close();
        return;
      }
      if (this.compression !== undefined && algorithmFromFeatures(welcome.features) === this.compression.algorithm) {
        connection.enableCompression(this.compression);
      }
      const link = new ClientLink(connection, createCodec(this.dialOptions.hello.codec, this.budget), welcome.maxFrameBytes || Infinity, this.linkEvents);
      this.links.add(link);
      this.link = link;
      this.everConnected = true;
      this.attempts = 0;
      this.setStatus('connected');
      this.settleOutcome();
      this.flushQueue(link);
    } catch (err) {
      const error = err as Error;
      this.dialling = undefined;
      this.lastConnectError = error;
      this.settleOutcome(error);
      // A REJECT would come again for the same HELLO, except "server full" and "shutting down": those pass.
      if (error instanceof ErpsHandshakeError && !error.retryable) this.fail(error);
      else this.scheduleReconnect(error);
    } finally {
      this.attemptInFlight = false;
    }
  }

  private scheduleReconnect(error: Error): void {
    if (this.state === 'closed' || this.state === 'failed') return;
    const policy = this.reconnect;
    if (policy === false) {
      this.setStatus('disconnected');
      this.failQueue(error);
      return;
    }
    if (this.attempts >= policy.maxAttempts) {
      this.fail(new ErpsReconnectGaveUpError(`gave up reconnecting after ${this.attempts} attempts: ${describeError(error)}`, error));
      return;
    }
    const delayMs = backoffDelay(this.attempts, policy.minDelayMs, policy.maxDelayMs);
    this.attempts += 1;
    this.setStatus('reconnecting');
    this.events.emit('reconnecting', { attempt: this.attempts, delayMs, error } satisfies ErpsReconnectingEvent);
    this.reconnectTimer = setTimeout(() => void this.runAttempt(), delayMs);
    // Retrying with nothing waiting must not keep a process alive (Nest's TCP client lets a script exit).
    if (this.queue.length === 0) this.reconnectTimer.unref();
  }

  /** A terminal failure (handshake REJECT, attempts exhausted): queued calls fail, no more retries. */
  private fail(error: Error): void {
    this.failure = error;
    this.setStatus('failed');
    if (this.events.listenerCount('error') > 0) this.events.emit('error', error);
    this.failQueue(error);
  }

  private onGoaway(link: ClientLink): void {
    if (this.link !== link) return;
    this.link = undefined;
    if (!this.attemptInFlight && this.reconnectTimer === undefined) void this.runAttempt();
  }

  private onLinkClosed(link: ClientLink, reason: Error | undefined): void {
    this.links.delete(link);
    if (this.state === 'closed') return;
    const wasCurrent = this.link === link;
    if (wasCurrent) this.link = undefined;
    if (this.link === undefined && !this.attemptInFlight && this.reconnectTimer === undefined) {
      this.setStatus('disconnected');
      this.scheduleReconnect(reason ?? new ErpsDisconnectedError('connection closed'));
    }
  }

  private setStatus(status: ErpsClientStatus): void {
    if (this.state === status) return;
    this.state = status;
    this._status$.next(status);
    this.events.emit('status', status);
    // 'reconnecting' is emitted with its event object by scheduleReconnect, never bare.
    if (status !== 'reconnecting') this.events.emit(status, status);
  }
}

function checkAgainst(serverName: string): TlsConnectionOptions['checkServerIdentity'] {
  return (_host, cert) => checkServerIdentity(serverName, cert);
}
