/**
 * `npm run bench`: nestjs-erps against Nest TCP+mTLS, Nest gRPC+mTLS and a raw mutual-TLS floor.
 *
 *   node build/bench/main.js [--mode compare|idle|soak|fleet|scale] [--systems erps,erps-otel,nest-tcp,nest-grpc,raw,raw-msgpack]
 *     [--workloads echo1,echo100,mib4,cast,stream,broadcast] [--duration 3] [--runs 3] [--cpu-prof [--keep-profiles DIR]]
 *     [--clients 1000] [--calls 1000000] [--slow-ms 2] [--slow-concurrency 4]
 *     [--workers 1,2] [--inflight 100,200] [--connections 2]
 *
 * `raw-msgpack` is the raw floor plus the payload codec: small echoes and casts carry the object packed with
 * msgpackr (erps's codec library and options) at every send, unpacked by the server (packed again for the echo) and
 * by the client for the reply. Run for echo1, echo100 and cast only (elsewhere it is the raw system); its ratios in
 * the JSON line are informational: what remains between it and erps is erps's own cost.
 *
 * Workloads of `--mode compare` (default: echo1, echo100, mib4, cast; `stream` and `broadcast` only when named in
 * --workloads, since with them the default run would take about 12 minutes instead of 7):
 * - `stream` (issue 16): one call answered with 10,000 values, each the ~64-byte object (erps and nest-tcp: a
 *   @MessagePattern returning an Observable, consumed through client.send(); nest-grpc: a server-streaming rpc
 *   `Stream`, @GrpcMethod returning an Observable, consumed with raw @grpc/grpc-js; raw: 10,000 ITEM frames and an
 *   END frame written at once). One stream at a time, the same for every system. The calls/s column is values/s,
 *   p50/p99 the time of one whole stream, CPU µs per value.
 * - `broadcast` (issue 16): 100 clients connected (in the load generator), the server pushes the ~64-byte object to
 *   all of them for the duration: batches of 32 broadcasts, then it waits while a client's outgoing buffer is over
 *   256 KiB (backpressure; gRPC: while a stream's write() said to wait), then yields to I/O. erps: 100 ErpsClients
 *   counting client.pushes('tick'), the server calling server.broadcast(); nest-tcp: 100 ClientProxy each holding
 *   one open streamed call ('subscribe') whose Observable is fed by one Subject the server emits into; nest-grpc:
 *   100 server streams (`Subscribe`, each client on its own connection) fed the same way; raw: 100 TLS connections
 *   the server writes the PUSH frame to. A round is started by a call on the first client and answers with the
 *   messages handed to the transport; the clock runs from that call to the moment the clients together received
 *   exactly that many (a barrier: a round fails if they do not within 30 s). The calls/s column is messages
 *   delivered per second summed over the clients, CPU µs per delivered message; no latency.
 *
 * `--mode scale` (issue 16): the erps server (and Nest TCP) under node:cluster with each of --workers (default 1
 * and 2) workers sharing one port, one load generator with --connections (default 2) connections (erps:
 * connectionsPerEndpoint; Nest TCP: that many ClientProxy instances, calls in turn) making echo calls of the ~64-byte
 * object, --inflight (default 100 and 200) in flight: calls/s, p50/p99, CPU per call of all server processes and of
 * the client, each worker's share of the calls, and the ratio of the most workers to the fewest. The machine's CPU
 * count is printed: the load generator competes with the workers for it.
 *
 * `--mode fleet` (issue 13): three erps daemons, one slowed by --slow-ms per call (--slow-concurrency at a time), one client over all three with
 * 100 calls in flight, under balancing 'round-robin' and then 'least-in-flight': calls/s, p50/p99 and each
 * daemon's share of the calls.
 *
 * Every server runs in its own forked process, the load generator in another; loopback only; mutual TLS
 * with freshly generated dev certificates. Prints a markdown table, then one final line of JSON.
 */
import 'reflect-metadata';
import { ChildProcess, fork } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { generateDevCertificates } from 'nestjs-erps/testing';
import {
  BROADCAST_CLIENTS,
  BroadcastCounts,
  ClientArgs,
  ClientMessage,
  ClientRequest,
  DEFAULT_WORKLOADS,
  describe,
  FLEET_BALANCINGS,
  FleetBalancing,
  IdleResult,
  median,
  MIB,
  ServerArgs,
  STREAM_VALUES,
  STREAMS_IN_FLIGHT,
  ServerMessage,
  ServerRequest,
  ServerStats,
  SoakResult,
  SYSTEMS,
  SystemName,
  TlsFiles,
  WORKLOADS,
  WorkloadName,
  WorkloadResult,
} from './common.js';
import { profileTable, summarizeProfile } from './profile.js';

// ---- options --------------------------------------------------------------------------------------

const MODES = ['compare', 'idle', 'soak', 'fleet', 'scale'] as const;
type Mode = (typeof MODES)[number];

/** The systems `--mode scale` can run under node:cluster, and those it runs by default. */
/** raw-msgpack differs from raw only where a value is encoded: small echoes and casts. */
const RAW_MSGPACK_WORKLOADS: readonly WorkloadName[] = ['echo1', 'echo100', 'cast'];

/** Whether `--mode compare` runs `workload` on `system` (raw-msgpack only runs RAW_MSGPACK_WORKLOADS). */
function runs(system: SystemName, workload: WorkloadName): boolean {
  return system !== 'raw-msgpack' || RAW_MSGPACK_WORKLOADS.includes(workload);
}
const SCALE_SYSTEMS: readonly SystemName[] = ['erps', 'erps-otel', 'nest-tcp'];
const SCALE_DEFAULT_SYSTEMS: SystemName[] = ['erps', 'nest-tcp'];

interface Options {
  mode: Mode;
  systems: SystemName[];
  /** Whether --systems was given (scale mode has its own default). */
  systemsGiven: boolean;
  workloads: WorkloadName[];
  durationS: number;
  runs: number;
  cpuProf: boolean;
  /** With --cpu-prof: a folder the newest server and client profiles are copied to (the temporary one is removed). */
  keepProfiles: string | undefined;
  clients: number;
  calls: number;
  slowMs: number;
  /** The slowed daemon serves this many calls at a time (0: no limit): a daemon with a fraction of the others' capacity. */
  slowConcurrency: number;
  /** `--mode scale`: cluster sizes, calls in flight, client connections. */
  workers: number[];
  inflight: number[];
  connections: number;
}

function usage(message: string): never {
  console.error(`bench: ${message}`);
  console.error(
    'usage: npm run bench -- [--mode compare|idle|soak|fleet|scale] [--systems erps,erps-otel,nest-tcp,nest-grpc,raw,raw-msgpack] ' +
      '[--workloads echo1,echo100,mib4,cast,stream,broadcast (default: the first four)] ' +
      '[--duration seconds] [--runs N] [--cpu-prof] [--keep-profiles DIR] [--clients N (idle)] [--calls N (soak)] [--slow-ms N (fleet)] [--slow-concurrency N (fleet)] ' +
      '[--workers 1,2 (scale)] [--inflight 100,200 (scale)] [--connections N (scale)]',
  );
  process.exit(2);
}

function parseList<T extends string>(value: string, allowed: readonly T[], what: string): T[] {
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  for (const item of items) if (!allowed.includes(item as T)) usage(`unknown ${what} "${item}" (one of ${allowed.join(', ')})`);
  if (items.length === 0) usage(`empty ${what} list`);
  return items as T[];
}

