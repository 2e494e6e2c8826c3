import semver from 'semver';
import type { ConnectionOptions as TlsClientOptions } from 'node:tls';
import { ErpsConfigError, describeError } from '../errors/index.js';
import { resolveConnectionOptions, type ConnectionOptions } from '../connection/connection.js';
import { CompressionFeature, FrameCompressor } from '../connection/compression.js';
import { Hello, WIRE_VERSION } from '../protocol/handshake.js';
import { validateHeaders } from '../protocol/headers.js';
import type { ErpsBalancing, ErpsClientOptions, ErpsDiscoveryOptions, ErpsEndpointAddress } from '../client/erps-client-options.js';
import { assertCommonOptions } from './common.js';
import { CLIENT_DEFAULTS, COMMON_DEFAULTS, DECODE_DEFAULTS } from './defaults.js';
import { assertTransport, ErpsTransportKind, resolveClientTls } from './transport.js';

/** Where the daemons are found: re-resolved every `refreshMs`. */
export type DiscoveryConfig = { refreshMs: number } & (
  | { kind: 'dns'; name: string; port: number; serverName: string; servers: string[] | undefined }
  | { kind: 'srv'; name: string; serverName: string | undefined; servers: string[] | undefined }
  | { kind: 'resolve'; resolve: () => Promise<ErpsEndpointAddress[]> }
);

export interface OutlierConfig {
  consecutiveFailures: number;
  baseEjectionMs: number;
  maxEjectionMs: number;
  maxEjectedPercent: number;
}

/** Everything a client needs to dial, defaults filled in and checked. */
export interface ClientConfig {
  transport: ErpsTransportKind;
  /** The fixed endpoints (host/port is one); empty when `discovery` finds them. */
  endpoints: ErpsEndpointAddress[];
  discovery: DiscoveryConfig | undefined;
  connectionsPerEndpoint: number;
  balancing: ErpsBalancing;
  maxRetries: number;
  /** false: no ejection. */
  outlierDetection: OutlierConfig | false;
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
  const { endpoints, discovery } = resolveEndpoints(options, transport);
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
    endpoints,
    discovery,
    connectionsPerEndpoint: positiveInteger('connectionsPerEndpoint', options.connectionsPerEndpoint ?? CLIENT_DEFAULTS.connectionsPerEndpoint, 1),
    balancing: resolveBalancing(options.balancing),
    maxRetries: positiveInteger('maxRetries', options.maxRetries ?? CLIENT_DEFAULTS.maxRetries, 0),
    outlierDetection: resolveOutlierDetection(options.outlierDetection),
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

const BALANCINGS: ReadonlySet<string> = new Set<ErpsBalancing>(['least-in-flight', 'round-robin', 'pick-first']);

function resolveBalancing(balancing: ErpsBalancing | undefined): ErpsBalancing {
  if (balancing === undefined) return CLIENT_DEFAULTS.balancing;
  if (!BALANCINGS.has(balancing)) throw new ErpsConfigError(`ErpsClient: balancing must be one of ${[...BALANCINGS].join(', ')}, got ${String(balancing)}`);
  return balancing;
}

function positiveInteger(name: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min) throw new ErpsConfigError(`ErpsClient: ${name} must be an integer ≥ ${min}, got ${String(value)}`);
  return value;
}

function checkPort(what: string, port: unknown): number {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) throw new ErpsConfigError(`ErpsClient: ${what} must be an integer 1..65535, got ${String(port)}`);
  return port;
}

/** An endpoint as given (options.endpoints or a resolver's answer), checked. */
export function checkEndpointAddress(what: string, address: ErpsEndpointAddress): ErpsEndpointAddress {
  if (address == null || typeof address.host !== 'string' || address.host === '') throw new ErpsConfigError(`ErpsClient: ${what}.host must be a non-empty string`);
  const port = checkPort(`${what}.port`, address.port);
  if (address.serverName !== undefined && typeof address.serverName !== 'string') throw new ErpsConfigError(`ErpsClient: ${what}.serverName must be a string`);
  return address.serverName === undefined ? { host: address.host, port } : { host: address.host, port, serverName: address.serverName };
}

