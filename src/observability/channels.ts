import diagnostics_channel from 'node:diagnostics_channel';
import type { PeerIdentity } from '../tls/peer-identity.js';

/**
 * The diagnostics channels nestjs-erps publishes on (`node:diagnostics_channel`). Publishing is skipped when a
 * channel has no subscriber, so they cost nothing until something (ErpsInstrumentation, an APM agent, a test)
 * subscribes. Tracing channels publish `start`, `end`, `asyncStart`, `asyncEnd` and `error` with one message object
 * per operation; `end` follows `start` at once (the operation is under way), `asyncEnd` marks its real end.
 */
export const ERPS_CHANNELS = Object.freeze({
  /** Tracing channel: a client call, from subscription to its last reply, error or cancellation. */
  clientCall: 'erps:client:call',
  /** Tracing channel: a client cast, until it is written (or fails). */
  clientCast: 'erps:client:cast',
  /** Tracing channel: a server handler run for a call, until its reply is finished. */
  serverCall: 'erps:server:call',
  /** Tracing channel: a server handler run for a cast. */
  serverCast: 'erps:server:cast',
  /** A client connection completed its handshake. */
  clientConnect: 'erps:client:connect',
  /** A server refused a client's handshake (REJECT), as the client saw it. */
  clientReject: 'erps:client:reject',
  /** A client connection closed (`reason` undefined: cleanly). */
  clientDisconnect: 'erps:client:disconnect',
  /** A client scheduled a reconnect of one endpoint. */
  clientReconnecting: 'erps:client:reconnecting',
  /** An endpoint of a client changed state. */
  clientEndpoint: 'erps:client:endpoint',
  /** The daemon accepted a connection and its handshake. */
  serverConnect: 'erps:server:connect',
  /** The daemon refused a connection (REJECT, TLS, certificate). */
  serverReject: 'erps:server:reject',
  /** A server connection closed. */
  serverDisconnect: 'erps:server:disconnect',
  /** A connection was closed because its peer does not read (either end). */
  slowConsumer: 'erps:slow-consumer',
});

/** The message of `erps:client:call` and `erps:client:cast`. */
export interface ErpsClientCallMessage {
  kind: 'call' | 'cast';
  pattern: string;
  /**
   * The headers the message will carry. A `start` subscriber may add to them (W3C `traceparent`, baggage): they are
   * encoded after `start` returns.
   */
  headers: Record<string, string>;
  data: unknown;
  /** Where it went, once a connection was picked. */
  endpoint?: { host: string; port: number };
  /** The last value of a call's reply (every value of a stream counts in `values`). */
  result?: unknown;
  values?: number;
  /** The error it failed with (set before `error` is published). */
  error?: unknown;
  /** The caller unsubscribed before the end (a CANCEL was sent). */
  cancelled?: boolean;
}

/** The message of `erps:server:call` and `erps:server:cast`. */
export interface ErpsServerCallMessage {
  kind: 'call' | 'cast';
  pattern: string;
  /** The headers as received (W3C trace context among them). */
  headers: Readonly<Record<string, string>>;
  data: unknown;
  peer: PeerIdentity | undefined;
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  connectionId: number;
  /** The handler's single reply value (streams: see `values`). */
  result?: unknown;
  /** The error reply sent (as Nest's exception filters shaped it), or the cast handler's error. */
  error?: unknown;
  cancelled?: boolean;
  /**
   * A `start` subscriber may set this: the handler then runs inside it (OpenTelemetry: `context.with(span context)`,
   * so spans the handler starts are children of the server span).
   */
  runInContext?: <T>(fn: () => T) => T;
}

/** The message of the connection lifecycle channels. */
export interface ErpsConnectionMessage {
  side: 'client' | 'server';
  connectionId?: number;
  /** Client side: the endpoint. */
  host?: string;
  port?: number;
  /** Server side: the client's address and port. */
  remoteAddress?: string;
  remotePort?: number;
  peer?: PeerIdentity;
  /** Why it closed, was refused or was dropped. */
  reason?: Error;
  /** `erps:server:reject`: the OpenSSL/Node code or "reject:N"; `erps:client:reject`: the REJECT code. */
  code?: string | number;
  /** `erps:client:reconnecting`: attempt number and delay. */
  attempt?: number;
  delayMs?: number;
  /** `erps:client:endpoint`: the new state. */
  state?: string;
  /** Connect messages: bytes written to and read from the socket so far (0 for the in-process transport). */
  bytes?: () => { sent: number; received: number };
}

/** Byte counts of a socket, for `ErpsConnectionMessage.bytes`. */
export function socketBytes(socket: unknown): () => { sent: number; received: number } {
  const counted = socket as { bytesWritten?: number; bytesRead?: number };
  return () => ({ sent: counted.bytesWritten ?? 0, received: counted.bytesRead ?? 0 });
}

export const clientCallChannel = diagnostics_channel.tracingChannel<ErpsClientCallMessage, ErpsClientCallMessage>(ERPS_CHANNELS.clientCall);
export const clientCastChannel = diagnostics_channel.tracingChannel<ErpsClientCallMessage, ErpsClientCallMessage>(ERPS_CHANNELS.clientCast);
export const serverCallChannel = diagnostics_channel.tracingChannel<ErpsServerCallMessage, ErpsServerCallMessage>(ERPS_CHANNELS.serverCall);
export const serverCastChannel = diagnostics_channel.tracingChannel<ErpsServerCallMessage, ErpsServerCallMessage>(ERPS_CHANNELS.serverCast);

const lifecycle = (name: string): diagnostics_channel.Channel<ErpsConnectionMessage, ErpsConnectionMessage> => diagnostics_channel.channel(name) as never;

export const lifecycleChannels = {
  clientConnect: lifecycle(ERPS_CHANNELS.clientConnect),
  clientReject: lifecycle(ERPS_CHANNELS.clientReject),
  clientDisconnect: lifecycle(ERPS_CHANNELS.clientDisconnect),
  clientReconnecting: lifecycle(ERPS_CHANNELS.clientReconnecting),
  clientEndpoint: lifecycle(ERPS_CHANNELS.clientEndpoint),
  serverConnect: lifecycle(ERPS_CHANNELS.serverConnect),
  serverReject: lifecycle(ERPS_CHANNELS.serverReject),
  serverDisconnect: lifecycle(ERPS_CHANNELS.serverDisconnect),
  slowConsumer: lifecycle(ERPS_CHANNELS.slowConsumer),
};

/** Publishes a lifecycle message only when someone listens (building the message costs nothing otherwise). */
export function publishLifecycle(channel: diagnostics_channel.Channel<ErpsConnectionMessage, ErpsConnectionMessage>, message: () => ErpsConnectionMessage): void {
  if (channel.hasSubscribers) channel.publish(message());
}