function parseOptions(argv: string[]): Options {
  const options: Options = {
    mode: 'compare',
    systems: [...SYSTEMS],
    systemsGiven: false,
    workloads: [...DEFAULT_WORKLOADS],
    durationS: 3,
    runs: 3,
    cpuProf: false,
    keepProfiles: undefined,
    clients: 1000,
    calls: 1_000_000,
    slowMs: 2,
    slowConcurrency: 4,
    workers: [1, 2],
    inflight: [100, 200],
    connections: 2,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) usage(`${flag} needs a value`);
      return v;
    };
    const positive = (what: string): number => {
      const n = Number(value());
      if (!Number.isFinite(n) || n <= 0) usage(`${what} must be a positive number`);
      return n;
    };
    const integers = (what: string): number[] => {
      const list = value()
        .split(',')
        .map((v) => Number(v.trim()));
      if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n <= 0)) usage(`${what} must be a list of positive integers`);
      return list;
    };
    switch (flag) {
      case '--mode': {
        const mode = value();
        if (!MODES.includes(mode as Mode)) usage(`unknown mode "${mode}"`);
        options.mode = mode as Mode;
        break;
      }
      case '--systems':
        options.systems = parseList(value(), SYSTEMS, 'system');
        options.systemsGiven = true;
        break;
      case '--workers':
        options.workers = integers('--workers');
        break;
      case '--inflight':
        options.inflight = integers('--inflight');
        break;
      case '--connections':
        options.connections = Math.ceil(positive('--connections'));
        break;
      case '--workloads':
        options.workloads = parseList(value(), WORKLOADS, 'workload');
        break;
      case '--duration':
        options.durationS = positive('--duration');
        break;
      case '--runs':
        options.runs = Math.ceil(positive('--runs'));
        break;
      case '--cpu-prof':
        options.cpuProf = true;
        break;
      case '--keep-profiles':
        options.cpuProf = true;
        options.keepProfiles = value();
        break;
      case '--clients':
        options.clients = Math.ceil(positive('--clients'));
        break;
      case '--calls':
        options.calls = Math.ceil(positive('--calls'));
        break;
      case '--slow-concurrency': {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 0) usage('--slow-concurrency must be an integer ≥ 0');
        options.slowConcurrency = n;
        break;
      }
      case '--slow-ms': {
        const n = Number(value());
        if (!Number.isFinite(n) || n < 0) usage('--slow-ms must be a number ≥ 0');
        options.slowMs = n;
        break;
      }
      case '--help':
      case '-h':
        usage('help');
        break;
      default:
        usage(`unknown option "${arg}"`);
    }
  }
  if (options.mode === 'scale') {
    if (!options.systemsGiven) options.systems = [...SCALE_DEFAULT_SYSTEMS];
    for (const system of options.systems) if (!SCALE_SYSTEMS.includes(system)) usage(`--mode scale runs ${SCALE_SYSTEMS.join(', ')}, not ${system}`);
  }
  return options;
}

/** Omit<T, 'id'> over each member of a union. */
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

// ---- child processes ------------------------------------------------------------------------------

const children = new Set<ChildProcess>();
let workDir: string | undefined;

function cleanup(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  children.clear();
  if (workDir !== undefined) {
    rmSync(workDir, { recursive: true, force: true });
    workDir = undefined;
  }
}
process.on('exit', cleanup);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    console.error(`bench: ${signal}, stopping`);
    cleanup();
    process.exit(130);
  });
}

/**
 * The children's environment. The gRPC packages are the benchmark's own dependencies (bench/package.json, in
 * bench/node_modules, which `npm run bench` installs): NODE_PATH lets both the bench code in build/bench/ and
 * Nest's gRPC transport (which requires @grpc/grpc-js from inside @nestjs/microservices) find them.
 */
const BENCH_MODULES = join(__dirname, '..', '..', 'bench', 'node_modules');
const CHILD_ENV: NodeJS.ProcessEnv = { ...process.env, NODE_PATH: [BENCH_MODULES, process.env.NODE_PATH].filter(Boolean).join(delimiter) };

/** A forked child that answers requests carrying an `id` with { type: 'reply', id }. */
class Child<Req extends { id: number }, Msg extends { type: string }> {
  readonly process: ChildProcess;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve(msg: Msg): void; reject(err: Error): void; timer: NodeJS.Timeout }>();
  private readonly ready: Promise<Msg>;
  private exited: Error | undefined;
  onMessage: ((msg: Msg) => void) | undefined;

  constructor(
    readonly name: string,
    script: string,
    args: string[],
    execArgv: string[] = [],
  ) {
    this.process = fork(script, args, { execArgv, env: CHILD_ENV, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.add(this.process);
    this.ready = new Promise<Msg>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name}: not ready after 30 s`)), 30_000);
      this.process.on('message', (raw) => {
        const msg = raw as Msg & { id?: number; error?: string };
        if (msg.type === 'ready' || msg.type === 'failed') {
          clearTimeout(timer);
          if (msg.type === 'failed') reject(new Error(`${name}: ${msg.error ?? 'failed'}`));
          else resolve(msg);
          return;
        }
        if (msg.type === 'reply' && msg.id !== undefined) {
          const waiter = this.waiting.get(msg.id);
          if (waiter === undefined) return;
          this.waiting.delete(msg.id);
          clearTimeout(waiter.timer);
          if (msg.error !== undefined) waiter.reject(new Error(`${name}: ${msg.error}`));
          else waiter.resolve(msg);
          return;
        }
        this.onMessage?.(msg);
      });
      this.process.on('exit', (code, signal) => {
        children.delete(this.process);
        clearTimeout(timer);
        this.exited = new Error(`${name} exited (code ${String(code)}, signal ${String(signal)})`);
        reject(this.exited);
        for (const [, waiter] of this.waiting) {
          clearTimeout(waiter.timer);
          waiter.reject(this.exited);
        }
        this.waiting.clear();
      });
    });
    this.ready.catch(() => undefined);
  }

  whenReady(): Promise<Msg> {
    return this.ready;
  }

  request(body: WithoutId<Req>, timeoutMs: number): Promise<Msg> {
    if (this.exited !== undefined) return Promise.reject(this.exited);
    const id = this.nextId++;
    return new Promise<Msg>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`${this.name}: no answer to ${JSON.stringify(body)} after ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, { resolve, reject, timer });
      this.process.send({ ...body, id });
    });
  }

  /** Asks the child to stop; kills it if it has not exited within 5 s. */
  async stop(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.process.once('exit', () => resolve()));
    try {
      await this.request({ cmd: 'stop' } as unknown as WithoutId<Req>, 2000);
    } catch {
      // kill below
    }
    const timer = setTimeout(() => this.process.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}

type ServerChild = Child<ServerRequest, ServerMessage>;
type ClientChild = Child<ClientRequest, ClientMessage>;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

interface Env {
  dir: string;
  serverTls: TlsFiles;
  clientTls: TlsFiles;
}

async function startServer(
  env: Env,
  system: SystemName,
  execArgv: string[] = [],
  extra: Partial<ServerArgs> = {},
  name = `${system} server`,
): Promise<{ server: ServerChild; port: number }> {
  const args: ServerArgs = { system, tls: env.serverTls, port: system === 'nest-grpc' ? await freePort() : 0, workDir: env.dir, ...extra };
  const server: ServerChild = new Child(name, join(__dirname, 'server.js'), [JSON.stringify(args)], execArgv);
  const ready = await server.whenReady();
  if (ready.type !== 'ready') throw new Error(`${system} server did not start`);
  return { server, port: ready.port };
}

async function startClient(env: Env, system: SystemName, port: number, extra: string[] = [], execArgv: string[] = [], more: Partial<ClientArgs> = {}): Promise<ClientChild> {
  const args: ClientArgs = { system, port, tls: env.clientTls, workDir: env.dir, ...more };
  const client: ClientChild = new Child(`${system} client`, join(__dirname, 'client.js'), [JSON.stringify(args), ...extra], execArgv);
  await client.whenReady();
  return client;
}

async function serverStats(server: ServerChild, gc = false): Promise<ServerStats> {
  const reply = await server.request({ cmd: 'stats', gc }, 10_000);
  if (reply.type !== 'reply' || reply.stats === undefined) throw new Error('no stats from server');
  return reply.stats;
}

