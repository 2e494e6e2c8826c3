import type { ErpsTransportKind } from '../config/transport.js';
import type { CodecName } from '../protocol/codec.js';
import type { ErpsTlsOptions } from '../tls/tls-options.js';
import type { CompressionOptions } from '../connection/compression.js';
import type { ForwardContextOptions } from '../forward-context.js';

export interface ErpsReconnectOptions {
  /** First retry delay ceiling (ms). Default 100. */
  minDelayMs?: number;
  /** Largest retry delay ceiling (ms). Default 5000. */
  maxDelayMs?: number;
  /** Attempts after a lost connection before the client gives up ('failed'). Default Infinity. */
  maxAttempts?: number;
}

/** One daemon of a fleet. */
export interface ErpsEndpointAddress {
  host: string;
  port: number;
  /** The name the server certificate must carry (TLS SNI and verification). Default: `host`. */
  serverName?: string;
}

/** How calls are spread over the ready endpoints (docs/LOAD-BALANCING.md). */
export type ErpsBalancing = 'least-in-flight' | 'round-robin' | 'pick-first';

export interface ErpsDiscoveryCommon {
  /** Re-resolve this often (ms); also at once (at most once a second) when an endpoint fails. Default 30000. */
  refreshMs?: number;
}

export interface ErpsDnsServersOption {
  /** DNS servers to ask ('127.0.0.1:5353', '[::1]:53'). Default: the system resolver (getaddrinfo for `dns`, so /etc/hosts and search domains apply). */
  servers?: string[];
}

/** Every A/AAAA record of a name, all on one port (a Kubernetes headless Service). */
export interface ErpsDnsDiscovery extends ErpsDiscoveryCommon, ErpsDnsServersOption {
  dns: string;
  port: number;
  /** The name the server certificates carry. Default: the `dns` name. */
  serverName?: string;
}

/** SRV records give host and port (Consul's DNS interface, Kubernetes named ports). Priority and weight are not used. */
export interface ErpsSrvDiscovery extends ErpsDiscoveryCommon, ErpsDnsServersOption {
  srv: string;
  /** The name the server certificates carry. Default: each record's target name. */
  serverName?: string;
}

/** Any registry (Consul HTTP API, etcd, a file): resolves to the current endpoints. */
export interface ErpsCustomDiscovery extends ErpsDiscoveryCommon {
  resolve: () => Promise<ErpsEndpointAddress[]>;
}

export type ErpsDiscoveryOptions = ErpsDnsDiscovery | ErpsSrvDiscovery | ErpsCustomDiscovery;

/**
 * Ejects an endpoint whose calls fail with transport errors or timeouts `consecutiveFailures` times in a row: no new
 * calls for `baseEjectionMs` × (ejections in a row), at most `maxEjectionMs`, and never more than `maxEjectedPercent`
 * of the fleet (rounded down: a fleet of one is never ejected).
 */
export interface ErpsOutlierDetectionOptions {
  /** Default 5. */
  consecutiveFailures?: number;
  /** Default 30000. */
  baseEjectionMs?: number;
  /** Default 300000. */
  maxEjectionMs?: number;
  /** Default 50. */
  maxEjectedPercent?: number;
}

export interface ErpsClientOptions {
  /** Server address. Default '127.0.0.1'. One endpoint; see `endpoints` and `discovery` for several. */
  host?: string;
  /** Server port. Required for 'tls' and 'tcp' unless `endpoints` or `discovery` is given. */
  port?: number;
  /** Several daemons to spread calls over, instead of `host`/`port`. */
  endpoints?: ErpsEndpointAddress[];
  /** Find the daemons by DNS (A/AAAA or SRV) or any resolver, re-resolved every `refreshMs`. */
  discovery?: ErpsDiscoveryOptions;
  /** Connections to each endpoint (≥ the workers of a node:cluster daemon to reach them all). Default 1. */
  connectionsPerEndpoint?: number;
  /** How calls are spread over ready endpoints. Default 'least-in-flight' (power of two choices). */
  balancing?: ErpsBalancing;
  /** Retries of an `idempotent` call whose connection died after it was written, on other endpoints, within its timeout. Default 2. */
  maxRetries?: number;
  /** Outlier ejection; false turns it off. On by default (see ErpsOutlierDetectionOptions). */
  outlierDetection?: ErpsOutlierDetectionOptions | false;
  /**
   * 'tls' = mutual TLS (default); 'tcp' = plain TCP for development (logged as a warning);
   * 'local' = connect in-process to an ErpsServer with transport 'local' (no socket, no certificates).
   */
  transport?: ErpsTransportKind;
  /** Under 'local': the server's `localName` (default: the identifier). */
  localName?: string;
  /** CA (to verify the server), client certificate and key, as PEM or files; plus any Node TLS client option. */
  tls?: ErpsTlsOptions;
  /** Protocol identifier; must equal the server's. Default 'erps'. */
  identifier?: string;
  /** This client's semver version; must satisfy the server's `versions` range. Default '0.0.0'. */
  version?: string;
  /** Payload codec; must equal the server's. Default 'msgpack'. */
  codec?: CodecName;
  /** Largest frame body accepted from the server (bytes). Default 4 MiB. */
  maxFrameBytes?: number;
  /** Deepest nesting accepted in a reply or push payload; checked before decoding. Default 64. */
  maxDepth?: number;
  /** Most values (array items, map keys and values) in one reply or push payload. Default 1,000,000. */
  maxElements?: number;
  /**
   * Bytes written but not yet taken by the socket. Above it new calls and casts fail at once with
   * ErpsSlowConsumerError (the server is not reading); above 4× it, or above it for `slowConsumerTimeoutMs`, the
   * connection is closed and redialled. Default 8 MiB.
   */
  maxWriteBufferBytes?: number;
  /** How long the write buffer may stay above maxWriteBufferBytes (ms). Default 10000. */
  slowConsumerTimeoutMs?: number;
  /** A frame from the server that has started must complete within this (ms). Default 30000. */
  frameTimeoutMs?: number;
  /** Heartbeat interval (ms); 0 disables it. Default 5000. */
  keepaliveMs?: number;
  /** The server is dead when it answers none of our PINGs for keepaliveMs × maxMissedPings ms. Default 2. */
  maxMissedPings?: number;
  /** Default call timeout (ms): for the first reply and between stream values. 0 = none. Default 5000. */
  timeoutMs?: number;
  /** TCP connect + TLS + Erps handshake must finish within this (ms). Default 10000. */
  connectTimeoutMs?: number;
  /** Reconnect with exponential backoff and full jitter; false turns it off. */
  reconnect?: ErpsReconnectOptions | false;
  /** Queue calls made while disconnected instead of failing them at once. Default false. */
  waitForReady?: boolean;
  /** Most calls queued while waiting for a connection. Default 1000. */
  maxQueued?: number;
  /** Headers sent with every message (per-message headers from ErpsRecord win). Default none. */
  headers?: Record<string, string>;
  /** Ask the server to compress frame bodies of at least `threshold` bytes (and compress ours). Default off. */
  compression?: CompressionOptions;
  /**
   * As on Nest's clients: turns each reply packet (`{ response }` or `{ err }`) into what the caller sees, before
   * `serializeResponse` / `serializeError`. Default: none (values arrive as decoded).
   */
  deserializer?: { deserialize(packet: unknown, options?: Record<string, unknown>): any }; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Forward the caller's AsyncLocalStorage store with each message (Erps `forward_callers`). */
  forwardContext?: ForwardContextOptions<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}
