/**
 * Every default in one place: the constructors, the README's option tables and the JSDoc of the option types all
 * state these values. This module imports nothing, so every layer may use it.
 */

const MIB = 1024 * 1024;

/** Per-connection defaults, the same on both ends. */
export const CONNECTION_DEFAULTS = Object.freeze({
  maxFrameBytes: 4 * MIB,
  keepaliveMs: 5000,
  maxMissedPings: 2,
  maxWriteBufferBytes: 8 * MIB,
  slowConsumerTimeoutMs: 10_000,
  frameTimeoutMs: 30_000,
});

/** Decode budgets, the same on both ends. */
export const DECODE_DEFAULTS = Object.freeze({
  maxDepth: 64,
  maxElements: 1_000_000,
});

/** Values both ends share. */
export const COMMON_DEFAULTS = Object.freeze({
  host: '127.0.0.1',
  transport: 'tls' as const,
  identifier: 'erps',
  codec: 'msgpack' as const,
  compressionThreshold: 1024,
});

export const SERVER_DEFAULTS = Object.freeze({
  port: 0,
  versions: '*',
  handshakeTimeoutMs: 10_000,
  drainTimeoutMs: 10_000,
  maxConnections: 10_000,
  maxInFlightPerConnection: 1000,
  idleTimeoutMs: 0,
  maxPartialFrameBytes: 64 * MIB,
});

export const CLIENT_DEFAULTS = Object.freeze({
  version: '0.0.0',
  timeoutMs: 5000,
  connectTimeoutMs: 10_000,
  waitForReady: false,
  maxQueued: 1000,
  compressionAlgorithm: 'deflate' as const,
  reconnect: Object.freeze({ minDelayMs: 100, maxDelayMs: 5000, maxAttempts: Infinity }),
  connectionsPerEndpoint: 1,
  balancing: 'least-in-flight' as const,
  maxRetries: 2,
  discoveryRefreshMs: 30_000,
  outlierDetection: Object.freeze({ consecutiveFailures: 5, baseEjectionMs: 30_000, maxEjectionMs: 300_000, maxEjectedPercent: 50 }),
});
