import type { ClientConfig } from '../config/client-config.js';
import { algorithmFromFeatures } from '../connection/compression.js';
import { createCodec } from '../protocol/codec.js';
import { ClientLink, LinkEvents, LinkOwner } from './client-link.js';
import type { Connector } from './connector.js';
import type { ErpsEndpointAddress } from './erps-client-options.js';
import type { OutgoingCall } from './outgoing-call.js';
import { ErpsSlowConsumerError } from '../errors/index.js';
import { lifecycleChannels, publishLifecycle } from '../observability/channels.js';
import { debug } from '../debug.js';

/** Connectivity of one endpoint (grpc-js's subchannel states, plus `ejected` by outlier detection). */
export type EndpointState = 'idle' | 'connecting' | 'ready' | 'transient-failure' | 'ejected';

/** One endpoint as `client.endpoints()` and the `endpoint` event report it. */
export interface ErpsEndpointInfo {
  host: string;
  port: number;
  serverName?: string;
  state: EndpointState;
  /** Calls awaiting replies on its connections. */
  inFlight: number;
  /** Open connections (ready ones and those draining after GOAWAY). */
  connections: number;
  /** Calls sent to it, resends included. */
  calls: number;
  /** The last failed attempt or lost connection, until it is ready again. */
  lastError?: Error;
}

/** What an endpoint tells the channel that owns it. */
export interface EndpointEvents {
  /** A connection attempt starts; `retrying` when this endpoint has connected or failed before. */
  attempting(endpoint: Endpoint, retrying: boolean): void;
  ready(endpoint: Endpoint, link: ClientLink): void;
  attemptFailed(endpoint: Endpoint, error: Error): void;
  /** A connection was lost (`reason` undefined: closed cleanly) and no attempt is under way. */
  down(endpoint: Endpoint, reason: Error | undefined): void;
  /** The links that accept calls changed (GOAWAY, a lost link, an ejection and its end). */
  linksChanged(endpoint: Endpoint): void;
  stateChanged(endpoint: Endpoint): void;
  /** A retired endpoint closed its last connection. */
  gone(endpoint: Endpoint): void;
  push(pattern: string, data: unknown): void;
  resend(call: OutgoingCall, from: ClientLink, err: unknown, written: boolean): boolean;
  callFailed(endpoint: Endpoint): void;
}

/**
 * One server address: its connectivity state, its reconnect attempts and timer, its links (up to
 * `connectionsPerEndpoint`, dialled one after the other), and whether outlier detection ejected it. It dials through
 * the connector and tells the channel; the channel decides what a failure means.
 *
 * Invariants: at most one attempt in flight or scheduled (`attemptInFlight` or `retryTimer`); `usable` holds the
 * links that accept calls; `links` holds every link not yet closed, `usable` ones and those draining after GOAWAY.
 */
export class Endpoint implements LinkOwner {
  consecutiveFailures = 0;
  /** Failed attempts since the last successful one. */
  attempts = 0;
  /** The links that accept new calls. */
  readonly usable: ClientLink[] = [];
  readonly links = new Set<ClientLink>();
  /** Why the last attempt failed or the last link was lost; cleared when a link is ready. */
  lastError: Error | undefined;
  /** Ejected by outlier detection: no new calls until the ejection ends. */
  ejected = false;
  /** Ejections in a row (each one longer), and when the last one ended. */
  ejections = 0;
  lastEjectionEndedAt = -Infinity;
  /** No more attempts (a REJECT that would come again, attempts used up, closed or retired). */
  stopped = false;
  private retired = false;
  private stateValue: EndpointState = 'idle';
  /** Calls sent over links since closed (info().calls counts every call ever sent here). */
  private callsOfClosedLinks = 0;
  private everReady = false;
  private attemptInFlight = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private ejectionTimer: NodeJS.Timeout | undefined;
  /** The socket of the connection being dialled, until its handshake is done. */
  private diallingSocket: unknown;
  private readonly linkEvents: LinkEvents = {
    goaway: (link) => this.onGoaway(link),
    closed: (link, reason) => this.onLinkClosed(link, reason),
    push: (pattern, data) => this.events.push(pattern, data),
    resend: (call, from, err, written) => this.events.resend(call, from, err, written),
    callFailed: () => this.events.callFailed(this),
  };