/** host/port, endpoints or discovery: exactly one way of naming the daemons. */
function resolveEndpoints(options: ErpsClientOptions, transport: ErpsTransportKind): { endpoints: ErpsEndpointAddress[]; discovery: DiscoveryConfig | undefined } {
  const ways = [options.port !== undefined || options.host !== undefined, options.endpoints !== undefined, options.discovery !== undefined].filter(Boolean).length;
  if (ways > 1) throw new ErpsConfigError('ErpsClient: give one of host/port, endpoints or discovery, not several');
  if (transport === 'local') {
    if (options.endpoints !== undefined || options.discovery !== undefined) throw new ErpsConfigError('ErpsClient: endpoints and discovery need transport "tls" or "tcp", not "local"');
    return { endpoints: [{ host: COMMON_DEFAULTS.host, port: 0 }], discovery: undefined };
  }
  if (options.endpoints !== undefined) {
    if (!Array.isArray(options.endpoints) || options.endpoints.length === 0) throw new ErpsConfigError('ErpsClient: endpoints must be a non-empty array of { host, port, serverName? }');
    return { endpoints: options.endpoints.map((address, i) => checkEndpointAddress(`endpoints[${i}]`, address)), discovery: undefined };
  }
  if (options.discovery !== undefined) return { endpoints: [], discovery: resolveDiscovery(options.discovery) };
  return { endpoints: [{ host: options.host ?? COMMON_DEFAULTS.host, port: checkPort('options.port', options.port) }], discovery: undefined };
}

function resolveDiscovery(discovery: ErpsDiscoveryOptions): DiscoveryConfig {
  const refreshMs = positiveInteger('discovery.refreshMs', discovery.refreshMs ?? CLIENT_DEFAULTS.discoveryRefreshMs, 1);
  if ('resolve' in discovery) {
    if (typeof discovery.resolve !== 'function') throw new ErpsConfigError('ErpsClient: discovery.resolve must be a function returning a Promise of { host, port }[]');
    return { kind: 'resolve', resolve: discovery.resolve, refreshMs };
  }
  const servers = discovery.servers;
  if (servers !== undefined && (!Array.isArray(servers) || servers.length === 0 || servers.some((server) => typeof server !== 'string'))) {
    throw new ErpsConfigError("ErpsClient: discovery.servers must be a non-empty array of 'address[:port]' strings");
  }
  if ('srv' in discovery) {
    if (typeof discovery.srv !== 'string' || discovery.srv === '') throw new ErpsConfigError('ErpsClient: discovery.srv must be a DNS name');
    return { kind: 'srv', name: discovery.srv, serverName: discovery.serverName, servers, refreshMs };
  }
  if ('dns' in discovery) {
    if (typeof discovery.dns !== 'string' || discovery.dns === '') throw new ErpsConfigError('ErpsClient: discovery.dns must be a DNS name');
    return { kind: 'dns', name: discovery.dns, port: checkPort('discovery.port', discovery.port), serverName: discovery.serverName ?? discovery.dns, servers, refreshMs };
  }
  throw new ErpsConfigError('ErpsClient: discovery needs one of dns (with port), srv or resolve');
}

function resolveOutlierDetection(options: ErpsClientOptions['outlierDetection']): OutlierConfig | false {
  if (options === false) return false;
  const defaults = CLIENT_DEFAULTS.outlierDetection;
  const config = { ...defaults, ...options };
  positiveInteger('outlierDetection.consecutiveFailures', config.consecutiveFailures, 1);
  positiveInteger('outlierDetection.baseEjectionMs', config.baseEjectionMs, 1);
  positiveInteger('outlierDetection.maxEjectionMs', config.maxEjectionMs, 1);
  if (!(config.maxEjectedPercent >= 0 && config.maxEjectedPercent <= 100))
    throw new ErpsConfigError(`ErpsClient: outlierDetection.maxEjectedPercent must be 0..100, got ${String(config.maxEjectedPercent)}`);
  return config;
}
