import semver from 'semver';
import type { ConnectionOptions as TlsClientOptions } from 'node:tls';
import { ErpsConfigError, describeError } from '../errors/index.js';
import { resolveConnectionOptions, type ConnectionOptions } from '../connection/connection.js';
import { CompressionFeature, FrameCompressor } from '../connection/compression.js';
import { Hello, WIRE_VERSION } from '../protocol/handshake.js';
import { validateHeaders } from '../protocol/headers.js';
import type { ErpsClientOptions } from '../client/erps-client-options.js';
import { assertCommonOptions } from './common.js';
import { CLIENT_DEFAULTS, COMMON_DEFAULTS, DECODE_DEFAULTS } from './defaults.js';
import { assertTransport, ErpsTransportKind, resolveClientTls } from './transport.js';

/** Everything a client needs to dial, defaults filled in and checked. */
export interface ClientConfig {
  transport: ErpsTransportKind;
  host: string;
  port: number;
  /** Set for the local transport: connect in-process to this name instead of a socket. */
  localName: string | undefined;
  /** Node TLS client options; undefined unless transport is 'tls'. Replaced in place by a TLS reload. */
  tls: TlsClientOptions | undefined;
  hello: Hello;
  connection: Required<ConnectionOptions>;
  connectTimeoutMs: number;
  compression: FrameCompressor | undefined;
  budget: { maxDepth: number; maxElements: number };
  timeoutMs: number;
  waitForReady: boolean;
  maxQueued: number;
  /** false: no reconnect. */
  reconnect: { minDelayMs: number; maxDelayMs: number; maxAttempts: number } | false;
}

/** ErpsClientOptions → ClientConfig; throws ErpsConfigError naming the bad option. Reads certificate files. */
export function resolveClientConfig(options: ErpsClientOptions): ClientConfig {
  if (options == null) throw new ErpsConfigError('ErpsClient: options are required');
  const transport = options.transport ?? COMMON_DEFAULTS.transport;
  assertTransport('ErpsClient', transport);
  const port = options.port ?? -1;
  if (transport !== 'local' && (!Number.isInteger(port) || port < 1 || port > 65535)) {
    throw new ErpsConfigError(`ErpsClient: options.port must be an integer 1..65535, got ${String(options.port)}`);
  }
  const identifier = options.identifier ?? COMMON_DEFAULTS.identifier;
  const version = options.version ?? CLIENT_DEFAULTS.version;
  const codec = options.codec ?? COMMON_DEFAULTS.codec;
  assertCommonOptions('ErpsClient', identifier, codec);
  if (semver.valid(version) === null) throw new ErpsConfigError(`ErpsClient: version "${version}" is not a valid semver version`);
  if (options.headers !== undefined) {
    try {
      validateHeaders(options.headers);
    } catch (err) {
      throw new ErpsConfigError(`ErpsClient: headers: ${describeError(err)}`);
    }
  }
  const compression = options.compression
    ? new FrameCompressor(options.compression.algorithm ?? CLIENT_DEFAULTS.compressionAlgorithm, options.compression.threshold ?? COMMON_DEFAULTS.compressionThreshold)
    : undefined;
  const reconnect = options.reconnect;
  return {
    transport,
    host: options.host ?? COMMON_DEFAULTS.host,
    port,
    localName: transport === 'local' ? (options.localName ?? identifier) : undefined,
    tls: transport === 'tls' ? resolveClientTls(options.tls) : undefined,
    hello: { wireVersion: WIRE_VERSION, codec, features: compression ? CompressionFeature[compression.algorithm] : 0, identifier, version },
    connection: resolveConnectionOptions(options),
    connectTimeoutMs: options.connectTimeoutMs ?? CLIENT_DEFAULTS.connectTimeoutMs,
    compression,
    budget: { maxDepth: options.maxDepth ?? DECODE_DEFAULTS.maxDepth, maxElements: options.maxElements ?? DECODE_DEFAULTS.maxElements },
    timeoutMs: options.timeoutMs ?? CLIENT_DEFAULTS.timeoutMs,
    waitForReady: options.waitForReady ?? CLIENT_DEFAULTS.waitForReady,
    maxQueued: options.maxQueued ?? CLIENT_DEFAULTS.maxQueued,
    reconnect:
      reconnect === false
        ? false
        : {
            minDelayMs: reconnect?.minDelayMs ?? CLIENT_DEFAULTS.reconnect.minDelayMs,
            maxDelayMs: reconnect?.maxDelayMs ?? CLIENT_DEFAULTS.reconnect.maxDelayMs,
            maxAttempts: reconnect?.maxAttempts ?? CLIENT_DEFAULTS.reconnect.maxAttempts,
          },
  };
}