  constructor(
    readonly address: ErpsEndpointAddress,
    private readonly config: ClientConfig,
    private readonly connector: Connector,
    private readonly events: EndpointEvents,
  ) {}

  get state(): EndpointState {
    return this.stateValue;
  }

  /** The socket of a ready link, or of the connection being dialled. */
  get socket(): unknown {
    return this.usable[0]?.connection.socket ?? this.diallingSocket;
  }

  /** Whether an attempt is under way or scheduled. */
  get busy(): boolean {
    return this.attemptInFlight || this.retryTimer !== undefined;
  }

  get inFlight(): number {
    let inFlight = 0;
    for (const link of this.links) inFlight += link.inFlight;
    return inFlight;
  }

  info(): ErpsEndpointInfo {
    const { host, port, serverName } = this.address;
    let calls = 0;
    for (const link of this.links) calls += link.callsSent;
    const info: ErpsEndpointInfo = { host, port, state: this.stateValue, inFlight: this.inFlight, connections: this.links.size, calls: this.callsOfClosedLinks + calls };
    if (serverName !== undefined) info.serverName = serverName;
    if (this.lastError !== undefined) info.lastError = this.lastError;
    return info;
  }

  /** Dials until `connectionsPerEndpoint` links are usable, one attempt at a time; never while one is under way or scheduled. */
  connect(): void {
    if (this.stopped || this.busy || this.usable.length >= this.config.connectionsPerEndpoint) return;
    void this.attempt();
  }

