import type { TlsFailureKind } from '../tls/tls-failure.js';
import type { ErpsSessionInfo } from './session-info.js';

/** Daemon status: also Nest's `status` values for ErpsServer. */
export type ErpsServerStatus = 'listening' | 'draining' | 'closed';

/**
 * Why a connection was refused, as 'tlsClientError' (TLS and certificate failures) and 'handshakeRejected' (REJECT)
 * report it, and as the server logs it (once per connection, rate-limited).
 */
export interface ErpsRefusal {
  kind: TlsFailureKind | 'handshake-reject';
  message: string;
  /** The OpenSSL / Node code, or the REJECT code as a string ("reject:3"). */
  code: string | undefined;
  remoteAddress: string | undefined;
  remotePort: number | undefined;
}

/** The daemon's events and their arguments (`server.on(name, callback)`). */
export type ErpsServerEvents = {
  connection: (info: ErpsSessionInfo) => void;
  disconnect: (info: ErpsSessionInfo, reason: Error | undefined) => void;
  handshakeRejected: (info: ErpsSessionInfo, reason: string, refusal: ErpsRefusal) => void;
  tlsClientError: (err: Error, refusal: ErpsRefusal) => void;
  tlsReloaded: () => void;
  error: (err: Error) => void;
};

export type ErpsServerEvent = keyof ErpsServerEvents;

/** A typed snapshot of the daemon's live numbers. */
export interface ErpsServerStats {
  connections: number;
  inFlight: number;
  /** Bytes waiting to be written, all connections together, and the most on one connection. */
  writeBufferedBytes: number;
  maxWriteBufferedBytes: number;
  /** Bytes held in incomplete incoming frames, all connections together (bounded by maxPartialFrameBytes). */
  partialFrameBytes: number;
}
