import type { ClientConfig } from '../config/client-config.js';
import { algorithmFromFeatures } from '../connection/compression.js';
import { createCodec } from '../protocol/codec.js';
import { ClientLink, LinkEvents } from './client-link.js';
import type { Connector } from './connector.js';

/** Connectivity of one endpoint (grpc-js's subchannel states, less the ones a single address does not need yet). */
export type EndpointState = 'idle' | 'connecting' | 'ready' | 'transient-failure';

/** What an endpoint tells the channel that owns it. */
export interface EndpointEvents {
  /** A connection attempt starts; `retrying` when this endpoint has connected or failed before. */
  attempting(endpoint: Endpoint, retrying: boolean): void;
  ready(endpoint: Endpoint, link: ClientLink): void;
  attemptFailed(endpoint: Endpoint, error: Error): void;
  /** The endpoint has no usable link any more and no attempt under way (`reason` undefined: closed cleanly). */
  down(endpoint: Endpoint, reason: Error | undefined): void;
  push(pattern: string, data: unknown): void;
}

/**
 * One server address: its connectivity state, its reconnect attempts and timer, and its links (one today). It dials
 * through the connector and hands the channel a link when one is ready; the channel decides what a failure means.
 *
 * Invariants: at most one attempt in flight or scheduled (`attemptInFlight` or `retryTimer`); `link` is usable or
 * undefined; `links` holds every link not yet closed, the current one and those draining after GOAWAY.
 */
export class Endpoint {
  private stateValue: EndpointState = 'idle';
  private attemptsMade = 0;
  private everReady = false;
  private attemptInFlight = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** The socket of the connection being dialled, until its handshake is done. */
  private diallingSocket: unknown;
  private current: ClientLink | undefined;
  readonly links = new Set<ClientLink>();
  private readonly linkEvents: LinkEvents = {
    goaway: (link) => this.onGoaway(link),
    closed: (link, reason) => this.onLinkClosed(link, reason),
    push: (pattern, data) => this.events.push(pattern, data),
  };

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly config: ClientConfig,
    private readonly connector: Connector,
    private readonly events: EndpointEvents,
  ) {}

  get state(): EndpointState {
    return this.stateValue;
  }

  /** Failed attempts since the last successful one. */
  get attempts(): number {
    return this.attemptsMade;
  }

  /** A link that accepts new calls, if there is one. */
  get link(): ClientLink | undefined {
    return this.current;
  }

  /** The socket of the current link, or of the connection being dialled. */
  get socket(): unknown {
    return this.current?.connection.socket ?? this.diallingSocket;
  }

  /** Whether an attempt is under way or scheduled. */
  get busy(): boolean {
    return this.attemptInFlight || this.retryTimer !== undefined;
  }

  /** Starts an attempt now, unless one is under way or scheduled. */
  connect(): void {
    if (!this.busy && !this.closed) void this.attempt();
  }

  /** Schedules the next attempt in `delayMs`; `holdProcess` keeps the process alive meanwhile (calls are waiting). */
  retryIn(delayMs: number, holdProcess: boolean): void {
    this.attemptsMade += 1;
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

  /** Stops retrying (the endpoint is given up on, or closed). */
  stopRetrying(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /** Starts afresh after close(). */
  reopen(): void {
    this.closed = false;
    this.attemptsMade = 0;
    this.everReady = false;
    this.stateValue = 'idle';
  }

  /** Fails what is pending on every link with `reason` and closes them; resolves once their sockets are gone. */
  async close(reason: Error): Promise<void> {
    this.closed = true;
    this.stopRetrying();
    this.current = undefined;
    this.stateValue = 'idle';
    await Promise.all([...this.links].map((link) => link.shutdown(reason)));
  }

  private async attempt(): Promise<void> {
    if (this.closed) return;
    this.attemptInFlight = true;
    this.stateValue = 'connecting';
    this.events.attempting(this, this.everReady || this.attemptsMade > 0);
    const config = this.config;
    try {
      const { connection, welcome } = await this.connector(
        { host: this.host, port: this.port, localName: config.localName, tls: config.tls, hello: config.hello, connection: config.connection, timeoutMs: config.connectTimeoutMs },
        (socket) => (this.diallingSocket = socket),
      );
      this.diallingSocket = undefined;
      if (this.closed) {
        connection.close();
        return;
      }
      const compression = config.compression;
      if (compression !== undefined && algorithmFromFeatures(welcome.features) === compression.algorithm) connection.enableCompression(compression);
      const link = new ClientLink(connection, createCodec(config.hello.codec, config.budget), welcome.maxFrameBytes || Infinity, this.linkEvents);
      this.links.add(link);
      this.current = link;
      this.everReady = true;
      this.attemptsMade = 0;
      this.stateValue = 'ready';
      this.events.ready(this, link);
    } catch (err) {
      this.diallingSocket = undefined;
      this.stateValue = 'transient-failure';
      this.attemptInFlight = false;
      if (!this.closed) this.events.attemptFailed(this, err as Error);
    } finally {
      this.attemptInFlight = false;
    }
  }

  private onGoaway(link: ClientLink): void {
    if (this.current !== link) return;
    this.current = undefined;
    this.stateValue = 'idle';
    this.connect();
  }

  private onLinkClosed(link: ClientLink, reason: Error | undefined): void {
    this.links.delete(link);
    if (this.closed) return;
    if (this.current === link) {
      this.current = undefined;
      this.stateValue = 'idle';
    }
    if (this.current === undefined && !this.busy) this.events.down(this, reason);
  }
}