const mib = (bytes: number): number => bytes / MIB;
const fmt = (value: number | undefined, digits = 0): string =>
  value === undefined || !Number.isFinite(value) ? '–' : value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

// ---- compare --------------------------------------------------------------------------------------

interface Sample extends WorkloadResult {
  /** The run (1..runs) it was measured in. */
  run: number;
  serverRssMiB: number;
  serverCpuUsPerCall: number;
  clientCpuUsPerCall: number;
}

/** What one "call" of a workload is, for the labels. */
const PER: Record<WorkloadName, string> = { echo1: 'call', echo100: 'call', mib4: 'call', cast: 'cast', stream: 'value', broadcast: 'msg' };

/** The workload column: stream and broadcast say what their "calls" are. */
const label = (workload: WorkloadName): string => (workload === 'stream' ? 'stream (per value)' : workload === 'broadcast' ? 'broadcast (per msg)' : workload);

function broadcastLine(b: BroadcastCounts): string {
  return `${b.clients} clients, ${b.sent.toLocaleString('en-US')} sent, ${b.received.toLocaleString('en-US')} received, ${b.waits} backpressure waits, ${b.skipped} skipped`;
}

/** User + system CPU µs spent per call (or cast) over a span in which `calls` were made. */
const cpuUsPerCall = (userUs: number, systemUs: number, calls: number): number => (calls > 0 ? (userUs + systemUs) / calls : NaN);

function toSample(result: WorkloadResult, run: number, before: ServerStats, after: ServerStats): Sample {
  return {
    ...result,
    run,
    serverRssMiB: mib(after.rssBytes),
    serverCpuUsPerCall: cpuUsPerCall(after.cpuUserUs - before.cpuUserUs, after.cpuSystemUs - before.cpuSystemUs, result.totalCalls),
    clientCpuUsPerCall: cpuUsPerCall(result.cpuUserUs, result.cpuSystemUs, result.totalCalls),
  };
}

