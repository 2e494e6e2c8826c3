import semver from 'semver';
import { ErpsConfigError } from '../errors/index.js';
import type { ConnectionOptions } from '../connection/connection.js';
import { resolveConnectionOptions } from '../connection/connection.js';
import type { HandshakePolicy } from '../protocol/handshake.js';
import type { ErpsServerOptions } from '../server/erps-server-options.js';
import { assertCommonOptions } from './common.js';
import { COMMON_DEFAULTS, DECODE_DEFAULTS, SERVER_DEFAULTS } from './defaults.js';
import { assertTransport, ErpsTransportKind, resolveServerTls, ServerTls } from './transport.js';

/** Everything the daemon needs, defaults filled in and checked. */
export interface ServerConfig {
  host: string;
  port: number;
  transport: ErpsTransportKind;
  /** Set for 'tls'. */
  tls: ServerTls | undefined;
  localName: string;
  policy: HandshakePolicy;
  connection: Required<ConnectionOptions>;
  handshakeTimeoutMs: number;
  drainTimeoutMs: number;
  maxConnections: number;
  maxPartialFrameBytes: number;
  /** Per connection; idleTimeoutMs 0 = no idle timeout. */
  limits: { maxInFlightPerConnection: number; idleTimeoutMs: number; maxDepth: number; maxElements: number };
  /** Compression this server allows (threshold in bytes); undefined = off. */
  compressionThreshold: number | undefined;
  allowPeers: ErpsServerOptions['allowPeers'];
}

/** ErpsServerOptions → ServerConfig; throws ErpsConfigError naming the bad option. Reads certificate files. */
export function resolveServerConfig(options: ErpsServerOptions): ServerConfig {
  const identifier = options.identifier ?? COMMON_DEFAULTS.identifier;
  const versions = options.versions ?? SERVER_DEFAULTS.versions;
  const codec = options.codec ?? COMMON_DEFAULTS.codec;
  assertCommonOptions('ErpsServer', identifier, codec);
  if (semver.validRange(versions) === null) throw new ErpsConfigError(`ErpsServer: versions "${versions}" is not a valid semver range`);
  const transport = options.transport ?? COMMON_DEFAULTS.transport;
  assertTransport('ErpsServer', transport);
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? SERVER_DEFAULTS.handshakeTimeoutMs;
  return {
    host: options.host ?? COMMON_DEFAULTS.host,
    port: options.port ?? SERVER_DEFAULTS.port,
    transport,
    tls: transport === 'tls' ? resolveServerTls(options.tls, handshakeTimeoutMs) : undefined,
    localName: options.localName ?? identifier,
    policy: { identifier, versions, codec },
    connection: resolveConnectionOptions(options),
    handshakeTimeoutMs,
    drainTimeoutMs: options.drainTimeoutMs ?? SERVER_DEFAULTS.drainTimeoutMs,
    maxConnections: options.maxConnections ?? SERVER_DEFAULTS.maxConnections,
    maxPartialFrameBytes: options.maxPartialFrameBytes ?? SERVER_DEFAULTS.maxPartialFrameBytes,
    limits: {
      maxInFlightPerConnection: options.maxInFlightPerConnection ?? SERVER_DEFAULTS.maxInFlightPerConnection,
      idleTimeoutMs: options.idleTimeoutMs ?? SERVER_DEFAULTS.idleTimeoutMs,
      maxDepth: options.maxDepth ?? DECODE_DEFAULTS.maxDepth,
      maxElements: options.maxElements ?? DECODE_DEFAULTS.maxElements,
    },
    compressionThreshold: options.compression ? (options.compression.threshold ?? COMMON_DEFAULTS.compressionThreshold) : undefined,
    allowPeers: options.allowPeers,
  };
}
