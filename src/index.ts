export type { ErpsErrorCode, ErpsReplyCode } from './errors/codes.js';
export { ErpsError } from './errors/erps-error.js';
export {
  ErpsConfigError,
  ErpsProtocolError,
  ErpsFrameTooLargeError,
  ErpsHandshakeError,
  ErpsTlsError,
  ErpsDisconnectedError,
  ErpsConnectFailedError,
  ErpsConnectTimeoutError,
  ErpsReconnectGaveUpError,
  ErpsDiscoveryError,
  ErpsConnectionLostError,
  ErpsTimeoutError,
  ErpsClosedError,
  ErpsCodecError,
  ErpsQueueFullError,
  ErpsHeadersError,
  ErpsSlowConsumerError,
  ErpsOverloadedError,
  ErpsHealthUnsupportedError,
} from './errors/classes.js';
export { isRetryable } from './errors/reply.js';
export type { ErpsErrorReply } from './errors/reply.js';
export { RejectCode } from './protocol/handshake.js';
export { ErpsServer, ERPS_TRANSPORT } from './server/erps-server.js';
export type { ErpsServerStatus, ErpsServerEvent, ErpsServerEvents, ErpsServerStats, ErpsRefusal } from './server/erps-server.js';
export type { TlsFailureKind } from './tls/tls-failure.js';
export type { ErpsServerOptions, ErpsTransportKind } from './server/erps-server-options.js';
export { ErpsContext } from './server/erps-context.js';
export type { ErpsSessionInfo, ErpsHeaders, ErpsContextArgs } from './server/erps-context.js';
export { ErpsClient } from './client/erps-client.js';
export type { ErpsClientStatus, ErpsCallOptions, ErpsReconnectingEvent, ErpsClientEvents, ErpsClientStats, ErpsDiscoveryEvent } from './client/erps-client.js';
export type { ErpsHealthCheckOptions, ErpsHealthResult } from './client/erps-client.js';
export type { ErpsHealthStatus, ErpsServingStatus } from './protocol/health.js';
export type { Connector } from './client/connector.js';
export type { DialOptions, Dialled } from './client/dial.js';
export type { EndpointState, ErpsEndpointInfo } from './client/endpoint.js';
export type {
  ErpsClientOptions,
  ErpsReconnectOptions,
  ErpsEndpointAddress,
  ErpsBalancing,
  ErpsDiscoveryOptions,
  ErpsDnsDiscovery,
  ErpsSrvDiscovery,
  ErpsCustomDiscovery,
  ErpsOutlierDetectionOptions,
  ErpsDiscoveryCommon,
  ErpsDnsServersOption,
} from './client/erps-client-options.js';
export type { ErpsTlsOptions } from './tls/tls-options.js';
export type { PeerIdentity } from './tls/peer-identity.js';
export { ERPS_DEFAULT_CIPHERS } from './tls/hardening.js';
export type { CodecName } from './protocol/codec.js';
export { ErpsExceptionFilter } from './nest/erps-exception-filter.js';
export { ErpsClientsModule } from './nest/erps-clients-module.js';
export type { ErpsClientRegistration, ErpsClientAsyncRegistration, ErpsClientsModuleOptions } from './nest/erps-clients-module.js';
export type { ErpsDispatchPlanEntry } from './nest/direct-dispatch.js';
export { ErpsOriginGuard, RemoteOnly, LocalOnly } from './nest/origin-guards.js';
export type { ErpsPushChannel } from './server/erps-context.js';
export type { ErpsPush } from './client/erps-client.js';
export { ErpsRecord, ErpsRecordBuilder } from './client/erps-record.js';
export type { ForwardContextOptions } from './forward-context.js';
export type { CompressionOptions, CompressionAlgorithm } from './connection/compression.js';
export { MAX_HEADERS, MAX_HEADER_NAME_BYTES, MAX_HEADER_VALUE_BYTES } from './protocol/headers.js';
export { ErpsAllow, ErpsAllowGuard } from './nest/erps-allow.js';
export type { ErpsAllowRule } from './nest/erps-allow.js';
export type { ErpsAuthorizeRequest } from './server/erps-server-options.js';
export { ERPS_CHANNELS } from './observability/channels.js';
export type { ErpsClientCallMessage, ErpsServerCallMessage, ErpsConnectionMessage } from './observability/channels.js';
