/**
 * Shared pieces of the benchmark: system and workload names, the IPC messages between the orchestrator
 * (bench/main.ts), the server processes (bench/server.ts) and the client processes (bench/client.ts),
 * payloads, the gRPC service definition and small statistics helpers.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';

export const SYSTEMS = ['erps', 'erps-otel', 'nest-tcp', 'nest-grpc', 'raw', 'raw-msgpack'] as const;
export type SystemName = (typeof SYSTEMS)[number];

export const WORKLOADS = ['echo1', 'echo100', 'mib4', 'cast', 'stream', 'broadcast'] as const;
export type WorkloadName = (typeof WORKLOADS)[number];

/**
 * What `npm run bench` runs without --workloads. `stream` and `broadcast` are opt-in: with them the default run
 * (5 systems × 3 runs) would take about 12 minutes instead of 7.
 */
export const DEFAULT_WORKLOADS: readonly WorkloadName[] = ['echo1', 'echo100', 'mib4', 'cast'];

/** `stream`: values in one streamed reply (the ~64-byte object each time). */
export const STREAM_VALUES = 10_000;
/** `stream`: streams in flight. One at a time: the p50/p99 columns are then the time one whole stream takes. */
export const STREAMS_IN_FLIGHT = 1;

/** `broadcast`: connected clients the server pushes to (one of them also carries the request that starts a round). */
export const BROADCAST_CLIENTS = 100;
/** `broadcast`: broadcasts per turn of the server's loop (each to every client) before it checks backpressure and yields. */
export const BROADCAST_BATCH = 32;
/** `broadcast`: the server waits while a client's outgoing buffer holds more than this (bytes; gRPC: see server.ts). */
export const BROADCAST_BUFFER_LIMIT = 256 * 1024;
/** `broadcast`: the pattern (erps) of the pushed messages. */
export const BROADCAST_PATTERN = 'tick';

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
  stream: { payload: 'small', inflight: STREAMS_IN_FLIGHT },
  broadcast: { payload: 'small', inflight: 0 },
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
  /** `--mode scale`: run the server under node:cluster with this many workers sharing the port (0 or absent: no cluster). */
  workers?: number;
}

/** What a client process is told on its command line (JSON in argv[2]). */
export interface ClientArgs {
  system: SystemName;
  port: number;
  tls: TlsFiles;
  workDir: string;
  /** erps only (`--mode fleet`): one client over several daemons, with issue 13's options. */
  fleet?: FleetClientArgs;
  /** `broadcast`: connections (subscribers) to open before 'ready', the driver's own one included. */
  broadcastClients?: number;
  /** `--mode scale`: connections to the server (erps: connectionsPerEndpoint; nest-tcp: that many ClientProxy instances). */
  connections?: number;
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
  /** `--mode scale`: each cluster worker's own figures (the totals above add the primary's CPU and RSS). */
  workers?: Array<{ pid: number; echoCalls: number; connections?: number; cpuUserUs: number; cpuSystemUs: number; rssBytes: number }>;
}
export type ServerMessage = { type: 'ready'; port: number } | { type: 'failed'; error: string } | { type: 'reply'; id: number; stats?: ServerStats; error?: string };

export type ClientRequest =
  | { id: number; cmd: 'workload'; workload: WorkloadName; durationMs: number; warmupMs: number; inflight?: number }
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
  /** `broadcast`: what the measured round counted. */
  broadcast?: BroadcastCounts;
  /** `--mode fleet`: whether the client has the fleet options (issue 13: it has `endpoints()`), and what that says at the end. */
  fleetClient?: boolean;
  endpoints?: unknown[];
}

