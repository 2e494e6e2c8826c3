import { EventEmitter } from 'node:events';
import type { ClientConfig } from '../config/client-config.js';
import { ErpsClosedError, ErpsDisconnectedError, ErpsHandshakeError, ErpsQueueFullError, ErpsReconnectGaveUpError, ErpsTimeoutError, describeError } from '../errors/index.js';
import { backoffDelay } from './backoff.js';
import type { ClientLink } from './client-link.js';
import { Connector, defaultConnector } from './connector.js';
import { Endpoint, EndpointEvents } from './endpoint.js';

/** Client status values, pushed to Nest's `status` observable and emitted as `on('status')`. */
export type ErpsClientStatus = 'idle' | 'connecting' | 'connected' | 'disconnected' | 'reconnecting' | 'failed' | 'closed';

export interface ErpsReconnectingEvent {
  attempt: number;
  delayMs: number;
  error: Error;
}

/** The client's events and their arguments (`client.on(name, callback)`); every status is an event too. */
export type ErpsClientEvents = {
  status: (status: ErpsClientStatus) => void;
  reconnecting: (event: ErpsReconnectingEvent) => void;
  error: (err: Error) => void;
} & { [S in Exclude<ErpsClientStatus, 'reconnecting'>]: (status: S) => void };

/** A typed snapshot of the client's live numbers. */
export interface ErpsClientStats {
  status: ErpsClientStatus;
  /** Calls awaiting replies on every connection. */
  inFlight: number;
  /** Calls waiting for a connection (waitForReady). */
  queued: number;
  connections: number;
}

/** Something to send once a link is ready: a call or a cast, already prepared. */
export interface Pending {
  start: (link: ClientLink) => void;
  fail: (err: Error) => void;
}

interface QueuedCall extends Pending {
  timer: NodeJS.Timeout | undefined;
}

/**
 * The client without Nest: the client-wide status, the connect() promise, the queue of calls waiting for a
 * connection, and picking the link a message goes over (pick-first over the endpoints; one endpoint today, and the
 * place for a balancer). Endpoints own their connections and backoff; the channel decides what a failure means.
 */
export class Channel implements EndpointEvents {
  private readonly events = new EventEmitter();
  private readonly endpoints: Endpoint[];
  private state: ErpsClientStatus = 'idle';
  private everConnected = false;
  private outcome: { promise: Promise<void>; resolve(): void; reject(err: Error): void } | undefined;
  private failure: Error | undefined;
  /** The error of the last failed connection attempt (cause of queued calls' timeouts). */
  private lastConnectError: Error | undefined;
  private queue: QueuedCall[] = [];

  constructor(
    private readonly config: ClientConfig,
    private readonly onPush: (pattern: string, data: unknown) => void,
    private readonly statusChanged: (status: ErpsClientStatus) => void,
    connector: Connector = defaultConnector,
  ) {
    this.endpoints = [new Endpoint(config.host, config.port, config, connector, this)];
  }

  get status(): ErpsClientStatus {
    return this.state;
  }

  on<K extends keyof ErpsClientEvents>(event: K, callback: ErpsClientEvents[K]): void {
    this.events.on(event, callback as (...args: unknown[]) => void);
  }

  /** The link a new message goes over: pick-first, the first endpoint with a usable one. */
  pick(): ClientLink | undefined {
    for (const endpoint of this.endpoints) {
      const link = endpoint.link;
      if (link !== undefined && link.usable) return link;
    }
    return undefined;
  }

  /** The socket of the picked link, or of a connection being dialled. */
  socket(): unknown {
    for (const endpoint of this.endpoints) if (endpoint.socket !== undefined) return endpoint.socket;
    return undefined;
  }

  stats(): ErpsClientStats {
    let inFlight = 0;
    let connections = 0;
    for (const endpoint of this.endpoints) {
      for (const link of endpoint.links) inFlight += link.inFlight;
      connections += endpoint.links.size;
    }
    return { status: this.state, inFlight, queued: this.queue.length, connections };
  }

  /**
   * Connects (idempotent: concurrent callers share one attempt). Resolves once connected; rejects with the
   * attempt's typed error. After a failure the endpoints keep retrying in the background (see `reconnect`).
   */
  connect(): Promise<void> {
    if (this.state === 'closed') this.reopen();
    if (this.pick() !== undefined) return Promise.resolve();
    if (this.state === 'failed') return Promise.reject(this.failure!);
    const outcome = this.nextOutcome();
    for (const endpoint of this.endpoints) endpoint.connect();
    return outcome;
  }

  /** Sends `message` over the picked link, or connects lazily, queues (waitForReady) or fails fast. */
  route(message: Pending, waitForReady: boolean, timeoutMs: number, cancelled: (leave: () => void) => void): void {
    const link = this.pick();
    if (link !== undefined) return message.start(link);
    if (this.state === 'closed') return message.fail(new ErpsClosedError());
    if (this.state === 'failed') return message.fail(this.failure!);
    if (waitForReady) return this.enqueue(message, timeoutMs, cancelled);
    if (!this.everConnected) {
      // The first use connects lazily, as Nest clients do.
      this.connect().then(
        () => {
          const ready = this.pick();
          if (ready !== undefined) message.start(ready);
          else message.fail(new ErpsDisconnectedError());
        },
        (err: Error) => message.fail(err),
      );
      return;
    }
    message.fail(new ErpsDisconnectedError(`Erps client is ${this.state}: call failed fast (set waitForReady to queue it)`));
  }