async function compare(options: Options, env: Env): Promise<void> {
  const durationMs = options.durationS * 1000;
  const warmupMs = Math.max(300, Math.min(2000, durationMs / 3));
  const samples = new Map<string, Sample[]>();
  const key = (system: SystemName, workload: WorkloadName): string => `${system}/${workload}`;
  const failures: string[] = [];
  let profileDir: string | undefined;

  for (let run = 1; run <= options.runs; run++) {
    for (const system of options.systems) {
      let execArgv: string[] = [];
      let clientExecArgv: string[] = [];
      if (options.cpuProf && system.startsWith('erps')) {
        profileDir = join(env.dir, 'cpu-prof');
        execArgv = ['--cpu-prof', '--cpu-prof-dir', join(profileDir, 'server')];
        clientExecArgv = ['--cpu-prof', '--cpu-prof-dir', join(profileDir, 'client')];
      }
      // Fresh server and client processes per workload: the server RSS belongs to that workload alone.
      for (const workload of options.workloads) {
        if (!runs(system, workload)) continue;
        let server: ServerChild | undefined;
        let client: ClientChild | undefined;
        try {
          const started = await startServer(env, system, execArgv);
          server = started.server;
          // broadcast: the client process opens its 100 connections (subscribers) before 'ready', outside the span.
          client = await startClient(env, system, started.port, [], clientExecArgv, workload === 'broadcast' ? { broadcastClients: BROADCAST_CLIENTS } : {});
          const before = await serverStats(server);
          const reply = await client.request({ cmd: 'workload', workload, durationMs, warmupMs }, durationMs + warmupMs + 90_000);
          if (reply.type !== 'reply' || reply.result === undefined) throw new Error(`${system}/${workload}: no result`);
          const result = reply.result as WorkloadResult;
          const sample = toSample(result, run, before, await serverStats(server));
          const list = samples.get(key(system, workload)) ?? [];
          list.push(sample);
          samples.set(key(system, workload), list);
          const per = PER[workload];
          console.error(
            `run ${run}/${options.runs} ${system.padEnd(9)} ${workload.padEnd(9)} ${fmt(result.callsPerSec).padStart(9)} ${per}s/s` +
              (result.p99Ms !== undefined ? `  p50 ${fmt(result.p50Ms, 3)} ms  p99 ${fmt(result.p99Ms, 3)} ms` : '') +
              (result.bytesPerSec !== undefined ? `  ${fmt(mib(result.bytesPerSec), 1)} MiB/s` : '') +
              (result.broadcast !== undefined ? `  (${broadcastLine(result.broadcast)})` : '') +
              `  server RSS ${fmt(sample.serverRssMiB, 1)} MiB` +
              `  server CPU ${fmt(sample.serverCpuUsPerCall, 2)} µs/${per}  client CPU ${fmt(sample.clientCpuUsPerCall, 2)} µs/${per}`,
          );
        } catch (err) {
          failures.push(`run ${run} ${system} ${workload}: ${describe(err)}`);
          console.error(`bench: run ${run} ${system} ${workload} failed: ${describe(err)}`);
        } finally {
          await client?.stop();
          await server?.stop();
        }
      }
    }
  }

  // Medians per system × workload.
  const summary: Record<
    string,
    Record<
      string,
      { callsPerSec: number; p50Ms?: number; p99Ms?: number; bytesPerSec?: number; serverRssMiB: number; serverCpuUsPerCall: number; clientCpuUsPerCall: number; runs: number }
    >
  > = {};
  const lines = [
    `Mutual TLS on 127.0.0.1, server and client in separate processes; medians of ${options.runs} run(s) of ${options.durationS} s each (after ${fmt(warmupMs / 1000, 1)} s warm-up).`,
    '',
    '| system | workload | calls/s | MiB/s (both ways) | p50 ms | p99 ms | server CPU µs/call | client CPU µs/call | server RSS MiB |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const workload of options.workloads) {
    for (const system of options.systems) {
      if (!runs(system, workload)) continue;
      const list = samples.get(key(system, workload)) ?? [];
      if (list.length === 0) {
        lines.push(`| ${system} | ${label(workload)} | failed | | | | | | |`);
        continue;
      }
      const m = {
        callsPerSec: median(list.map((s) => s.callsPerSec)),
        p50Ms: list[0]!.p50Ms === undefined ? undefined : median(list.map((s) => s.p50Ms ?? NaN)),
        p99Ms: list[0]!.p99Ms === undefined ? undefined : median(list.map((s) => s.p99Ms ?? NaN)),
        bytesPerSec: list[0]!.bytesPerSec === undefined ? undefined : median(list.map((s) => s.bytesPerSec ?? NaN)),
        serverRssMiB: median(list.map((s) => s.serverRssMiB)),
        serverCpuUsPerCall: median(list.map((s) => s.serverCpuUsPerCall)),
        clientCpuUsPerCall: median(list.map((s) => s.clientCpuUsPerCall)),
        runs: list.length,
      };
      (summary[system] ??= {})[workload] = m;
      lines.push(
        `| ${system} | ${label(workload)} | ${fmt(m.callsPerSec)} | ${m.bytesPerSec === undefined ? '' : fmt(mib(m.bytesPerSec), 1)} | ${fmt(m.p50Ms, 3)} | ${fmt(m.p99Ms, 3)} | ${fmt(m.serverCpuUsPerCall, 2)} | ${fmt(m.clientCpuUsPerCall, 2)} | ${fmt(m.serverRssMiB, 1)} |`,
      );
    }
  }
  const legend: string[] = [];
  if (options.workloads.includes('cast')) legend.push('- cast: calls/s is casts/s (acknowledged by the server); CPU per cast.');
  if (options.workloads.includes('stream')) {
    legend.push(
      `- stream: calls/s is **values/s** (one call answered with ${STREAM_VALUES.toLocaleString('en-US')} values of the ~64-byte object, ${STREAMS_IN_FLIGHT} stream at a time); ` +
        'p50/p99 are the time of one whole stream; CPU µs **per value**.',
    );
  }
  if (options.workloads.includes('broadcast')) {
    legend.push(
      `- broadcast: calls/s is **messages delivered per second**, summed over ${BROADCAST_CLIENTS} clients (the ~64-byte object pushed to every client; ` +
        'counted from the request that starts a round to the last message of the round received); CPU µs **per delivered message** (server: the whole ' +
        'server process; client: all 100 clients in one process); no latency measured.',
    );
    const last = (system: SystemName): BroadcastCounts | undefined => samples.get(key(system, 'broadcast'))?.at(-1)?.broadcast;
    for (const system of options.systems) {
      const b = last(system);
      if (b !== undefined) legend.push(`  - ${system}, last measured round: ${broadcastLine(b)}.`);
    }
  }
  if (legend.length > 0) lines.push('', ...legend);
  if (failures.length > 0) lines.push('', 'Failures:', ...failures.map((f) => `- ${f}`));
  console.log(lines.join('\n'));

  if (profileDir !== undefined) {
    for (const side of ['server', 'client'] as const) {
      const dir = join(profileDir, side);
      const profiles = readdirSync(dir)
        .filter((f) => f.endsWith('.cpuprofile'))
        .map((f) => join(dir, f))
        .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
      if (profiles[0] === undefined) continue;
      console.log(`\nCPU profile of the erps ${side} process (${options.workloads.join(', ')}; newest of ${profiles.length}):\n`);
      console.log(profileTable(summarizeProfile(profiles[0], 30)));
      if (options.keepProfiles !== undefined) {
        mkdirSync(options.keepProfiles, { recursive: true });
        const kept = join(options.keepProfiles, `${side}.cpuprofile`);
        copyFileSync(profiles[0], kept);
        console.log(`\n(kept as ${kept}: npm run bench:profile-summary -- ${kept})`);
      }
    }
  }

  const get = (system: SystemName, workload: WorkloadName) => summary[system]?.[workload];
  const ratio = (a: number | undefined, b: number | undefined): number | null =>
    a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? null : Number((a / b).toFixed(3));
  /** A target's ratio, its two systems' values read with `value`. */
  const targetRatio = ([a, b, workload, metric]: TargetInputs, value: (system: SystemName, workload: WorkloadName, metric: TargetMetric) => number | undefined): number | null =>
    ratio(value(a, workload, metric), value(b, workload, metric));
  const round = (v: number | undefined, digits = 0): number | null => (v === undefined || !Number.isFinite(v) ? null : Number(v.toFixed(digits)));
  const ratios: Record<string, number | null> = {
    // The targets' ratios, of the medians.
    ...Object.fromEntries(Object.entries(TARGETS).map(([name, target]) => [name, targetRatio(target.of, (system, workload, metric) => get(system, workload)?.[metric])])),
    // Informational, no target: less noisy than calls/s on a shared machine.
    erps_over_nestTcp_serverCpuPerCall_echo100: ratio(get('erps', 'echo100')?.serverCpuUsPerCall, get('nest-tcp', 'echo100')?.serverCpuUsPerCall),
    erpsOtel_over_erps_callsPerSec_echo100: ratio(get('erps-otel', 'echo100')?.callsPerSec, get('erps', 'echo100')?.callsPerSec),
    erpsOtel_over_erps_serverCpuPerCall_echo100: ratio(get('erps-otel', 'echo100')?.serverCpuUsPerCall, get('erps', 'echo100')?.serverCpuUsPerCall),
    // Informational (issue 16): stream (values/s, server CPU per value) and broadcast (messages delivered/s, server CPU per message).
    erps_over_nestTcp_valuesPerSec_stream: ratio(get('erps', 'stream')?.callsPerSec, get('nest-tcp', 'stream')?.callsPerSec),
    erps_over_nestGrpc_valuesPerSec_stream: ratio(get('erps', 'stream')?.callsPerSec, get('nest-grpc', 'stream')?.callsPerSec),
    erps_over_raw_valuesPerSec_stream: ratio(get('erps', 'stream')?.callsPerSec, get('raw', 'stream')?.callsPerSec),
    erps_over_nestTcp_serverCpuPerValue_stream: ratio(get('erps', 'stream')?.serverCpuUsPerCall, get('nest-tcp', 'stream')?.serverCpuUsPerCall),
    erps_over_raw_serverCpuPerValue_stream: ratio(get('erps', 'stream')?.serverCpuUsPerCall, get('raw', 'stream')?.serverCpuUsPerCall),
    erps_over_nestTcp_messagesPerSec_broadcast: ratio(get('erps', 'broadcast')?.callsPerSec, get('nest-tcp', 'broadcast')?.callsPerSec),
    erps_over_nestGrpc_messagesPerSec_broadcast: ratio(get('erps', 'broadcast')?.callsPerSec, get('nest-grpc', 'broadcast')?.callsPerSec),
    erps_over_raw_messagesPerSec_broadcast: ratio(get('erps', 'broadcast')?.callsPerSec, get('raw', 'broadcast')?.callsPerSec),
    erps_over_nestTcp_serverCpuPerMessage_broadcast: ratio(get('erps', 'broadcast')?.serverCpuUsPerCall, get('nest-tcp', 'broadcast')?.serverCpuUsPerCall),
    erps_over_raw_serverCpuPerMessage_broadcast: ratio(get('erps', 'broadcast')?.serverCpuUsPerCall, get('raw', 'broadcast')?.serverCpuUsPerCall),
    // Informational: against the floor plus a payload codec (raw-msgpack), what is left is erps's own cost.
    erps_over_rawMsgpack_callsPerSec_echo100: ratio(get('erps', 'echo100')?.callsPerSec, get('raw-msgpack', 'echo100')?.callsPerSec),
    erps_over_rawMsgpack_callsPerSec_echo1: ratio(get('erps', 'echo1')?.callsPerSec, get('raw-msgpack', 'echo1')?.callsPerSec),
    erps_over_rawMsgpack_callsPerSec_cast: ratio(get('erps', 'cast')?.callsPerSec, get('raw-msgpack', 'cast')?.callsPerSec),
    rawMsgpack_over_raw_callsPerSec_echo100: ratio(get('raw-msgpack', 'echo100')?.callsPerSec, get('raw', 'echo100')?.callsPerSec),
    rawMsgpack_over_raw_callsPerSec_cast: ratio(get('raw-msgpack', 'cast')?.callsPerSec, get('raw', 'cast')?.callsPerSec),
  };
  // Each target's ratio within every run, from that run's two samples (measured minutes apart at most, where the
  // medians above may pair a fast minute of one system with a slow one of the other): how far the noise reaches.
  const inRun = (run: number, system: SystemName, workload: WorkloadName, metric: TargetMetric): number | undefined =>
    samples.get(key(system, workload))?.find((s) => s.run === run)?.[metric];
  const perRun = Object.fromEntries(
    Object.entries(TARGETS).map(([name, target]) => [
      name,
      Array.from({ length: options.runs }, (_, i) => targetRatio(target.of, (system, workload, metric) => inRun(i + 1, system, workload, metric))),
    ]),
  );
  const targets: Record<string, string> = Object.fromEntries(Object.entries(TARGETS).map(([name, { wanted }]) => [name, wanted]));
  const runLines = Object.entries(targets)
    .filter(([name]) => (perRun[name] ?? []).some((value) => value !== null))
    .map(([name, target]) => {
      const values = perRun[name] ?? [];
      const met = values.filter((value) => meets(value, target) === true).length;
      return `- ${name} (${target}): ${values.map((value) => (value === null ? '–' : String(value))).join(' · ')} (met in ${met} of ${values.length})`;
    });
  if (runLines.length > 0) console.log(['', 'Targets run by run (each ratio from the two systems of one run):', ...runLines].join('\n'));

  const json = {
    bench: 'nestjs-erps',
    mode: 'compare',
    durationS: options.durationS,
    runs: options.runs,
    ratios,
    targets,
    // Per target: whether this run met it (null: a system or workload it needs was not run, or failed).
    met: Object.fromEntries(Object.entries(targets).map(([name, target]) => [name, meets(ratios[name] ?? null, target)])),
    // Per target: its ratio in each run (null where a sample is missing), and in how many runs that ratio met it
    // (null when no run measured it).
    perRun,
    metInRuns: Object.fromEntries(
      Object.entries(targets).map(([name, target]) => {
        const values = perRun[name] ?? [];
        return [name, values.every((value) => value === null) ? null : values.filter((value) => meets(value, target) === true).length];
      }),
    ),
    absolute: Object.fromEntries(
      Object.entries(summary).map(([system, workloads]) => [
        system,
        Object.fromEntries(
          Object.entries(workloads).map(([workload, m]) => [
            workload,
            {
              callsPerSec: round(m.callsPerSec),
              p50Ms: round(m.p50Ms, 3),
              p99Ms: round(m.p99Ms, 3),
              bytesPerSec: round(m.bytesPerSec),
              ...(workload === 'stream' || workload === 'broadcast' ? { per: PER[workload] } : {}),
              serverRssMiB: round(m.serverRssMiB, 1),
              serverCpuUsPerCall: round(m.serverCpuUsPerCall, 2),
              clientCpuUsPerCall: round(m.clientCpuUsPerCall, 2),
              runs: m.runs,
            },
          ]),
        ),
      ]),
    ),
    failures,
  };
  console.log(JSON.stringify(json));
  if (failures.length > 0) process.exitCode = 1;
}

