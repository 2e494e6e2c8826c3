import type { CodecName } from '../protocol/codec.js';
import type { ErpsTlsOptions } from '../tls/tls-options.js';
import type { CompressionOptions } from '../connection/compression.js';
import type { ForwardContextOptions } from '../forward-context.js';

/** 'tls' = mutual TLS; 'tcp' = plain TCP (development); 'local' = in-process, no socket (Erps `transport: false`). */
export type ErpsTransportKind = 'tls' | 'tcp' | 'local';

/** Options of the Erps daemon. Every one has a default; see the README for units. */
export interface ErpsServerOptions {
  /** Address to bind. Default '127.0.0.1'. */
  host?: string;
  /** TCP port; 0 picks a free one (read it back with `server.address()`). Default 0. */
  port?: number;
  /**
   * 'tls' = mutual TLS (default); 'tcp' = plain TCP, for development only (logged as a warning);
   * 'local' = in-process only: ErpsClients with transport 'local' and the same `localName` connect without a socket.
   */
  transport?: ErpsTransportKind;
  /** Certificates (PEM or files) plus any Node TLS server option. Required for 'tls'. */
  tls?: ErpsTlsOptions;
  /** Protocol identifier clients must present (1..64 UTF-8 bytes). Default 'erps'. */
  identifier?: string;
  /** semver range the client's `version` must satisfy. Default '*'. */
  versions?: string;
  /** Payload codec. Default 'msgpack'. */
  codec?: CodecName;
  /** Largest frame body accepted (bytes), checked before allocating. Default 64 MiB. */
  maxFrameBytes?: number;
  /** Heartbeat interval (ms); 0 disables it. Default 5000. */
  keepaliveMs?: number;
  /** A client silent for keepaliveMs × maxMissedPings is dropped. Default 2. */
  maxMissedPings?: number;
  /** Time a new connection has to finish TLS and send HELLO (ms). Default 10000. */
  handshakeTimeoutMs?: number;
  /** On close(): how long in-flight calls may run before connections are cut (ms). Default 10000. */
  drainTimeoutMs?: number;
  /** Name local clients connect to under transport 'local'. Default: the identifier. */
  localName?: string;
  /** Compress frame bodies of at least `threshold` bytes for clients that ask for it. Default: off. */
  compression?: CompressionOptions;
  /** Re-enter the caller's AsyncLocalStorage store around each handler (Erps `forward_callers`). */
  forwardContext?: ForwardContextOptions<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}
