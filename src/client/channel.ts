import { EventEmitter } from 'node:events';
import type { ClientConfig } from '../config/client-config.js';
import {
  ErpsClosedError,
  ErpsDisconnectedError,
  ErpsDiscoveryError,
  ErpsHandshakeError,
  ErpsQueueFullError,
  ErpsReconnectGaveUpError,
  ErpsTimeoutError,
  describeError,
} from '../errors/index.js';
import { backoffDelay } from './backoff.js';
import { Balancer, createBalancer } from './balancer/balancer.js';
import type { ClientLink } from './client-link.js';
import { Connector, defaultConnector } from './connector.js';
import { Discovery } from './discovery/discovery.js';
import { createResolve } from './discovery/resolve.js';
import { Endpoint, EndpointEvents, ErpsEndpointInfo } from './endpoint.js';
import type { ErpsEndpointAddress } from './erps-client-options.js';
import type { OutgoingCall } from './outgoing-call.js';
import { OutlierDetector } from './outlier-detection.js';
import { lifecycleChannels, publishLifecycle, socketBytes } from '../observability/channels.js';

/** Client status values, pushed to Nest's `status` observable and emitted as `on('status')`. */
export type ErpsClientStatus = 'idle' | 'connecting' | 'connected' | 'disconnected' | 'reconnecting' | 'failed' | 'closed';

export interface ErpsReconnectingEvent {
  attempt: number;
  delayMs: number;
  error: Error;
}

/** A discovery result: the endpoints now, what changed, or why the resolution failed (the last list stays). */
export interface ErpsDiscoveryEvent {
  endpoints: ErpsEndpointAddress[];
  added: ErpsEndpointAddress[];
  removed: ErpsEndpointAddress[];
  error?: ErpsDiscoveryError;
}

/** The client's events and their arguments (`client.on(name, callback)`); every status is an event too. */
export type ErpsClientEvents = {
  status: (status: ErpsClientStatus) => void;
  reconnecting: (event: ErpsReconnectingEvent) => void;
  error: (err: Error) => void;
  /** An endpoint changed state (ready, connecting, transient-failure, ejected, idle). */
  endpoint: (info: ErpsEndpointInfo) => void;
  discovery: (event: ErpsDiscoveryEvent) => void;
} & { [S in Exclude<ErpsClientStatus, 'reconnecting'>]: (status: S) => void };

/** A typed snapshot of the client's live numbers. */
export interface ErpsClientStats {
  status: ErpsClientStatus;
  /** Calls awaiting replies on every connection. */
  inFlight: number;
  /** Calls waiting for a connection (waitForReady). */
  queued: number;
  connections: number;
  /** Each endpoint: state, calls in flight, connections, calls sent. */
  endpoints: ErpsEndpointInfo[];
}

/** Something to send once a link is ready: a call or a cast, already prepared. */
export interface Pending {
  start: (link: ClientLink) => void;
  fail: (err: Error) => void;
}

interface QueuedCall extends Pending {
  timer: NodeJS.Timeout | undefined;
}

/** A call refused before dispatch is sent again at most this many times (or once per endpoint, if more). */
const MIN_RESENDS_BEFORE_DISPATCH = 3;

/**
 * The client without Nest: the fleet of endpoints (fixed, or kept by discovery), the client-wide status, the
 * connect() promise, the queue of calls waiting for a connection, picking the link a message goes over (the
 * balancer), resending calls that never reached a handler, and outlier ejection. Endpoints own their connections;
 * the channel decides what a failure means.
 */