type TargetMetric = 'callsPerSec' | 'p99Ms' | 'bytesPerSec';

/**
 * Issue 16's targets ("close to the floor"; erps_over_nestTcp_callsPerSec_echo1 is issue 6's, kept): what each must
 * be, and what it divides (system over system, for one workload and metric).
 */
type TargetInputs = [SystemName, SystemName, WorkloadName, TargetMetric];

const TARGETS: Record<string, { wanted: string; of: TargetInputs }> = {
  erps_over_raw_callsPerSec_echo100: { wanted: '>=0.5', of: ['erps', 'raw', 'echo100', 'callsPerSec'] },
  erps_over_nestTcp_callsPerSec_echo100: { wanted: '>=5', of: ['erps', 'nest-tcp', 'echo100', 'callsPerSec'] },
  erps_over_raw_callsPerSec_echo1: { wanted: '>=0.9', of: ['erps', 'raw', 'echo1', 'callsPerSec'] },
  erps_over_raw_callsPerSec_cast: { wanted: '>=0.25', of: ['erps', 'raw', 'cast', 'callsPerSec'] },
  erps_over_nestTcp_p99_echo100: { wanted: '<=0.3', of: ['erps', 'nest-tcp', 'echo100', 'p99Ms'] },
  erps_over_raw_bytesPerSec_mib4: { wanted: '>=0.95', of: ['erps', 'raw', 'mib4', 'bytesPerSec'] },
  erps_over_nestTcp_callsPerSec_echo1: { wanted: '>=1.3', of: ['erps', 'nest-tcp', 'echo1', 'callsPerSec'] },
};

/** Whether `value` meets a target written as ">=x", "<=x", ">x" or "<x"; null without a value. */
function meets(value: number | null, target: string): boolean | null {
  const match = /^(>=|<=|>|<)\s*([0-9.]+)$/.exec(target);
  if (value === null || match === null) return null;
  const bound = Number(match[2]);
  switch (match[1]) {
    case '>=':
      return value >= bound;
    case '<=':
      return value <= bound;
    case '>':
      return value > bound;
    default:
      return value < bound;
  }
}

// ---- idle -----------------------------------------------------------------------------------------

async function idle(options: Options, env: Env): Promise<void> {
  const { server, port } = await startServer(env, 'erps', ['--expose-gc']);
  let client: ClientChild | undefined;
  try {
    client = await startClient(env, 'erps', port, ['idle']);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const before = await serverStats(server, true);
    const reply = await client.request({ cmd: 'idle', clients: options.clients, batch: 50 }, 300_000);
    const result = reply.type === 'reply' ? (reply.result as IdleResult) : undefined;
    if (result === undefined) throw new Error('idle: no result');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const after = await serverStats(server, true);
    const perConnKiB = (after.rssBytes - before.rssBytes) / options.clients / 1024;
    const clientPerConnKiB = (result.clientRssAfterBytes - result.clientRssBeforeBytes) / options.clients / 1024;
    console.log(
      [
        `${options.clients} idle mutual-TLS ErpsClients (one process) connected to one erps daemon (Nest microservice, own process).`,
        '',
        '| measure | value |',
        '|---|---:|',
        `| clients connected (client status) | ${result.connected} |`,
        `| connections the daemon reports | ${after.connections ?? '–'} |`,
        `| time to connect all (batches of 50) | ${fmt(result.connectMs / 1000, 2)} s |`,
        `| server RSS before (after gc) | ${fmt(mib(before.rssBytes), 1)} MiB |`,
        `| server RSS with ${options.clients} connections (after gc) | ${fmt(mib(after.rssBytes), 1)} MiB |`,
        `| server RSS per connection | ${fmt(perConnKiB, 1)} KiB |`,
        `| server heap used before → after | ${fmt(mib(before.heapUsedBytes), 1)} → ${fmt(mib(after.heapUsedBytes), 1)} MiB |`,
        `| client process RSS per client | ${fmt(clientPerConnKiB, 1)} KiB |`,
      ].join('\n'),
    );
    await client.request({ cmd: 'idle-close' }, 60_000);
    console.log(
      JSON.stringify({
        bench: 'nestjs-erps',
        mode: 'idle',
        clients: options.clients,
        connected: result.connected,
        daemonConnections: after.connections ?? null,
        connectMs: Math.round(result.connectMs),
        serverRssBeforeMiB: Number(mib(before.rssBytes).toFixed(1)),
        serverRssAfterMiB: Number(mib(after.rssBytes).toFixed(1)),
        serverRssPerConnectionKiB: Number(perConnKiB.toFixed(1)),
        clientRssPerClientKiB: Number(clientPerConnKiB.toFixed(1)),
      }),
    );
    if (result.connected !== options.clients || after.connections !== options.clients) process.exitCode = 1;
  } finally {
    await client?.stop();
    await server.stop();
  }
}

// ---- soak -----------------------------------------------------------------------------------------

