/**
 * Typed errors with stable `code`s. Callers match on `code` (or `instanceof`), never on message text.
 */
export type ErpsErrorCode =
  | 'ERPS_CONFIG'
  | 'ERPS_PROTOCOL'
  | 'ERPS_FRAME_TOO_LARGE'
  | 'ERPS_HANDSHAKE'
  | 'ERPS_TLS'
  | 'ERPS_DISCONNECTED'
  | 'ERPS_CONNECTION_LOST'
  | 'ERPS_TIMEOUT'
  | 'ERPS_CLOSED'
  | 'ERPS_CODEC'
  | 'ERPS_QUEUE_FULL'
  | 'ERPS_BUSY'
  | 'ERPS_FORBIDDEN'
  | 'ERPS_HEADERS'
  | 'ERPS_SLOW_CONSUMER'
  | 'ERPS_OVERLOADED';

export class ErpsError extends Error {
  constructor(
    readonly code: ErpsErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad options given to a constructor (missing certificate, invalid range, ...). */
export class ErpsConfigError extends ErpsError {
  constructor(message: string) {
    super('ERPS_CONFIG', message);
  }
}

/** The peer sent bytes that are not a valid Erps frame; the connection is closed. */
export class ErpsProtocolError extends ErpsError {
  constructor(message: string, code: 'ERPS_PROTOCOL' | 'ERPS_FRAME_TOO_LARGE' = 'ERPS_PROTOCOL') {
    super(code, message);
  }
}

/** A frame header announced more bytes than `maxFrameBytes`; nothing was allocated for it. */
export class ErpsFrameTooLargeError extends ErpsProtocolError {
  constructor(
    readonly length: number,
    readonly maxFrameBytes: number,
  ) {
    super(`frame of ${length} bytes exceeds maxFrameBytes (${maxFrameBytes})`, 'ERPS_FRAME_TOO_LARGE');
  }
}

/** The server refused the client's HELLO (wrong identifier, version outside the range, codec mismatch). */
export class ErpsHandshakeError extends ErpsError {
  constructor(
    readonly reason: string,
    readonly rejectCode?: number,
  ) {
    super('ERPS_HANDSHAKE', `Erps handshake rejected: ${reason}`);
  }
}

/** The TLS handshake failed or the peer closed the connection before the Erps handshake finished. */
export class ErpsTlsError extends ErpsError {
  constructor(message: string, cause?: unknown) {
    super('ERPS_TLS', message, { cause });
  }
}

/** The client is not connected and the call was not allowed to wait (Erps answers `:disconnected`). */
export class ErpsDisconnectedError extends ErpsError {
  constructor(message = 'Erps client is not connected', cause?: unknown) {
    super('ERPS_DISCONNECTED', message, cause === undefined ? undefined : { cause });
  }
}

/** The connection died while the call was in flight; it may or may not have run on the server. */
export class ErpsConnectionLostError extends ErpsError {
  constructor(message = 'Erps connection lost while the call was in flight', cause?: unknown) {
    super('ERPS_CONNECTION_LOST', message, { cause });
  }
}

/** No final reply within the call's timeout; a CANCEL was sent to the server. */
export class ErpsTimeoutError extends ErpsError {
  constructor(readonly timeoutMs: number) {
    super('ERPS_TIMEOUT', `Erps call timed out after ${timeoutMs} ms`);
  }
}

/** The client or server was closed by the user. */
export class ErpsClosedError extends ErpsError {
  constructor(message = 'Erps client is closed') {
    super('ERPS_CLOSED', message);
  }
}

/** A payload could not be encoded or decoded by the codec. */
export class ErpsCodecError extends ErpsError {
  constructor(message: string, cause?: unknown) {
    super('ERPS_CODEC', message, { cause });
  }
}

/** Too many calls are waiting for the connection (`maxQueued`). */
export class ErpsQueueFullError extends ErpsError {
  constructor(readonly maxQueued: number) {
    super('ERPS_QUEUE_FULL', `Erps client queue is full (maxQueued ${maxQueued})`);
  }
}

/** Per-message headers break a documented limit (count, name, value size) or use a reserved name. */
export class ErpsHeadersError extends ErpsError {
  constructor(message: string) {
    super('ERPS_HEADERS', message);
  }
}

/**
 * The peer does not take what we write: more than `maxWriteBufferBytes` waits for its socket. The server closes
 * such a connection (past the hard limit, or over the soft limit for `slowConsumerTimeoutMs`); the client refuses
 * new calls on it with this error (they were never sent).
 */
export class ErpsSlowConsumerError extends ErpsError {
  constructor(
    message: string,
    readonly bufferedBytes: number,
    readonly maxWriteBufferBytes: number,
  ) {
    super('ERPS_SLOW_CONSUMER', message);
  }
}

/** A budget shared by all connections (bytes held in incomplete frames) is spent; the connection asking is closed. */
export class ErpsOverloadedError extends ErpsError {
  constructor(message: string) {
    super('ERPS_OVERLOADED', message);
  }
}

/** Turns anything thrown into a short, loggable reason string. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}
