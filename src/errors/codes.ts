/**
 * Every code an Erps error carries, thrown (ErpsError subclasses) or in an error reply a server sends back
 * (`{ status: 'error', code, message }`, see ErpsReplyCode).
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
  | 'ERPS_QUEUE_FULL'
  | 'ERPS_SLOW_CONSUMER'
  | 'ERPS_OVERLOADED'
  | 'ERPS_HEALTH_UNSUPPORTED'
  | ErpsReplyCode;

/** Codes of the error replies the server itself sends (the handler did not run). */
export type ErpsReplyCode =
  /** Too many calls running on the connection (maxInFlightPerConnection). */
  | 'ERPS_BUSY'
  /** The call arrived while the server drains. */
  | 'ERPS_GOAWAY'
  /** No @MessagePattern handler for the pattern. */
  | 'ERPS_NO_HANDLER'
  /** authorize, @ErpsAllow, @RemoteOnly/@LocalOnly refused the caller. */
  | 'ERPS_FORBIDDEN'
  /** The payload could not be decoded, or broke a decode budget (maxDepth, maxElements). */
  | 'ERPS_CODEC'
  /** Headers past the limits. */
  | 'ERPS_HEADERS';