async function soak(options: Options, env: Env): Promise<void> {
  const { server, port } = await startServer(env, 'erps', ['--expose-gc']);
  let client: ClientChild | undefined;
  try {
    client = await startClient(env, 'erps', port);
    // Warm-up, then the starting point.
    await client.request({ cmd: 'soak', calls: 20_000, inflight: 100, progressEvery: 1_000_000 }, 120_000);
    const start = await serverStats(server);
    const progressEvery = Math.max(1, Math.floor(options.calls / 10));
    const samples: Array<{ done: number; serverRssMiB: number; clientRssMiB: number }> = [];
    client.onMessage = (msg) => {
      if (msg.type !== 'progress') return;
      void serverStats(server).then(
        (stats) => samples.push({ done: msg.done, serverRssMiB: Number(mib(stats.rssBytes).toFixed(1)), clientRssMiB: Number(mib(msg.clientRssBytes).toFixed(1)) }),
        () => undefined,
      );
    };
    const reply = await client.request({ cmd: 'soak', calls: options.calls, inflight: 100, progressEvery }, Math.max(600_000, options.calls / 2));
    const result = reply.type === 'reply' ? (reply.result as SoakResult) : undefined;
    if (result === undefined) throw new Error('soak: no result');
    const end = await serverStats(server);
    const endGc = await serverStats(server, true);
    const ok =
      result.answered === options.calls &&
      result.errors === 0 &&
      result.clientStatus === 'connected' &&
      end.connections === 1 &&
      (result.privateInFlight ?? 0) === 0 &&
      (end.privateActiveCalls ?? 0) === 0;
    console.log(
      [
        `Soak: ${options.calls.toLocaleString('en-US')} echo calls (~64-byte object) through one ErpsClient, 100 in flight, mutual TLS, server in its own process.`,
        '',
        '| measure | value |',
        '|---|---:|',
        `| answered / errors | ${result.answered.toLocaleString('en-US')} / ${result.errors} |`,
        `| elapsed | ${fmt(result.elapsedMs / 1000, 1)} s (${fmt(result.callsPerSec)} calls/s) |`,
        `| p50 / p99 latency | ${fmt(result.p50Ms, 3)} / ${fmt(result.p99Ms, 3)} ms |`,
        `| server RSS start → end | ${fmt(mib(start.rssBytes), 1)} → ${fmt(mib(end.rssBytes), 1)} MiB (${fmt(mib(endGc.rssBytes), 1)} after gc) |`,
        `| server heap used start → end | ${fmt(mib(start.heapUsedBytes), 1)} → ${fmt(mib(end.heapUsedBytes), 1)} MiB (${fmt(mib(endGc.heapUsedBytes), 1)} after gc) |`,
        `| client RSS start → end | ${fmt(mib(result.clientRssStartBytes), 1)} → ${fmt(mib(result.clientRssEndBytes), 1)} MiB |`,
        `| client status at the end | ${result.clientStatus} |`,
        `| daemon connections at the end | ${end.connections ?? '–'} |`,
        `| client pending calls at the end (client.stats().inFlight) | ${result.privateInFlight ?? 'unreadable'} |`,
        `| daemon active calls at the end (server.stats().inFlight) | ${end.privateActiveCalls ?? 'unreadable'} |`,
        '',
        'RSS over the soak (calls done: server MiB / client MiB): ' +
          samples
            .sort((a, b) => a.done - b.done)
            .map((s) => `${s.done}: ${s.serverRssMiB}/${s.clientRssMiB}`)
            .join(', '),
      ].join('\n'),
    );
    console.log(
      JSON.stringify({
        bench: 'nestjs-erps',
        mode: 'soak',
        calls: options.calls,
        answered: result.answered,
        errors: result.errors,
        callsPerSec: Math.round(result.callsPerSec),
        p50Ms: Number(result.p50Ms.toFixed(3)),
        p99Ms: Number(result.p99Ms.toFixed(3)),
        serverRssStartMiB: Number(mib(start.rssBytes).toFixed(1)),
        serverRssEndMiB: Number(mib(end.rssBytes).toFixed(1)),
        serverRssEndAfterGcMiB: Number(mib(endGc.rssBytes).toFixed(1)),
        clientRssStartMiB: Number(mib(result.clientRssStartBytes).toFixed(1)),
        clientRssEndMiB: Number(mib(result.clientRssEndBytes).toFixed(1)),
        clientStatus: result.clientStatus,
        daemonConnections: end.connections ?? null,
        clientPendingPrivate: result.privateInFlight ?? null,
        daemonActiveCallsPrivate: end.privateActiveCalls ?? null,
        ok,
      }),
    );
    if (!ok) process.exitCode = 1;
  } finally {
    await client?.stop();
    await server.stop();
  }
}

// ---- fleet ----------------------------------------------------------------------------------------

const FLEET_INFLIGHT = 100;
const FLEET_DAEMONS = 3;

interface FleetSample {
  callsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Each daemon's share of the echo calls of the run (warm-up included), by daemon name. */
  shares: Record<string, number>;
  fleetClient: boolean;
  endpoints: unknown[] | undefined;
}

/**
 * Issue 13's benchmark: three erps daemons (own processes), the last one slowed by --slow-ms per call, and one
 * client process over all three (`endpoints: [...]`, `balancing`), 100 echo calls in flight. Each balancing policy
 * runs --runs times with a fresh client process; the daemons stay up and their echo counters give the shares.
 */
async function fleet(options: Options, env: Env): Promise<void> {
  const durationMs = options.durationS * 1000;
  const warmupMs = Math.max(300, Math.min(2000, durationMs / 3));
  const names = Array.from({ length: FLEET_DAEMONS }, (_, i) => `d${i + 1}`);
  const slowName = names[FLEET_DAEMONS - 1]!;
  const label = (name: string): string => (name === slowName ? `${name} (+${options.slowMs} ms)` : name);
  const daemons: Array<{ name: string; server: ServerChild; port: number }> = [];
  const samples = new Map<FleetBalancing, FleetSample[]>();
  const failures: string[] = [];
  try {
    for (const [i, name] of names.entries()) {
      const delayMs = i === FLEET_DAEMONS - 1 ? options.slowMs : 0;
      const delayConcurrency = i === FLEET_DAEMONS - 1 ? options.slowConcurrency : 0;
      const { server, port } = await startServer(env, 'erps', [], { delayMs, delayConcurrency }, `erps daemon ${label(name)}`);
      daemons.push({ name, server, port });
    }
    const endpoints = daemons.map((d) => ({ host: '127.0.0.1', port: d.port }));
    // Run 0 warms the daemons up (JIT, TLS session setup) and is not recorded; then the policies alternate their
    // order from run to run, so neither always goes first onto a machine that is still settling.
    for (let run = 0; run <= options.runs; run++) {
      const order = run % 2 === 1 ? [...FLEET_BALANCINGS] : [...FLEET_BALANCINGS].reverse();
      for (const balancing of run === 0 ? FLEET_BALANCINGS.slice(0, 1) : order) {
        let client: ClientChild | undefined;
        try {
          const before = await Promise.all(daemons.map((d) => serverStats(d.server)));
          client = await startClient(env, 'erps', endpoints[0]!.port, [], [], { fleet: { endpoints, balancing } });
          const reply = await client.request({ cmd: 'workload', workload: 'echo100', durationMs, warmupMs }, durationMs + warmupMs + 90_000);
          if (reply.type !== 'reply' || reply.result === undefined) throw new Error(`fleet/${balancing}: no result`);
          const result = reply.result as WorkloadResult;
          if (run === 0) {
            console.error(`warm-up fleet ${balancing}: ${fmt(result.callsPerSec)} calls/s (not recorded)`);
            continue;
          }
          const after = await Promise.all(daemons.map((d) => serverStats(d.server)));
          const handled = daemons.map((_, j) => after[j]!.echoCalls - before[j]!.echoCalls);
          const total = handled.reduce((a, b) => a + b, 0);
          const shares = Object.fromEntries(daemons.map((d, j) => [d.name, total > 0 ? handled[j]! / total : NaN]));
          const sample: FleetSample = {
            callsPerSec: result.callsPerSec,
            p50Ms: result.p50Ms ?? NaN,
            p99Ms: result.p99Ms ?? NaN,
            shares,
            fleetClient: result.fleetClient === true,
            endpoints: result.endpoints,
          };
          samples.set(balancing, [...(samples.get(balancing) ?? []), sample]);
          console.error(
            `run ${run}/${options.runs} fleet ${balancing.padEnd(15)} ${fmt(sample.callsPerSec).padStart(9)} calls/s  p50 ${fmt(sample.p50Ms, 3)} ms  p99 ${fmt(sample.p99Ms, 3)} ms  shares ` +
              daemons.map((d) => `${label(d.name)} ${fmt((shares[d.name] ?? NaN) * 100, 1)}%`).join(', '),
          );
        } catch (err) {
          failures.push(`run ${run} fleet ${balancing}: ${describe(err)}`);
          console.error(`bench: run ${run} fleet ${balancing} failed: ${describe(err)}`);
        } finally {
          await client?.stop();
        }
      }
    }
  } finally {
    await Promise.all(daemons.map((d) => d.server.stop()));
  }

  const fleetClient = [...samples.values()].flat().some((s) => s.fleetClient);
  const summary = new Map<FleetBalancing, { callsPerSec: number; p50Ms: number; p99Ms: number; shares: Record<string, number>; runs: number }>();
  for (const [balancing, list] of samples) {
    summary.set(balancing, {
      callsPerSec: median(list.map((s) => s.callsPerSec)),
      p50Ms: median(list.map((s) => s.p50Ms)),
      p99Ms: median(list.map((s) => s.p99Ms)),
      shares: Object.fromEntries(names.map((name) => [name, median(list.map((s) => s.shares[name] ?? NaN))])),
      runs: list.length,
    });
  }
  const lines = [
    `Fleet: ${FLEET_DAEMONS} erps daemons (each its own process, mutual TLS on 127.0.0.1), the last one slowed by ${options.slowMs} ms per call, ${options.slowConcurrency || 'any number of'} calls at a time; ` +
      `one ErpsClient (own process) over all of them, ${FLEET_INFLIGHT} calls in flight; medians of ${options.runs} run(s) of ${options.durationS} s each ` +
      `(after ${fmt(warmupMs / 1000, 1)} s warm-up). Shares count every echo call of a run, warm-up included.`,
  ];
  if (!fleetClient) {
    lines.push(
      '',
      "Note: this build's ErpsClient has no fleet support yet (issue 13: no `endpoints()`); `endpoints` and `balancing` are ignored and " +
        'every call goes to the first endpoint, given as host/port.',
    );
  }
  lines.push('', `| balancing | calls/s | p50 ms | p99 ms | ${names.map((n) => `${label(n)} share`).join(' | ')} |`, `|---|---:|---:|---:|${names.map(() => '---:').join('|')}|`);
  for (const balancing of FLEET_BALANCINGS) {
    const m = summary.get(balancing);
    if (m === undefined) {
      lines.push(`| ${balancing} | failed | | | ${names.map(() => '').join(' | ')} |`);
      continue;
    }
    lines.push(`| ${balancing} | ${fmt(m.callsPerSec)} | ${fmt(m.p50Ms, 3)} | ${fmt(m.p99Ms, 3)} | ${names.map((n) => `${fmt((m.shares[n] ?? NaN) * 100, 1)} %`).join(' | ')} |`);
  }
  if (failures.length > 0) lines.push('', 'Failures:', ...failures.map((f) => `- ${f}`));
  console.log(lines.join('\n'));

  const round = (v: number, digits = 0): number | null => (Number.isFinite(v) ? Number(v.toFixed(digits)) : null);
  const rr = summary.get('round-robin');
  const lif = summary.get('least-in-flight');
  console.log(
    JSON.stringify({
      bench: 'nestjs-erps',
      mode: 'fleet',
      durationS: options.durationS,
      runs: options.runs,
      daemons: FLEET_DAEMONS,
      inflight: FLEET_INFLIGHT,
      slowMs: options.slowMs,
      slowConcurrency: options.slowConcurrency,
      slowDaemon: slowName,
      fleetClient,
      balancing: Object.fromEntries(
        [...summary].map(([balancing, m]) => [
          balancing,
          {
            callsPerSec: round(m.callsPerSec),
            p50Ms: round(m.p50Ms, 3),
            p99Ms: round(m.p99Ms, 3),
            shares: Object.fromEntries(Object.entries(m.shares).map(([name, share]) => [name, round(share, 4)])),
            runs: m.runs,
          },
        ]),
      ),
      ratios: {
        leastInFlight_over_roundRobin_p99: rr && lif && rr.p99Ms > 0 ? round(lif.p99Ms / rr.p99Ms, 3) : null,
        leastInFlight_over_roundRobin_callsPerSec: rr && lif && rr.callsPerSec > 0 ? round(lif.callsPerSec / rr.callsPerSec, 3) : null,
      },
      targets: { leastInFlight_over_roundRobin_p99: '<1' },
      endpoints: Object.fromEntries([...samples].map(([balancing, list]) => [balancing, list[list.length - 1]?.endpoints ?? null])),
      failures,
    }),
  );
  if (failures.length > 0) process.exitCode = 1;
}