export class Channel implements EndpointEvents {
  private readonly events = new EventEmitter();
  private endpoints: Endpoint[] = [];
  /** Endpoints discovery dropped whose calls in flight are finishing. */
  private readonly retiring = new Set<Endpoint>();
  /** The links a new message may go over: those of non-ejected endpoints, or of ejected ones if there are no others. */
  private readyLinks: ClientLink[] = [];
  private readonly balancer: Balancer;
  private readonly outliers: OutlierDetector | undefined;
  private readonly discovery: Discovery | undefined;
  private state: ErpsClientStatus = 'idle';
  /** connect() was called or a message wanted a connection: endpoints that appear are dialled. */
  private active = false;
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
    private readonly connector: Connector = defaultConnector,
  ) {
    this.balancer = createBalancer(config.balancing);
    this.outliers = config.outlierDetection === false ? undefined : new OutlierDetector(config.outlierDetection);
    this.endpoints = config.endpoints.map((address) => new Endpoint(address, config, connector, this));
    const discovery = config.discovery;
    if (discovery !== undefined) {
      this.discovery = new Discovery(createResolve(discovery), discovery.refreshMs, {
        resolved: (found) => this.setAddresses(found),
        failed: (error) => this.discoveryFailed(error),
      });
    }
  }

  get status(): ErpsClientStatus {
    return this.state;
  }

  on<K extends keyof ErpsClientEvents>(event: K, callback: ErpsClientEvents[K]): void {
    this.events.on(event, callback as (...args: unknown[]) => void);
  }

  /** The link a new message goes over: the only ready one, or the balancer's choice. */
  pick(): ClientLink | undefined {
    const ready = this.readyLinks;
    const link = ready.length === 1 ? ready[0]! : ready.length === 0 ? undefined : this.balancer.pick(ready);
    return link !== undefined && link.usable ? link : undefined;
  }

  /** The socket of a ready link, or of a connection being dialled. */
  socket(): unknown {
    for (const endpoint of this.endpoints) if (endpoint.socket !== undefined) return endpoint.socket;
    return undefined;
  }

  endpointInfo(): ErpsEndpointInfo[] {
    return this.endpoints.map((endpoint) => endpoint.info());
  }

  stats(): ErpsClientStats {
    let inFlight = 0;
    let connections = 0;
    const endpoints = this.endpointInfo();
    for (const endpoint of endpoints) {
      inFlight += endpoint.inFlight;
      connections += endpoint.connections;
    }
    for (const endpoint of this.retiring) {
      inFlight += endpoint.inFlight;
      connections += endpoint.links.size;
    }
    return { status: this.state, inFlight, queued: this.queue.length, connections, endpoints };
  }

  /**
   * Connects (idempotent: concurrent callers share one attempt). Resolves once an endpoint is ready; rejects with
   * the attempt's typed error once every endpoint has failed once. The endpoints keep retrying in the background.
   */
  connect(): Promise<void> {
    if (this.state === 'closed') this.reopen();
    if (this.pick() !== undefined) return Promise.resolve();
    if (this.state === 'failed') return Promise.reject(this.failure!);
    const outcome = this.nextOutcome();
    this.activate();
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
    this.active = false;
    this.discovery?.stop();
    const closed = new ErpsClosedError();
    this.settleOutcome(closed);
    this.failQueue(closed);
    this.readyLinks = [];
    await Promise.all([...this.endpoints, ...this.retiring].map((endpoint) => endpoint.close(closed)));
    this.retiring.clear();
  }

  // ---- EndpointEvents ----

  attempting(_endpoint: Endpoint, retrying: boolean): void {
    if (this.readyLinks.length === 0) this.setStatus(this.everConnected || retrying ? 'reconnecting' : 'connecting');
  }

  ready(endpoint: Endpoint, link: ClientLink): void {
    publishLifecycle(lifecycleChannels.clientConnect, () => ({ side: 'client', ...hostPort(endpoint), connectionId: link.connection.id, bytes: socketBytes(link.connection.socket) }));
    this.everConnected = true;
    this.rebuildReady();
    this.setStatus('connected');
    this.settleOutcome();
    this.flushQueue();
  }

  attemptFailed(endpoint: Endpoint, error: Error): void {
    if (error instanceof ErpsHandshakeError) publishLifecycle(lifecycleChannels.clientReject, () => ({ side: 'client', ...hostPort(endpoint), code: error.rejectCode, reason: error }));
    this.lastConnectError = error;
    this.discovery?.refreshSoon();
    // connect() fails once no endpoint is ready or still trying its first attempt.
    if (this.readyLinks.length === 0 && !this.endpoints.some((other) => other.state === 'connecting')) this.settleOutcome(error);
    // A REJECT would come again for the same HELLO, except "server full" and "shutting down": those pass.
    if (error instanceof ErpsHandshakeError && !error.retryable) this.stopEndpoint(endpoint, error, error);
    else this.retry(endpoint, error);
  }

  down(endpoint: Endpoint, reason: Error | undefined): void {
    if (this.state === 'closed') return;
    this.discovery?.refreshSoon();
    if (this.readyLinks.length === 0) this.setStatus('disconnected');
    this.retry(endpoint, reason ?? new ErpsDisconnectedError('connection closed'));
  }

  linksChanged(): void {
    this.rebuildReady();
  }

  stateChanged(endpoint: Endpoint): void {
    if (this.events.listenerCount('endpoint') > 0) this.events.emit('endpoint', endpoint.info());
    publishLifecycle(lifecycleChannels.clientEndpoint, () => ({ side: 'client', ...hostPort(endpoint), state: endpoint.state, reason: endpoint.lastError }));
  }

  gone(endpoint: Endpoint): void {
    this.retiring.delete(endpoint);
  }

  push(pattern: string, data: unknown): void {
    this.onPush(pattern, data);
  }

  callFailed(endpoint: Endpoint): void {
    this.outliers?.failed(endpoint, this.endpoints);
  }

  /**
   * Sends a call again over a link of another endpoint (another link of the same one if there is none), within the
   * call's own deadline: a call refused before dispatch (`written` false), or an idempotent one whose connection died
   * after it was written, at most maxRetries times. False: the caller gets the error.
   */
  resend(call: OutgoingCall, from: ClientLink, _err: unknown, written: boolean): boolean {
    if (this.state === 'closed') return false;
    if (written ? !call.idempotent || call.retries >= this.config.maxRetries : call.resends >= Math.max(MIN_RESENDS_BEFORE_DISPATCH, this.endpoints.length)) return false;
    const remaining = call.deadline - performance.now();
    if (!(remaining > 0)) return false;
    const link = this.pickOther(from);
    if (link === undefined) return false;
    call.resends += 1;
    if (written) call.retries += 1;
    if (Number.isFinite(remaining)) call.timeoutMs = Math.ceil(remaining);
    link.call(call);
    return true;
  }

  // ---- the fleet ----

  /** Dials every endpoint (and starts discovery) once the client is wanted. */
  private activate(): void {
    this.active = true;
    if (this.state === 'idle') this.setStatus('connecting');
    this.discovery?.start();
    for (const endpoint of this.endpoints) endpoint.connect();
  }

  private rebuildReady(): void {
    const ready: ClientLink[] = [];
    const ejected: ClientLink[] = [];
    for (const endpoint of this.endpoints) for (const link of endpoint.usable) (endpoint.ejected ? ejected : ready).push(link);
    this.readyLinks = ready.length > 0 ? ready : ejected;
    // Reply latencies are measured only when the balancer has a choice that uses them.
    const timed = this.config.balancing === 'least-in-flight' && ready.length + ejected.length > 1;
    for (const link of ready) link.timed = timed;
    for (const link of ejected) link.timed = timed;
  }

  /** A ready link of another endpoint than `from`'s (balanced), else another link of the same endpoint. */
  private pickOther(from: ClientLink): ClientLink | undefined {
    const others = this.readyLinks.filter((link) => link.owner !== from.owner && link.usable);
    if (others.length > 0) return others.length === 1 ? others[0] : this.balancer.pick(others);
    return this.readyLinks.find((link) => link !== from && link.usable);
  }

  /** Discovery's new list: endpoints that left are retired (their calls in flight finish), new ones dialled. */
  private setAddresses(found: ErpsEndpointAddress[]): void {
    const current = new Map(this.endpoints.map((endpoint) => [addressKey(endpoint.address), endpoint]));
    const next: Endpoint[] = [];
    const added: Endpoint[] = [];
    for (const address of found) {
      const key = addressKey(address);
      const known = current.get(key);
      if (known !== undefined) {
        current.delete(key);
        next.push(known);
      } else if (!next.some((endpoint) => addressKey(endpoint.address) === key)) {
        const endpoint = new Endpoint(address, this.config, this.connector, this);
        next.push(endpoint);
        added.push(endpoint);
      }
    }
    this.endpoints = next;
    for (const endpoint of current.values()) {
      this.retiring.add(endpoint);
      endpoint.retire();
    }
    this.rebuildReady();
    if (added.length > 0 || current.size > 0) {
      this.events.emit('discovery', {
        endpoints: next.map((endpoint) => endpoint.address),
        added: added.map((endpoint) => endpoint.address),
        removed: [...current.values()].map((endpoint) => endpoint.address),
      } satisfies ErpsDiscoveryEvent);
    }
    if (this.active) for (const endpoint of added) endpoint.connect();
  }

  private discoveryFailed(error: ErpsDiscoveryError): void {
    this.events.emit('discovery', { endpoints: this.endpoints.map((endpoint) => endpoint.address), added: [], removed: [], error } satisfies ErpsDiscoveryEvent);
    if (this.endpoints.length > 0) return;
    this.lastConnectError = error;
    this.settleOutcome(error);
  }

  // ---- the state machine ----

  private retry(endpoint: Endpoint, error: Error): void {
    if (this.state === 'closed' || this.state === 'failed') return;
    const policy = this.config.reconnect;
    if (policy === false) {
      if (this.readyLinks.length > 0) return;
      this.setStatus('disconnected');
      this.failQueue(error);
      return;
    }
    if (endpoint.attempts >= policy.maxAttempts) {
      const gaveUp = new ErpsReconnectGaveUpError(`gave up reconnecting after ${endpoint.attempts} attempts: ${describeError(error)}`, error);
      this.stopEndpoint(endpoint, error, gaveUp);
      return;
    }
    const delayMs = backoffDelay(endpoint.attempts, policy.minDelayMs, policy.maxDelayMs);
    // Retrying with nothing waiting must not keep a process alive (Nest's TCP client lets a script exit).
    endpoint.retryIn(delayMs, this.queue.length > 0);
    publishLifecycle(lifecycleChannels.clientReconnecting, () => ({ side: 'client', ...hostPort(endpoint), attempt: endpoint.attempts, delayMs, reason: error }));
    if (this.readyLinks.length > 0) return; // the fleet serves on; the endpoint event tells of this one
    this.setStatus('reconnecting');
    this.events.emit('reconnecting', { attempt: endpoint.attempts, delayMs, error } satisfies ErpsReconnectingEvent);
  }

  /** An endpoint is given up on; when every endpoint is, the client fails with `clientError`. */
  private stopEndpoint(endpoint: Endpoint, error: Error, clientError: Error): void {
    endpoint.stop(error);
    if (this.readyLinks.length === 0 && this.endpoints.every((other) => other.stopped)) this.fail(clientError);
  }

  /** A terminal failure (handshake REJECT, attempts exhausted on every endpoint): queued calls fail, no more retries. */
  private fail(error: Error): void {
    this.failure = error;
    this.discovery?.stop();
    for (const endpoint of this.endpoints) endpoint.stop(endpoint.lastError ?? error);
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
    this.rebuildReady();
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
    // Queued calls keep the process alive until they are sent or fail.
    for (const endpoint of this.endpoints) endpoint.holdProcess();
    this.activate();
  }

  private flushQueue(): void {
    if (this.queue.length === 0) return;
    for (const entry of this.takeQueue()) {
      const link = this.pick();
      if (link !== undefined) entry.start(link);
      else entry.fail(new ErpsDisconnectedError());
    }
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

function hostPort(endpoint: Endpoint): { host: string; port: number } {
  return { host: endpoint.address.host, port: endpoint.address.port };
}

function addressKey(address: ErpsEndpointAddress): string {
  return `${address.host}|${address.port}|${address.serverName ?? ''}`;
}
