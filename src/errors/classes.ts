import { describeError, ErpsError } from './erps-error.js';

/** Bad options given to a constructor (missing certificate, invalid range, ...). */
export class ErpsConfigError extends ErpsError {
  constructor(message: string, cause?: unknown) {
    super('ERPS_CONFIG', message, cause === undefined ? undefined : { cause });
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
  /** `passes`: the refusal is temporary ("server full", "shutting down"); any other REJECT would come again. */
  constructor(
    readonly reason: string,
    readonly rejectCode?: number,
    private readonly passes = false,
  ) {
    super('ERPS_HANDSHAKE', `Erps handshake rejected: ${reason}`);
  }

  override get retryable(): boolean {
    return this.passes;
  }
}

/** The TLS handshake failed or the peer closed the connection before the Erps handshake finished. */
export class ErpsTlsError extends ErpsError {
  constructor(message: string, cause?: unknown) {
    super('ERPS_TLS', message, { cause });
  }
}

/**
 * The client is not connected and the call was not allowed to wait (Erps answers `:disconnected`). Subclasses
 * say why there is no connection; all keep the code ERPS_DISCONNECTED. The call was never sent.
 */
export class ErpsDisconnectedError extends ErpsError {
  /** `cause` is the original error when there is one (ECONNREFUSED and the like: its `code`, `errno`, `syscall`). */
  constructor(message = 'Erps client is not connected', cause?: unknown) {
    super('ERPS_DISCONNECTED', message, cause === undefined ? undefined : { cause });
  }

  override get retryable(): boolean {
    return true;
  }
}

/** A connection attempt failed (refused, unreachable, reset): `cause` is Node's error. */
export class ErpsConnectFailedError extends ErpsDisconnectedError {}

/** A connection attempt did not finish TCP, TLS and the Erps handshake within `connectTimeoutMs`. */
export class ErpsConnectTimeoutError extends ErpsDisconnectedError {}

/** The client used up `reconnect.maxAttempts` (status 'failed'); `cause` is the last attempt's error. */
export class ErpsReconnectGaveUpError extends ErpsDisconnectedError {}

/** Discovery (DNS, SRV, a custom resolver) failed or found no endpoint; `cause` is the resolver's error. */
export class ErpsDiscoveryError extends ErpsDisconnectedError {}

/** The connection died while the call was in flight; it may or may not have run on the server. */
export class ErpsConnectionLostError extends ErpsError {
  constructor(message = 'Erps connection lost while the call was in flight', cause?: unknown) {
    super('ERPS_CONNECTION_LOST', message, { cause });
  }
}

/** No final reply within the call's timeout; a CANCEL was sent to the server. */
export class ErpsTimeoutError extends ErpsError {
  /**
   * `cause`: for a call that timed out waiting for a connection, the last error connecting. `sent` tells whether the
   * call had been written (it may have run) or was still queued (it never left: safe to retry).
   */
  constructor(
    readonly timeoutMs: number,
    cause?: unknown,
    readonly sent = cause === undefined,
  ) {
    super(
      'ERPS_TIMEOUT',
      cause === undefined
        ? `Erps call timed out after ${timeoutMs} ms`
        : `Erps call timed out after ${timeoutMs} ms waiting for a connection; last connect error: ${describeError(cause)}`,
      cause === undefined ? undefined : { cause },
    );
  }

  override get retryable(): boolean {
    return !this.sent;
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

  override get retryable(): boolean {
    return true;
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

  /** On the client it refused the message, which was never sent. */
  override get retryable(): boolean {
    return true;
  }
}

/** A budget shared by all connections (bytes held in incomplete frames) is spent; the connection asking is closed. */
export class ErpsOverloadedError extends ErpsError {
  constructor(message: string) {
    super('ERPS_OVERLOADED', message);
  }
}

/**
 * `client.health()` reached a server that does not answer the health service: one older than the health check
 * (it answers ERPS_NO_HANDLER for "$erps.health"), or one whose own "$erps.health" handler answered something else.
 * `cause` is what the server answered.
 */
export class ErpsHealthUnsupportedError extends ErpsError {
  constructor(message: string, cause?: unknown) {
    super('ERPS_HEALTH_UNSUPPORTED', message, cause === undefined ? undefined : { cause });
  }
}
