import type { CodecName } from '../protocol/codec.js';
import type { ErpsTlsOptions } from '../tls/tls-options.js';
import type { CompressionOptions } from '../connection/compression.js';
import type { ForwardContextOptions } from '../forward-context.js';
import type { PeerIdentity } from '../tls/peer-identity.js';

/** What `authorize` decides on: who asks, for which pattern, call or cast. */
export interface ErpsAuthorizeRequest {
  peer: PeerIdentity | undefined;
  pattern: string;
  kind: 'call' | 'cast';
  connectionId: number;
}

import type { ErpsTransportKind } from '../config/transport.js';

export type { ErpsTransportKind } from '../config/transport.js';

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
  /** Largest frame body accepted (bytes), checked at the frame header. Default 4 MiB. */
  maxFrameBytes?: number;
  /** Most values (array items, map keys and values) in one decoded payload; checked before decoding. Default 1,000,000. */
  maxElements?: number;
  /**
   * Bytes written to one connection but not yet taken by its socket. Above it pushes skip the connection; above 4× it,
   * or above it for `slowConsumerTimeoutMs`, the connection is closed (ErpsSlowConsumerError). Default 8 MiB.
   */
  maxWriteBufferBytes?: number;
  /** How long a connection's write buffer may stay above maxWriteBufferBytes (ms). Default 10000. */
  slowConsumerTimeoutMs?: number;
  /** A frame that has started must complete within this (ms), or its connection is closed. Default 30000. */
  frameTimeoutMs?: number;
  /** Bytes held in incomplete frames across all connections; past it the connection that needs more is closed. Default 64 MiB. */
  maxPartialFrameBytes?: number;
  /** Heartbeat interval (ms); 0 disables it. Default 5000. */
  keepaliveMs?: number;
  /** A client that answers none of our PINGs for keepaliveMs × maxMissedPings is dropped. Default 2. */
  maxMissedPings?: number;
  /** One deadline from the TCP accept to WELCOME: the TLS handshake and HELLO together (ms). Default 10000. */
  handshakeTimeoutMs?: number;
  /** On close(): how long in-flight calls may run before connections are cut (ms). Default 10000. */
  drainTimeoutMs?: number;
  /** Name local clients connect to under transport 'local'. Default: the identifier. */
  localName?: string;
  /** Compress frame bodies of at least `threshold` bytes for clients that ask for it. Default: off. */
  compression?: CompressionOptions;
  /** Re-enter the caller's AsyncLocalStorage store around each handler (Erps `forward_callers`). */
  forwardContext?: ForwardContextOptions<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Most open connections (handshaking included); beyond it new ones get REJECT "server full". Default 10000. */
  maxConnections?: number;
  /** Most calls running on one connection; excess calls get an ERPS_BUSY error reply. Default 1000. */
  maxInFlightPerConnection?: number;
  /** Close a connection with no CALL/CAST and nothing running for this long (ms); 0 = never. Default 0. */
  idleTimeoutMs?: number;
  /** Deepest nesting of arrays/objects accepted in a payload or header map; checked before decoding. Default 64. */
  maxDepth?: number;
  /** Decides per message whether the peer may call/cast the pattern; denied calls get ERPS_FORBIDDEN. */
  authorize?: (request: ErpsAuthorizeRequest) => boolean | Promise<boolean>;
  /** Decides right after the TLS handshake whether a peer may connect at all (REJECT "unauthorized"). */
  allowPeers?: (peer: PeerIdentity | undefined) => boolean;
}