// ---- scale ----------------------------------------------------------------------------------------

interface ScaleSample {
  callsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  serverCpuUsPerCall: number;
  clientCpuUsPerCall: number;
  /** Each worker's share of the echo calls of the sample (warm-up included), in worker order. */
  shares: number[];
}

/**
 * Issue 16's multi-core mode: the server under node:cluster with each of --workers workers (one port, the primary
 * hands connections to the workers in turn), one client process with --connections connections, echo calls of the
 * ~64-byte object with each of --inflight in flight. Fresh server per (run, system, workers), fresh client per
 * in-flight count; the cluster sizes alternate their order from run to run. Server CPU is every process of the
 * cluster (workers and primary).
 */
async function scale(options: Options, env: Env): Promise<void> {
  const durationMs = options.durationS * 1000;
  const warmupMs = Math.max(300, Math.min(2000, durationMs / 3));
  const nproc = availableParallelism();
  const key = (system: SystemName, workers: number, inflight: number): string => `${system}/${workers}/${inflight}`;
  const samples = new Map<string, ScaleSample[]>();
  const failures: string[] = [];
  for (let run = 1; run <= options.runs; run++) {
    const order = run % 2 === 1 ? [...options.workers] : [...options.workers].reverse();
    for (const system of options.systems) {
      for (const workers of order) {
        let server: ServerChild | undefined;
        try {
          const started = await startServer(env, system, [], { workers }, `${system} cluster of ${workers}`);
          server = started.server;
          for (const inflight of options.inflight) {
            let client: ClientChild | undefined;
            try {
              client = await startClient(env, system, started.port, [], [], { connections: options.connections });
              const before = await serverStats(server);
              const reply = await client.request({ cmd: 'workload', workload: 'echo100', durationMs, warmupMs, inflight }, durationMs + warmupMs + 90_000);
              if (reply.type !== 'reply' || reply.result === undefined) throw new Error('no result');
              const result = reply.result as WorkloadResult;
              const after = await serverStats(server);
              const handled = (after.workers ?? []).map((w, i) => w.echoCalls - (before.workers?.[i]?.echoCalls ?? 0));
              const total = handled.reduce((a, b) => a + b, 0);
              const sample: ScaleSample = {
                callsPerSec: result.callsPerSec,
                p50Ms: result.p50Ms ?? NaN,
                p99Ms: result.p99Ms ?? NaN,
                serverCpuUsPerCall: cpuUsPerCall(after.cpuUserUs - before.cpuUserUs, after.cpuSystemUs - before.cpuSystemUs, result.totalCalls),
                clientCpuUsPerCall: cpuUsPerCall(result.cpuUserUs, result.cpuSystemUs, result.totalCalls),
                shares: handled.map((h) => (total > 0 ? h / total : NaN)),
              };
              samples.set(key(system, workers, inflight), [...(samples.get(key(system, workers, inflight)) ?? []), sample]);
              console.error(
                `run ${run}/${options.runs} ${system.padEnd(9)} ${workers} worker(s) ${String(inflight).padStart(4)} in flight ${fmt(sample.callsPerSec).padStart(9)} calls/s` +
                  `  p50 ${fmt(sample.p50Ms, 3)} ms  p99 ${fmt(sample.p99Ms, 3)} ms  server CPU ${fmt(sample.serverCpuUsPerCall, 2)} µs/call  client CPU ${fmt(sample.clientCpuUsPerCall, 2)} µs/call` +
                  `  shares ${sample.shares.map((x) => `${fmt(x * 100, 1)}%`).join('/')}`,
              );
            } catch (err) {
              failures.push(`run ${run} ${system} ${workers} worker(s) ${inflight} in flight: ${describe(err)}`);
              console.error(`bench: run ${run} ${system} ${workers} worker(s) ${inflight} in flight failed: ${describe(err)}`);
            } finally {
              await client?.stop();
            }
          }
        } catch (err) {
          failures.push(`run ${run} ${system} ${workers} worker(s): ${describe(err)}`);
          console.error(`bench: run ${run} ${system} ${workers} worker(s) failed: ${describe(err)}`);
        } finally {
          await server?.stop();
        }
      }
    }
  }

  type Summary = Omit<ScaleSample, 'shares'> & { shares: number[]; runs: number };
  const summary = new Map<string, Summary>();
  for (const [k, list] of samples) {
    const width = Math.max(...list.map((s) => s.shares.length));
    summary.set(k, {
      callsPerSec: median(list.map((s) => s.callsPerSec)),
      p50Ms: median(list.map((s) => s.p50Ms)),
      p99Ms: median(list.map((s) => s.p99Ms)),
      serverCpuUsPerCall: median(list.map((s) => s.serverCpuUsPerCall)),
      clientCpuUsPerCall: median(list.map((s) => s.clientCpuUsPerCall)),
      shares: Array.from({ length: width }, (_, i) => median(list.map((s) => s.shares[i] ?? NaN))),
      runs: list.length,
    });
  }
  const fewest = Math.min(...options.workers);
  const most = Math.max(...options.workers);
  const lines = [
    `Scale: the server under node:cluster (workers share one port), on a machine with **${nproc} CPU(s)** (${cpus()[0]?.model ?? '?'}) that the load generator shares with the workers; ` +
      `one client process with ${options.connections} connections (erps: connectionsPerEndpoint ${options.connections}; nest-tcp: ${options.connections} ClientProxy instances, calls in turn), ` +
      `echo calls of the ~64-byte object; mutual TLS on 127.0.0.1; medians of ${options.runs} run(s) of ${options.durationS} s each (after ${fmt(warmupMs / 1000, 1)} s warm-up). ` +
      'Server CPU is the sum over the workers and the primary; worker shares count every echo call of a sample, warm-up included.',
    '',
    '| system | workers | in flight | calls/s | p50 ms | p99 ms | server CPU µs/call | client CPU µs/call | calls per worker |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const system of options.systems) {
    for (const workers of [...options.workers].sort((a, b) => a - b)) {
      for (const inflight of options.inflight) {
        const m = summary.get(key(system, workers, inflight));
        if (m === undefined) {
          lines.push(`| ${system} | ${workers} | ${inflight} | failed | | | | | |`);
          continue;
        }
        lines.push(
          `| ${system} | ${workers} | ${inflight} | ${fmt(m.callsPerSec)} | ${fmt(m.p50Ms, 3)} | ${fmt(m.p99Ms, 3)} | ${fmt(m.serverCpuUsPerCall, 2)} | ${fmt(m.clientCpuUsPerCall, 2)} | ` +
            `${m.shares.map((x) => `${fmt(x * 100, 1)} %`).join(' / ')} |`,
        );
      }
    }
  }
  const ratio = (a: number | undefined, b: number | undefined): number | null =>
    a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? null : Number((a / b).toFixed(3));
  const camel = (system: SystemName): string => system.replace(/-(\w)/g, (_, c: string) => c.toUpperCase());
  const workersKey = (n: number): string => (n === 1 ? '1worker' : `${n}workers`);
  const ratios: Record<string, number | null> = {};
  if (most !== fewest) {
    lines.push('', `| system | in flight | calls/s, ${most} workers / ${fewest} | server CPU per call, ${most} workers / ${fewest} |`, '|---|---:|---:|---:|');
    for (const system of options.systems) {
      for (const inflight of options.inflight) {
        const a = summary.get(key(system, most, inflight));
        const b = summary.get(key(system, fewest, inflight));
        const calls = ratio(a?.callsPerSec, b?.callsPerSec);
        const cpu = ratio(a?.serverCpuUsPerCall, b?.serverCpuUsPerCall);
        ratios[`${camel(system)}_${workersKey(most)}_over_${workersKey(fewest)}_callsPerSec_inflight${inflight}`] = calls;
        ratios[`${camel(system)}_${workersKey(most)}_over_${workersKey(fewest)}_serverCpuPerCall_inflight${inflight}`] = cpu;
        lines.push(`| ${system} | ${inflight} | ${fmt(calls ?? NaN, 2)} | ${fmt(cpu ?? NaN, 2)} |`);
      }
    }
    for (const inflight of options.systems.includes('erps') && options.systems.includes('nest-tcp') ? options.inflight : []) {
      for (const workers of options.workers) {
        ratios[`erps_over_nestTcp_callsPerSec_${workersKey(workers)}_inflight${inflight}`] = ratio(
          summary.get(key('erps', workers, inflight))?.callsPerSec,
          summary.get(key('nest-tcp', workers, inflight))?.callsPerSec,
        );
      }
    }
  }
  if (failures.length > 0) lines.push('', 'Failures:', ...failures.map((f) => `- ${f}`));
  console.log(lines.join('\n'));

  const round = (v: number, digits = 0): number | null => (Number.isFinite(v) ? Number(v.toFixed(digits)) : null);
  console.log(
    JSON.stringify({
      bench: 'nestjs-erps',
      mode: 'scale',
      nproc,
      durationS: options.durationS,
      runs: options.runs,
      connections: options.connections,
      workers: options.workers,
      inflight: options.inflight,
      results: Object.fromEntries(
        options.systems.map((system) => [
          system,
          Object.fromEntries(
            options.workers.map((workers) => [
              String(workers),
              Object.fromEntries(
                options.inflight.map((inflight) => {
                  const m = summary.get(key(system, workers, inflight));
                  return [
                    String(inflight),
                    m === undefined
                      ? null
                      : {
                          callsPerSec: round(m.callsPerSec),
                          p50Ms: round(m.p50Ms, 3),
                          p99Ms: round(m.p99Ms, 3),
                          serverCpuUsPerCall: round(m.serverCpuUsPerCall, 2),
                          clientCpuUsPerCall: round(m.clientCpuUsPerCall, 2),
                          workerShares: m.shares.map((x) => round(x, 4)),
                          runs: m.runs,
                        },
                  ];
                }),
              ),
            ]),
          ),
        ]),
      ),
      ratios,
      failures,
    }),
  );
  if (failures.length > 0) process.exitCode = 1;
}

