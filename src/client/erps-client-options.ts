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

export interface ErpsClientOptions {
  /** Server address. Default '127.0.0.1'. */
  host?: string;
  /** Server port. Required for 'tls' and 'tcp'. */
  port?: number;
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
