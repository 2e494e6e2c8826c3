/**
 * Shared pieces of the benchmark: system and workload names, the IPC messages between the orchestrator
 * (bench/main.ts), the server processes (bench/server.ts) and the client processes (bench/client.ts),
 * payloads, the gRPC service definition and small statistics helpers.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const SYSTEMS = ['erps', 'erps-otel', 'nest-tcp', 'nest-grpc', 'raw'] as const;
export type SystemName = (typeof SYSTEMS)[number];

export const WORKLOADS = ['echo1', 'echo100', 'mib4', 'cast'] as const;
export type WorkloadName = (typeof WORKLOADS)[number];

export interface WorkloadSpec {
  /** Payload shape: a ~64-byte object, or 1 MiB of bytes. */
  payload: 'small' | 'mib';
  /** Calls kept in flight (0 for casts). */
  inflight: number;
}

export const WORKLOAD_SPECS: Record<WorkloadName, WorkloadSpec> = {
  echo1: { payload: 'small', inflight: 1 },
  echo100: { payload: 'small', inflight: 100 },
  mib4: { payload: 'mib', inflight: 4 },
  cast: { payload: 'small', inflight: 0 },
};

export const MIB = 1024 * 1024;

/** The ~64-byte object (64 bytes as JSON) every system echoes. */
export function smallObject(): { id: number; name: string; tags: string[]; ok: boolean; n: number } {
  return { id: 42, name: 'erps', tags: ['ab', 'cd'], ok: true, n: 3.14159 };
}

/** Certificate and key file paths, as the dev certificate generator writes them. */
export interface TlsFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/** What a server process is told on its command line (JSON in argv[2]). */
export interface ServerArgs {
  system: SystemName;
  tls: TlsFiles;
  /** Only for nest-grpc (grpc-js cannot report the port Nest bound): a port picked by the parent. */
  port: number;
  /** Directory holding bench.proto (nest-grpc). */
  workDir: string;
  /** erps only: extra delay (ms) before each echo reply; the slowed daemon of `--mode fleet`. Default 0. */
  delayMs?: number;
  /** With delayMs: at most this many calls delayed at a time, the rest wait their turn (0: no limit). */
  delayConcurrency?: number;
}

/** What a client process is told on its command line (JSON in argv[2]). */
export interface ClientArgs {
  system: SystemName;
  port: number;
  tls: TlsFiles;
  workDir: string;
  /** erps only (`--mode fleet`): one client over several daemons, with issue 13's options. */
  fleet?: FleetClientArgs;
}

/** The balancing policies `--mode fleet` compares (ErpsClientOptions.balancing, issue 13). */
export const FLEET_BALANCINGS = ['round-robin', 'least-in-flight'] as const;
export type FleetBalancing = (typeof FLEET_BALANCINGS)[number];

export interface FleetClientArgs {
  endpoints: Array<{ host: string; port: number }>;
  balancing: FleetBalancing;
}

// ---- IPC ------------------------------------------------------------------------------------------

export type ServerRequest = { id: number; cmd: 'stats'; gc?: boolean } | { id: number; cmd: 'stop' };
export interface ServerStats {
  rssBytes: number;
  heapUsedBytes: number;
  casts: number;
  /** process.cpuUsage() of the server process, cumulative since it started. */
  cpuUserUs: number;
  cpuSystemUs: number;
  /** Echo calls this server's controller has started, cumulative (0 for raw, which does not count them). */
  echoCalls: number;
  /** erps only: live connections as the daemon reports them. */
  connections?: number;
  /** erps only: calls the daemon still tracks, read from private fields (no public accessor); undefined if unreadable. */
  privateActiveCalls?: number;
}
export type ServerMessage = { type: 'ready'; port: number } | { type: 'failed'; error: string } | { type: 'reply'; id: number; stats?: ServerStats; error?: string };

export type ClientRequest =
  | { id: number; cmd: 'workload'; workload: WorkloadName; durationMs: number; warmupMs: number }
  | { id: number; cmd: 'idle'; clients: number; batch: number }
  | { id: number; cmd: 'idle-close' }
  | { id: number; cmd: 'soak'; calls: number; inflight: number; progressEvery: number }
  | { id: number; cmd: 'stop' };

export interface WorkloadResult {
  workload: WorkloadName;
  /** Completed calls (or casts the server acknowledged). */
  calls: number;
  elapsedMs: number;
  callsPerSec: number;
  /** Payload bytes per second, both directions (request + reply); mib4 only. */
  bytesPerSec?: number;
  p50Ms?: number;
  p99Ms?: number;
  /** Every call or cast this request made, probe and warm-up included: the divisor for the CPU figures. */
  totalCalls: number;
  /** process.cpuUsage() delta of the client process from receiving the request to replying. */
  cpuUserUs: number;
  cpuSystemUs: number;
  /** `--mode fleet`: whether the client has the fleet options (issue 13: it has `endpoints()`), and what that says at the end. */
  fleetClient?: boolean;
  endpoints?: unknown[];
}

export interface IdleResult {
  clients: number;
  connectMs: number;
  clientRssBeforeBytes: number;
  clientRssAfterBytes: number;
  connected: number;
}

export interface SoakResult {
  calls: number;
  answered: number;
  errors: number;
  elapsedMs: number;
  callsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  clientRssStartBytes: number;
  clientRssEndBytes: number;
  clientStatus: string;
  /** Read from a private field (ErpsClient has no public accessor); undefined if the shape changed. */
  privateInFlight: number | undefined;
}

export type ClientMessage =
  | { type: 'ready' }
  | { type: 'failed'; error: string }
  | { type: 'progress'; done: number; clientRssBytes: number }
  | { type: 'reply'; id: number; result?: WorkloadResult | IdleResult | SoakResult; error?: string };

// ---- gRPC -----------------------------------------------------------------------------------------

export const PROTO = `syntax = "proto3";
package bench;

message Item {
  int32 id = 1;
  string name = 2;
  repeated string tags = 3;
  bool ok = 4;
  double n = 5;
  bytes blob = 6;
}

message Count {
  int64 count = 1;
}

service Bench {
  rpc Echo (Item) returns (Item);
  rpc Cast (stream Item) returns (Count);
}
`;

export const PROTO_LOADER_OPTIONS = { keepCase: true, longs: Number, enums: String, defaults: false, oneofs: true };

/** Writes bench.proto into `dir` and returns its path. */
export function writeProto(dir: string): string {
  const path = join(dir, 'bench.proto');
  writeFileSync(path, PROTO);
  return path;
}

// ---- statistics -----------------------------------------------------------------------------------

/** Percentile (0..100) of the first `n` values of `values`, sorted in place. */
export function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((q / 100) * sorted.length) - 1));
  return sorted[index]!;
}

export function median(values: number[]): number {
  const finite = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (finite.length === 0) return NaN;
  const mid = finite.length >> 1;
  return finite.length % 2 === 1 ? finite[mid]! : (finite[mid - 1]! + finite[mid]!) / 2;
}

export function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/** Rejects after `ms` with `what` in the message; clears its timer either way. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