  /** Closes every connection; pending and queued calls fail with ErpsClosedError. A later connect() starts afresh. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.setStatus('closed');
    const closed = new ErpsClosedError();
    this.settleOutcome(closed);
    this.failQueue(closed);
    await Promise.all(this.endpoints.map((endpoint) => endpoint.close(closed)));
  }

  // ---- EndpointEvents ----

  attempting(_endpoint: Endpoint, retrying: boolean): void {
    this.setStatus(this.everConnected || retrying ? 'reconnecting' : 'connecting');
  }

  ready(_endpoint: Endpoint, link: ClientLink): void {
    this.everConnected = true;
    this.setStatus('connected');
    this.settleOutcome();
    this.flushQueue(link);
  }

  attemptFailed(endpoint: Endpoint, error: Error): void {
    this.lastConnectError = error;
    this.settleOutcome(error);
    // A REJECT would come again for the same HELLO, except "server full" and "shutting down": those pass.
    if (error instanceof ErpsHandshakeError && !error.retryable) this.fail(error);
    else this.retry(endpoint, error);
  }

  down(endpoint: Endpoint, reason: Error | undefined): void {
    if (this.state === 'closed' || this.pick() !== undefined) return;
    this.setStatus('disconnected');
    this.retry(endpoint, reason ?? new ErpsDisconnectedError('connection closed'));
  }

  push(pattern: string, data: unknown): void {
    this.onPush(pattern, data);
  }

  // ---- the state machine ----

  private retry(endpoint: Endpoint, error: Error): void {
    if (this.state === 'closed' || this.state === 'failed') return;
    const policy = this.config.reconnect;
    if (policy === false) {
      this.setStatus('disconnected');
      this.failQueue(error);
      return;
    }
    if (endpoint.attempts >= policy.maxAttempts) {
      this.fail(new ErpsReconnectGaveUpError(`gave up reconnecting after ${endpoint.attempts} attempts: ${describeError(error)}`, error));
      return;
    }
    const delayMs = backoffDelay(endpoint.attempts, policy.minDelayMs, policy.maxDelayMs);
    // Retrying with nothing waiting must not keep a process alive (Nest's TCP client lets a script exit).
    endpoint.retryIn(delayMs, this.queue.length > 0);
    this.setStatus('reconnecting');
    this.events.emit('reconnecting', { attempt: endpoint.attempts, delayMs, error } satisfies ErpsReconnectingEvent);
  }

  /** A terminal failure (handshake REJECT, attempts exhausted): queued calls fail, no more retries. */
  private fail(error: Error): void {
    this.failure = error;
    for (const endpoint of this.endpoints) endpoint.stopRetrying();
    this.setStatus('failed');
    if (this.events.listenerCount('error') > 0) this.events.emit('error', error);
    this.failQueue(error);
  }

  /** After close(), connect() starts afresh (as Nest's TCP client does). */
  private reopen(): void {
    this.state = 'idle';
    this.failure = undefined;
    this.lastConnectError = undefined;
    this.everConnected = false;
    for (const endpoint of this.endpoints) endpoint.reopen();
  }

  private setStatus(status: ErpsClientStatus): void {
    if (this.state === status) return;
    this.state = status;
    this.statusChanged(status);
    this.events.emit('status', status);
    // 'reconnecting' is emitted with its event object by retry(), never bare.
    if (status !== 'reconnecting') this.events.emit(status, status);
  }

  private enqueue(message: Pending, timeoutMs: number, cancelled: (leave: () => void) => void): void {
    if (this.queue.length >= this.config.maxQueued) return message.fail(new ErpsQueueFullError(this.config.maxQueued));
    const entry: QueuedCall = { start: message.start, fail: message.fail, timer: undefined };
    const leave = (): void => {
      const at = this.queue.indexOf(entry);
      if (at >= 0) this.queue.splice(at, 1);
      clearTimeout(entry.timer);
    };
    if (timeoutMs > 0 && Number.isFinite(timeoutMs)) {
      entry.timer = setTimeout(() => {
        leave();
        entry.fail(new ErpsTimeoutError(timeoutMs, this.lastConnectError));
      }, timeoutMs);
    }
    cancelled(leave);
    this.queue.push(entry);
    for (const endpoint of this.endpoints) {
      // Queued calls keep the process alive until they are sent or fail.
      endpoint.holdProcess();
      endpoint.connect();
    }
  }

  private flushQueue(link: ClientLink): void {
    for (const entry of this.takeQueue()) entry.start(link);
  }

  private failQueue(err: Error): void {
    for (const entry of this.takeQueue()) entry.fail(err);
  }

  /** Empties the queue: its entries, their timeouts cleared. */
  private takeQueue(): QueuedCall[] {
    const queue = this.queue;
    this.queue = [];
    for (const entry of queue) clearTimeout(entry.timer);
    return queue;
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
}