/** One round of `broadcast`, as the server and the clients counted it. */
export interface BroadcastCounts {
  clients: number;
  /** Messages the server handed to its transport (erps: the sum of what broadcast() returned). */
  sent: number;
  /** Messages the clients received, summed over the clients. */
  received: number;
  /** erps: connections broadcast() skipped (write buffer over maxWriteBufferBytes); 0 elsewhere. */
  skipped: number;
  /** Times the server's loop waited for a client's buffer to drain below the limit. */
  waits: number;
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

message Run {
  int32 durationMs = 1;
  int32 subscribers = 2;
}

message RunResult {
  int64 sent = 1;
  int64 waits = 2;
}

service Bench {
  rpc Echo (Item) returns (Item);
  rpc Cast (stream Item) returns (Count);
  // stream: Item.id is how many values to send; each value is the ~64-byte Item.
  rpc Stream (Item) returns (stream Item);
  // broadcast: each client holds one Subscribe stream, fed by one Subject on the server; Broadcast runs a round.
  rpc Subscribe (Item) returns (stream Item);
  rpc Broadcast (Run) returns (RunResult);
}
`;

export const PROTO_LOADER_OPTIONS = { keepCase: true, longs: Number, enums: String, defaults: false, oneofs: true };

/** Writes bench.proto into `dir` and returns its path. */
export function writeProto(dir: string): string {
  const path = join(dir, 'bench.proto');
  writeFileSync(path, PROTO);
  return path;
}

// ---- broadcast ------------------------------------------------------------------------------------

/** What one system's server offers the broadcast loop. */
export interface Broadcaster {
  /** Subscribers now (erps: connections; nest-tcp, gRPC: open Subscribe streams; raw: subscribed sockets). */
  subscribers(): number;
  /** Broadcasts `n` messages to every subscriber; returns how many messages were handed to the transport. */
  turn(n: number): number;
  /** True at once when no subscriber's outgoing buffer is over the limit; else waits a little (1 ms, or a drain) and resolves false, to be asked again. */
  settle(): Promise<boolean>;
  /** erps: messages broadcast() skipped so far (a connection over maxWriteBufferBytes). */
  skipped?(): number;
}

/**
 * The server's side of one `broadcast` round: waits (10 s at most) until `subscribers` are there, then, until
 * `durationMs` have passed, broadcasts BROADCAST_BATCH messages, waits while a subscriber is over the buffer limit
 * (backpressure), yields to I/O, again. Ends by itself: the loop stops at the deadline; waiting for a stuck
 * subscriber gives up 30 s after it.
 */
export async function broadcastRound(b: Broadcaster, durationMs: number, subscribers: number): Promise<{ sent: number; waits: number; skipped: number }> {
  const joinBy = performance.now() + 10_000;
  while (b.subscribers() < subscribers) {
    if (performance.now() > joinBy) throw new Error(`broadcast: ${b.subscribers()} of ${subscribers} subscribers after 10 s`);
    await sleep(2);
  }
  const skippedBefore = b.skipped?.() ?? 0;
  const deadline = performance.now() + durationMs;
  let sent = 0;
  let waits = 0;
  while (performance.now() < deadline) {
    sent += b.turn(BROADCAST_BATCH);
    while (!(await b.settle())) {
      waits++;
      if (performance.now() > deadline + 30_000) throw new Error('broadcast: a subscriber stopped reading');
    }
    await nextTurn();
  }
  return { sent, waits, skipped: (b.skipped?.() ?? 0) - skippedBefore };
}

/** For Broadcaster.settle(): polls `congested` every millisecond; true at once when it is not congested, false after a wait. */
export async function pollUntilClear(congested: () => boolean): Promise<boolean> {
  if (!congested()) return true;
  await sleep(1);
  return false;
}

/** A writable end (socket, gRPC call) the broadcast loop watches. */
export interface Drainable {
  readonly destroyed: boolean;
  on(event: string, listener: () => void): unknown;
  off(event: string, listener: () => void): unknown;
}

/**
 * For Broadcaster.settle() over streams that emit 'drain': true at once when none of `streams` is `full`; else waits
 * until each full one drains or closes (50 ms at most, then it is asked again) and resolves false.
 */
export async function drainFull<T extends Drainable>(streams: Iterable<T>, full: (stream: T) => boolean): Promise<boolean> {
  const waiting: Promise<void>[] = [];
  for (const stream of streams) {
    if (stream.destroyed || !full(stream)) continue;
    waiting.push(
      new Promise<void>((resolve) => {
        const events = ['drain', 'close', 'error', 'cancelled'];
        const done = (): void => {
          clearTimeout(timer);
          for (const event of events) stream.off(event, done);
          resolve();
        };
        const timer = setTimeout(done, 50);
        for (const event of events) stream.on(event, done);
      }),
    );
  }
  if (waiting.length === 0) return true;
  await Promise.all(waiting);
  return false;
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