// ---- main -----------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  if (!existsSync(join(BENCH_MODULES, '@grpc', 'grpc-js'))) {
    console.error(`bench: the benchmark's own dependencies are not installed: npm ci --prefix bench (npm run bench does it)`);
    process.exit(2);
  }
  // Watchdog: whatever happens, the benchmark ends.
  const perSystem = options.workloads.reduce((total, workload) => total + options.durationS + 10 + (workload === 'broadcast' ? 20 : 0), 10);
  const budgetS =
    options.mode === 'compare'
      ? options.runs * options.systems.length * perSystem * 2 + 120
      : options.mode === 'soak'
        ? Math.max(900, options.calls / 1000)
        : options.mode === 'fleet'
          ? (options.runs + 1) * FLEET_BALANCINGS.length * (options.durationS * 2 + 30) + 120
          : options.mode === 'scale'
            ? options.runs * options.systems.length * options.workers.length * (options.inflight.length * (options.durationS + 15) + 15) * 2 + 120
            : 600;
  setTimeout(() => {
    console.error(`bench: watchdog: still running after ${budgetS} s, giving up`);
    cleanup();
    process.exit(3);
  }, budgetS * 1000).unref();

  workDir = mkdtempSync(join(tmpdir(), 'erps-bench-'));
  const certs = await generateDevCertificates({ dir: join(workDir, 'certs') });
  const env: Env = { dir: workDir, serverTls: certs.server, clientTls: certs.clients.alice };
  console.error(`bench: node ${process.version}, ${cpus().length} CPU(s) (${cpus()[0]?.model ?? '?'}), mode ${options.mode}`);
  if (options.mode === 'compare') await compare(options, env);
  else if (options.mode === 'idle') await idle(options, env);
  else if (options.mode === 'fleet') await fleet(options, env);
  else if (options.mode === 'scale') await scale(options, env);
  else await soak(options, env);
}

main().then(
  () => {
    cleanup();
    process.exit();
  },
  (err: unknown) => {
    console.error(`bench: ${describe(err)}`);
    cleanup();
    process.exit(1);
  },
);