  /** Schedules the next attempt in `delayMs`; `holdProcess` keeps the process alive meanwhile (calls are waiting). */
  retryIn(delayMs: number, holdProcess: boolean): void {
    if (this.stopped || this.busy) return;
    this.attempts += 1;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.attempt();
    }, delayMs);
    if (!holdProcess) this.retryTimer.unref();
  }

  /** Calls are waiting for this endpoint: a scheduled retry keeps the process alive from now on. */
  holdProcess(): void {
    this.retryTimer?.ref();
  }

  /** No more attempts: the endpoint is given up on (its links, if any, stay). */
  stop(error: Error): void {
    this.stopped = true;
    this.lastError = error;
    this.stopRetrying();
    this.updateState();
  }

  /** Starts afresh after close(). */
  reopen(): void {
    this.stopped = false;
    this.attempts = 0;
    this.everReady = false;
    this.lastError = undefined;
    this.consecutiveFailures = 0;
    this.ejections = 0;
    this.updateState();
  }

  /** Ejected for `durationMs` by outlier detection: its links stay open, but get no new calls. */
  eject(durationMs: number): void {
    this.ejected = true;
    this.ejections += 1;
    this.ejectionTimer = setTimeout(() => this.endEjection(), durationMs).unref();
    this.updateState();
    this.events.linksChanged(this);
  }

  /** It left the fleet (discovery no longer lists it): no new calls, no more attempts; calls in flight finish. */
  retire(): void {
    this.retired = true;
    this.stopped = true;
    this.stopRetrying();
    this.endEjectionTimer();
    this.usable.length = 0;
    for (const link of this.links) link.retire();
    this.updateState();
    this.events.linksChanged(this);
    if (this.links.size === 0) this.events.gone(this);
  }

  /** Fails what is pending on every link with `reason` and closes them; resolves once their sockets are gone. */
  async close(reason: Error): Promise<void> {
    this.stopped = true;
    this.stopRetrying();
    this.endEjectionTimer();
    this.ejected = false;
    this.usable.length = 0;
    this.updateState();
    await Promise.all([...this.links].map((link) => link.shutdown(reason)));
  }

  private stopRetrying(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private endEjection(): void {
    this.ejectionTimer = undefined;
    this.ejected = false;
    this.consecutiveFailures = 0;
    this.lastEjectionEndedAt = performance.now();
    this.updateState();
    this.events.linksChanged(this);
  }

  private endEjectionTimer(): void {
    clearTimeout(this.ejectionTimer);
    this.ejectionTimer = undefined;
  }

  private async attempt(): Promise<void> {
    if (this.stopped) return;
    this.attemptInFlight = true;
    this.updateState();
    this.events.attempting(this, this.everReady || this.attempts > 0);
    const config = this.config;
    const { host, port, serverName } = this.address;
    const tls = config.tls !== undefined && serverName !== undefined ? { ...config.tls, servername: serverName } : config.tls;
    try {
      const { connection, welcome } = await this.connector(
        { host, port, localName: config.localName, tls, hello: config.hello, connection: config.connection, timeoutMs: config.connectTimeoutMs },
        (socket) => (this.diallingSocket = socket),
      );
      this.diallingSocket = undefined;
      this.attemptInFlight = false;
      if (this.stopped) {
        connection.close();
        this.updateState();
        return;
      }
      const compression = config.compression;
      if (compression !== undefined && algorithmFromFeatures(welcome.features) === compression.algorithm) connection.enableCompression(compression);
      const link = new ClientLink(connection, createCodec(config.hello.codec, config.budget), welcome.maxFrameBytes || Infinity, this.linkEvents, this);
      this.links.add(link);
      this.usable.push(link);
      this.everReady = true;
      this.attempts = 0;
      this.lastError = undefined;
      this.updateState();
      this.events.ready(this, link);
      this.connect();
    } catch (err) {
      this.diallingSocket = undefined;
      this.attemptInFlight = false;
      if (this.stopped) return this.updateState();
      this.lastError = err as Error;
      this.updateState();
      this.events.attemptFailed(this, err as Error);
    }
  }

  private onGoaway(link: ClientLink): void {
    debug('client: GOAWAY from %s:%d on connection %d (%d calls finishing there)', this.address.host, this.address.port, link.connection.id, link.inFlight);
    if (!this.dropUsable(link)) return;
    this.updateState();
    this.events.linksChanged(this);
    this.connect();
  }

  private onLinkClosed(link: ClientLink, reason: Error | undefined): void {
    debug('client: connection %d to %s:%d closed: %s', link.connection.id, this.address.host, this.address.port, reason?.message ?? 'cleanly');
    publishLifecycle(lifecycleChannels.clientDisconnect, () => ({ side: 'client', host: this.address.host, port: this.address.port, connectionId: link.connection.id, reason }));
    if (reason instanceof ErpsSlowConsumerError) {
      publishLifecycle(lifecycleChannels.slowConsumer, () => ({ side: 'client', host: this.address.host, port: this.address.port, connectionId: link.connection.id, reason }));
    }
    this.links.delete(link);
    this.callsOfClosedLinks += link.callsSent;
    const wasUsable = this.dropUsable(link);
    if (this.retired) {
      if (this.links.size === 0) this.events.gone(this);
      return;
    }
    if (reason !== undefined) this.lastError = reason;
    this.updateState();
    if (wasUsable) this.events.linksChanged(this);
    if (!this.stopped && !this.busy) this.events.down(this, reason);
  }

  private dropUsable(link: ClientLink): boolean {
    const at = this.usable.indexOf(link);
    if (at < 0) return false;
    this.usable.splice(at, 1);
    return true;
  }

  private updateState(): void {
    const state: EndpointState = this.ejected
      ? 'ejected'
      : this.usable.length > 0
        ? 'ready'
        : this.attemptInFlight
          ? 'connecting'
          : this.lastError !== undefined
            ? 'transient-failure'
            : 'idle';
    if (state === this.stateValue) return;
    this.stateValue = state;
    this.events.stateChanged(this);
  }
}
