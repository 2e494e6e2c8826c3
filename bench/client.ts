/**
 * The load generator for one system, in its own process (forked by bench/main.ts). argv[2] is a JSON
 * ClientArgs. Connects, tells the parent { type: 'ready' }, then runs what it is asked over IPC.
 */
import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { ClientProxy, ClientProxyFactory, Transport } from '@nestjs/microservices';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { lastValueFrom, Observable, Subscription } from 'rxjs';
import { ErpsClient, ErpsClientOptions } from 'nestjs-erps';
import {
  BROADCAST_CLIENTS,
  BROADCAST_PATTERN,
  BroadcastCounts,
  ClientArgs,
  ClientMessage,
  ClientRequest,
  describe,
  IdleResult,
  MIB,
  percentile,
  PROTO_LOADER_OPTIONS,
  smallObject,
  SoakResult,
  STREAM_VALUES,
  STREAMS_IN_FLIGHT,
  WORKLOAD_SPECS,
  WorkloadName,
  WorkloadResult,
  withTimeout,
  writeProto,
} from './common.js';
import { frame, RAW_CALL, RAW_CALL_MSGPACK, RAW_CAST, RAW_CAST_MSGPACK, RAW_COUNT, RAW_RUN, RAW_STREAM, RAW_SUBSCRIBE, rawMsgpack, RawClient, unpackBody } from './raw.js';
import { enableOtel } from './otel-setup.js';

type PayloadKind = 'small' | 'mib';

/** What every system offers the load loops. */
interface Driver {
  connect(): Promise<void>;
  /** One echo call; resolves with the reply. */
  echo(kind: PayloadKind): Promise<unknown>;
  /** Checks a reply is the payload it should echo. */
  check(kind: PayloadKind, reply: unknown): boolean;
  /** Sends one-way casts for `durationMs`; resolves once the server acknowledged every one. */
  castFor(durationMs: number): Promise<{ sent: number; elapsedMs: number }>;
  /** `stream`: one call answered with `count` values; resolves with how many arrived. */
  stream(count: number): Promise<number>;
  /**
   * `broadcast`: opens `clients` - 1 more connections and makes each connection, this driver's own included, a
   * subscriber that calls `onMessage` for each message the server broadcasts. Done before 'ready', outside the
   * measured span.
   */
  subscribe(clients: number, onMessage: () => void): Promise<void>;
  /** `broadcast`: one round on the server (asked over this driver's own connection); resolves when the server is done. */
  runBroadcast(durationMs: number, subscribers: number): Promise<RoundResult>;
  close(): Promise<void>;
}

/** What the server says of one broadcast round. */
interface RoundResult {
  sent: number;
  waits: number;
  skipped: number;
}

/** Counts the values of a (streamed) reply; resolves with the count once it completes. */
function countValues(source: Observable<unknown>): Promise<number> {
  return new Promise((resolve, reject) => {
    let n = 0;
    source.subscribe({ next: () => void n++, error: reject, complete: () => resolve(n) });
  });
}

const CAST_BATCH = 512;

/**
 * Generic cast loop for transports where a call after casts on the same connection is answered after those
 * casts were handled: casts in batches, one echo call as a barrier after each batch, at most two barriers
 * in flight (bounded memory, pipeline kept full). At the end, polls the server's count.
 */
async function castWithBarriers(cast: () => void, barrier: () => Promise<unknown>, count: () => Promise<number>, durationMs: number): Promise<{ sent: number; elapsedMs: number }> {
  const before = await count();
  const t0 = performance.now();
  const deadline = t0 + durationMs;
  let sent = 0;
  const barriers: Promise<unknown>[] = [];
  while (performance.now() < deadline) {
    for (let i = 0; i < CAST_BATCH; i++) cast();
    sent += CAST_BATCH;
    barriers.push(barrier());
    if (barriers.length > 2) await barriers.shift();
  }
  await Promise.all(barriers);
  const expected = before + sent;
  const ackDeadline = performance.now() + 30_000;
  // Bounded: 30 s of polling at most.
  while ((await count()) < expected) {
    if (performance.now() > ackDeadline) throw new Error(`server acknowledged fewer casts than ${sent}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  return { sent, elapsedMs: performance.now() - t0 };
}

/** Whether this build's ErpsClient has issue 13's fleet options (its `endpoints()` method says so). */
const FLEET_CLIENT = typeof (ErpsClient.prototype as unknown as { endpoints?: unknown }).endpoints === 'function';

/**
 * The erps client's options. `--mode fleet` passes issue 13's `endpoints` and `balancing`. A client without them
 * (before issue 13 lands) would refuse options without a port, so it is given the first endpoint as host/port as
 * well: it runs, with every call on that endpoint.
 */
function erpsClientOptions(args: ClientArgs): ErpsClientOptions {
  const common: ErpsClientOptions = { tls: args.tls, identifier: 'bench', version: '1.0.0', timeoutMs: 30_000 };
  if (args.fleet === undefined) return { ...common, host: '127.0.0.1', port: args.port };
  const first = args.fleet.endpoints[0];
  const fleet: unknown = {
    ...common,
    endpoints: args.fleet.endpoints,
    balancing: args.fleet.balancing,
    ...(FLEET_CLIENT || first === undefined ? {} : { host: first.host, port: first.port }),
  };
  return fleet as ErpsClientOptions;
}

/** `client.endpoints()` where the client has it (issue 13). */
function endpointsOf(client: ErpsClient): unknown[] | undefined {
  return FLEET_CLIENT ? (client as unknown as { endpoints(): unknown[] }).endpoints() : undefined;
}

function erpsDriver(args: ClientArgs): Driver & { client: ErpsClient } {
  const options: ErpsClientOptions = { ...erpsClientOptions(args), ...(args.connections === undefined ? {} : { connectionsPerEndpoint: args.connections }) };
  const client = new ErpsClient(options);
  const small = smallObject();
  const mib = Buffer.alloc(MIB, 7);
  const subscribers: ErpsClient[] = [];
  const subscriptions: Subscription[] = [];
  return {
    client,
    connect: () => client.connect(),
    echo: (kind) => lastValueFrom(client.send('echo', kind === 'small' ? small : mib)),
    check: (kind, reply) => (kind === 'small' ? (reply as typeof small).name === small.name : Buffer.isBuffer(reply) && reply.length === MIB),
    castFor: (durationMs) =>
      castWithBarriers(
        () => void client.emit('cast', small),
        () => lastValueFrom(client.send('echo', small)),
        () => lastValueFrom(client.send<number>('casts', 0)),
        durationMs,
      ),
    stream: (count) => countValues(client.send('stream', count)),
    subscribe: async (clients, onMessage) => {
      subscriptions.push(client.pushes(BROADCAST_PATTERN).subscribe(onMessage));
      for (let i = 1; i < clients; i++) {
        const subscriber = new ErpsClient(options);
        subscribers.push(subscriber);
        subscriptions.push(subscriber.pushes(BROADCAST_PATTERN).subscribe(onMessage));
      }
      await Promise.all(subscribers.map((subscriber) => subscriber.connect()));
    },
    runBroadcast: (durationMs, count) => lastValueFrom(client.send<RoundResult>('broadcast-run', { durationMs, subscribers: count }, { timeoutMs: durationMs + 60_000 })),
    close: async () => {
      for (const subscription of subscriptions) subscription.unsubscribe();
      await Promise.all([client, ...subscribers].map((c) => c.close()));
    },
  };
}

function nestTcpDriver(args: ClientArgs): Driver {
  const tlsOptions = { ca: readFileSync(args.tls.caFile), cert: readFileSync(args.tls.certFile), key: readFileSync(args.tls.keyFile) };
  const create = (): ClientProxy => ClientProxyFactory.create({ transport: Transport.TCP, options: { host: '127.0.0.1', port: args.port, tlsOptions } });
  const client = create();
  const small = smallObject();
  // Nest TCP reports "connected" before the TLS handshake: one call proves the link.
  const open = async (proxy: ClientProxy): Promise<void> => {
    await proxy.connect();
    await lastValueFrom(proxy.send('echo', small));
  };
  // `--mode scale`: one connection per ClientProxy, so that many proxies, the calls spread over them in turn.
  const proxies = [client, ...Array.from({ length: Math.max(0, (args.connections ?? 1) - 1) }, create)];
  let next = 0;
  const pick = (): ClientProxy => (proxies.length === 1 ? client : proxies[next++ % proxies.length]!);
  const subscribers: ClientProxy[] = [];
  const subscriptions: Subscription[] = [];
  // Nest TCP is JSON only (a Buffer would travel as { type, data: [...] }): 1 MiB of ASCII text instead.
  const mib = { blob: 'x'.repeat(MIB) };
  return {
    connect: async () => {
      await Promise.all(proxies.map(open));
    },
    echo: (kind) => lastValueFrom(pick().send('echo', kind === 'small' ? small : mib)),
    check: (kind, reply) => (kind === 'small' ? (reply as typeof small).name === small.name : (reply as typeof mib).blob?.length === MIB),
    castFor: (durationMs) =>
      castWithBarriers(
        () => void client.emit('cast', small),
        () => lastValueFrom(client.send('echo', small)),
        () => lastValueFrom(client.send<number>('casts', 0)),
        durationMs,
      ),
    stream: (count) => countValues(client.send('stream', count)),
    subscribe: async (clients, onMessage) => {
      for (let i = 1; i < clients; i++) subscribers.push(create());
      await Promise.all(subscribers.map(open));
      // One streamed call per client, open until the client closes: its values are the broadcast.
      for (const proxy of [client, ...subscribers]) subscriptions.push(proxy.send('subscribe', 0).subscribe({ next: onMessage, error: () => undefined }));
    },
    runBroadcast: (durationMs, count) => lastValueFrom(client.send<RoundResult>('broadcast-run', { durationMs, subscribers: count })),
    close: async () => {
      for (const subscription of subscriptions) subscription.unsubscribe();
      // ClientProxy.close() is typed `any`.
      for (const proxy of [...proxies, ...subscribers]) await proxy.close();
    },
  };
}

interface GrpcItem {
  id?: number;
  name?: string;
  tags?: string[];
  ok?: boolean;
  n?: number;
  blob?: Buffer;
}
type BenchClient = grpc.Client & {
  Echo(item: GrpcItem, callback: (err: grpc.ServiceError | null, reply?: GrpcItem) => void): grpc.ClientUnaryCall;
  Cast(callback: (err: grpc.ServiceError | null, reply?: { count: number }) => void): grpc.ClientWritableStream<GrpcItem>;
  Stream(item: GrpcItem): grpc.ClientReadableStream<GrpcItem>;
  Subscribe(item: GrpcItem): grpc.ClientReadableStream<GrpcItem>;
  Broadcast(run: { durationMs: number; subscribers: number }, callback: (err: grpc.ServiceError | null, reply?: { sent?: number; waits?: number }) => void): grpc.ClientUnaryCall;
};

/** Raw @grpc/grpc-js client (not ClientGrpc) against Nest's gRPC server. */
function grpcDriver(args: ClientArgs): Driver {
  const definition = protoLoader.loadSync(writeProto(args.workDir), PROTO_LOADER_OPTIONS);
  const loaded = grpc.loadPackageDefinition(definition) as unknown as { bench: { Bench: new (address: string, credentials: grpc.ChannelCredentials, options?: object) => BenchClient } };
  const credentials = grpc.credentials.createSsl(readFileSync(args.tls.caFile), readFileSync(args.tls.keyFile), readFileSync(args.tls.certFile));
  const channelOptions = {
    'grpc.max_receive_message_length': 8 * MIB,
    'grpc.max_send_message_length': 8 * MIB,
    // The dev server certificate names localhost (and 127.0.0.1); SNI with an IP address is deprecated in Node.
    'grpc.ssl_target_name_override': 'localhost',
  };
  const client = new loaded.bench.Bench(`127.0.0.1:${args.port}`, credentials, channelOptions);
  const ready = (c: BenchClient): Promise<void> => new Promise<void>((resolve, reject) => c.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve())));
  const subscribers: BenchClient[] = [];
  const calls: grpc.ClientReadableStream<GrpcItem>[] = [];
  const small: GrpcItem = smallObject();
  const mib: GrpcItem = { blob: Buffer.alloc(MIB, 7) };
  const echo = (item: GrpcItem): Promise<GrpcItem> => new Promise((resolve, reject) => client.Echo(item, (err, reply) => (err ? reject(err) : resolve(reply ?? {}))));
  return {
    connect: async () => {
      await ready(client);
      await echo(small);
    },
    echo: (kind) => echo(kind === 'small' ? small : mib),
    check: (kind, reply) => (kind === 'small' ? (reply as GrpcItem).name === small.name : (reply as GrpcItem).blob?.length === MIB),
    castFor: async (durationMs) => {
      const t0 = performance.now();
      const deadline = t0 + durationMs;
      let sent = 0;
      let done!: (count: number) => void;
      let fail!: (err: Error) => void;
      const acknowledged = new Promise<number>((resolve, reject) => {
        done = resolve;
        fail = reject;
      });
      const stream = client.Cast((err, reply) => (err ? fail(err) : done(Number(reply?.count ?? 0))));
      while (performance.now() < deadline) {
        let more = true;
        for (let i = 0; i < CAST_BATCH && more; i++) {
          more = stream.write(small);
          sent++;
        }
        if (!more) await new Promise((resolve) => stream.once('drain', resolve));
        else await new Promise((resolve) => setImmediate(resolve));
      }
      stream.end();
      const count = await withTimeout(acknowledged, 30_000, 'gRPC cast acknowledgement');
      if (count !== sent) throw new Error(`gRPC server acknowledged ${count} of ${sent} casts`);
      return { sent, elapsedMs: performance.now() - t0 };
    },
    stream: (count) =>
      new Promise((resolve, reject) => {
        let n = 0;
        const call = client.Stream({ id: count });
        call.on('data', () => void n++);
        call.on('error', reject);
        call.on('end', () => resolve(n));
      }),
    subscribe: async (clients, onMessage) => {
      // grpc-js shares one connection among clients of the same target and options (the global subchannel pool):
      // a local pool per client gives each its own connection, as every other system has.
      for (let i = 1; i < clients; i++) subscribers.push(new loaded.bench.Bench(`127.0.0.1:${args.port}`, credentials, { ...channelOptions, 'grpc.use_local_subchannel_pool': 1 }));
      await Promise.all(subscribers.map(ready));
      for (const c of [client, ...subscribers]) {
        const call = c.Subscribe({});
        call.on('data', onMessage);
        call.on('error', () => undefined);
        calls.push(call);
      }
    },
    runBroadcast: (durationMs, count) =>
      new Promise((resolve, reject) =>
        client.Broadcast({ durationMs, subscribers: count }, (err, reply) =>
          err ? reject(err) : resolve({ sent: Number(reply?.sent ?? 0), waits: Number(reply?.waits ?? 0), skipped: 0 }),
        ),
      ),
    close: async () => {
      for (const call of calls) call.cancel();
      for (const c of [client, ...subscribers]) c.close();
    },
  };
}

/**
 * `raw` (the floor), or with `msgpack` the `raw-msgpack` system: a small echo or cast then packs the object with
 * msgpackr at every send, as erps does, and an echo's reply is unpacked. 1 MiB echoes, streams and broadcasts stay
 * the raw system's (erps carries a Buffer uncoded too); main.ts runs raw-msgpack for echo1, echo100 and cast only.
 */
function rawDriver(args: ClientArgs, msgpack = false): Driver {
  const tlsFiles = { ca: readFileSync(args.tls.caFile), cert: readFileSync(args.tls.certFile), key: readFileSync(args.tls.keyFile) };
  const client = new RawClient({ host: '127.0.0.1', port: args.port, ...tlsFiles });
  const smallBody = Buffer.from(JSON.stringify(smallObject()));
  const small = frame(RAW_CALL, smallBody);
  const mib = frame(RAW_CALL, Buffer.alloc(MIB, 7));
  const cast = frame(RAW_CAST, smallBody);
  const countFrame = frame(RAW_COUNT, Buffer.alloc(0));
  const count = async (): Promise<number> => (await client.request(countFrame)).readDoubleBE(5);
  const subscribeFrame = frame(RAW_SUBSCRIBE, Buffer.alloc(0));
  const subscribers: RawClient[] = [];
  const u32s = (...values: number[]): Buffer => {
    const body = Buffer.allocUnsafe(4 * values.length);
    values.forEach((v, i) => body.writeUInt32BE(v, 4 * i));
    return body;
  };
  const calls = msgpack
    ? msgpackCalls(client, mib)
    : {
        echo: (kind: PayloadKind): Promise<unknown> => client.request(kind === 'small' ? small : mib),
        check: (kind: PayloadKind, reply: unknown): boolean => Buffer.isBuffer(reply) && reply.length === (kind === 'small' ? small.length : mib.length),
        cast: (): void => client.write(cast),
        barrier: (): Promise<unknown> => client.request(small),
      };
  return {
    connect: async () => {
      await client.connect();
      await client.request(small);
    },
    echo: calls.echo,
    check: calls.check,
    castFor: (durationMs) => castWithBarriers(calls.cast, calls.barrier, count, durationMs),
    stream: (n) => client.stream(frame(RAW_STREAM, u32s(n))),
    subscribe: async (clients, onMessage) => {
      for (let i = 1; i < clients; i++) subscribers.push(new RawClient({ host: '127.0.0.1', port: args.port, ca: tlsFiles.ca, cert: tlsFiles.cert, key: tlsFiles.key }));
      await Promise.all(subscribers.map((c) => c.connect()));
      for (const c of [client, ...subscribers]) {
        c.onPush = onMessage;
        c.write(subscribeFrame);
      }
    },
    runBroadcast: async (durationMs, n) => {
      const reply = await client.request(frame(RAW_RUN, u32s(durationMs, n)));
      return { sent: reply.readDoubleBE(5), waits: reply.readDoubleBE(13), skipped: 0 };
    },
    close: async () => {
      for (const c of [client, ...subscribers]) c.close();
    },
  };
}

/** raw-msgpack's small echoes and casts: the object packed at every send, an echo's reply unpacked. */
function msgpackCalls(client: RawClient, mib: Buffer): Pick<Driver, 'echo' | 'check'> & { cast(): void; barrier(): Promise<unknown> } {
  const codec = rawMsgpack();
  const object = smallObject();
  const call = (): Promise<unknown> => client.request(frame(RAW_CALL_MSGPACK, codec.pack(object))).then((reply) => unpackBody(codec, reply));
  return {
    echo: (kind) => (kind === 'small' ? call() : client.request(mib)),
    check: (kind, reply) => (kind === 'small' ? (reply as { id?: unknown } | undefined)?.id === object.id : Buffer.isBuffer(reply) && reply.length === mib.length),
    cast: () => client.write(frame(RAW_CAST_MSGPACK, codec.pack(object))),
    barrier: call,
  };
}

// ---- load loops -----------------------------------------------------------------------------------

const LATENCY_CAPACITY = 4_000_000;
const latencies = new Float64Array(LATENCY_CAPACITY);

async function runEchoes(driver: Driver, kind: PayloadKind, inflight: number, durationMs: number): Promise<{ calls: number; elapsedMs: number; p50: number; p99: number }> {
  let recorded = 0;
  let calls = 0;
  const t0 = performance.now();
  const deadline = t0 + durationMs;
  const worker = async (): Promise<void> => {
    // Bounded by the deadline.
    while (performance.now() < deadline) {
      const start = performance.now();
      await driver.echo(kind);
      const end = performance.now();
      if (recorded < LATENCY_CAPACITY) latencies[recorded++] = end - start;
      calls++;
    }
  };
  await Promise.all(Array.from({ length: inflight }, worker));
  const elapsedMs = performance.now() - t0;
  const sorted = latencies.subarray(0, recorded).sort();
  return { calls, elapsedMs, p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
}

async function runWorkload(driver: Driver, workload: WorkloadName, durationMs: number, warmupMs: number, inflight?: number): Promise<WorkloadResult> {
  const cpuStart = process.cpuUsage();
  const result =
    workload === 'cast'
      ? await runCasts(driver, durationMs, warmupMs)
      : workload === 'stream'
        ? await runStreamWorkload(driver, durationMs, warmupMs)
        : workload === 'broadcast'
          ? await runBroadcastWorkload(driver, durationMs, warmupMs)
          : await runEchoWorkload(driver, workload, durationMs, warmupMs, inflight);
  const cpu = process.cpuUsage(cpuStart);
  return { workload, ...result, cpuUserUs: cpu.user, cpuSystemUs: cpu.system };
}

type MeasuredResult = Omit<WorkloadResult, 'workload' | 'cpuUserUs' | 'cpuSystemUs'>;

async function runCasts(driver: Driver, durationMs: number, warmupMs: number): Promise<MeasuredResult> {
  const warmup = await driver.castFor(warmupMs);
  const { sent, elapsedMs } = await driver.castFor(durationMs);
  // Casts only: the barrier calls (one per CAST_BATCH casts) and the final count polls add CPU on both
  // sides but are not counted; well under 1% of the messages, good enough for CPU per cast.
  return { calls: sent, elapsedMs, callsPerSec: (sent * 1000) / elapsedMs, totalCalls: warmup.sent + sent };
}

async function runEchoWorkload(driver: Driver, workload: 'echo1' | 'echo100' | 'mib4', durationMs: number, warmupMs: number, inflightOverride?: number): Promise<MeasuredResult> {
  const spec = WORKLOAD_SPECS[workload];
  const inflight = inflightOverride ?? spec.inflight;
  const probe = await driver.echo(spec.payload);
  if (!driver.check(spec.payload, probe)) throw new Error(`${workload}: the echo reply is not the payload sent`);
  const warmup = await runEchoes(driver, spec.payload, inflight, warmupMs);
  const { calls, elapsedMs, p50, p99 } = await runEchoes(driver, spec.payload, inflight, durationMs);
  const callsPerSec = (calls * 1000) / elapsedMs;
  return {
    calls,
    elapsedMs,
    callsPerSec,
    bytesPerSec: spec.payload === 'mib' ? callsPerSec * MIB * 2 : undefined,
    p50Ms: p50,
    p99Ms: p99,
    totalCalls: 1 + warmup.calls + calls,
  };
}

/** Streams of STREAM_VALUES values, STREAMS_IN_FLIGHT at a time, until `durationMs` have passed; latency is per whole stream. */
async function runStreams(driver: Driver, durationMs: number): Promise<{ streams: number; values: number; elapsedMs: number; p50: number; p99: number }> {
  let recorded = 0;
  let streams = 0;
  let values = 0;
  const t0 = performance.now();
  const deadline = t0 + durationMs;
  const worker = async (): Promise<void> => {
    // Bounded by the deadline (a stream started before it runs to its end).
    while (performance.now() < deadline) {
      const start = performance.now();
      const n = await driver.stream(STREAM_VALUES);
      if (n !== STREAM_VALUES) throw new Error(`stream: ${n} values arrived, not ${STREAM_VALUES}`);
      if (recorded < LATENCY_CAPACITY) latencies[recorded++] = performance.now() - start;
      streams++;
      values += n;
    }
  };
  await Promise.all(Array.from({ length: STREAMS_IN_FLIGHT }, worker));
  const elapsedMs = performance.now() - t0;
  const sorted = latencies.subarray(0, recorded).sort();
  return { streams, values, elapsedMs, p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
}

/** `stream`: calls = values; p50/p99 = the time of one whole stream; CPU per value (probe stream and warm-up included). */
async function runStreamWorkload(driver: Driver, durationMs: number, warmupMs: number): Promise<MeasuredResult> {
  const probe = await driver.stream(STREAM_VALUES);
  if (probe !== STREAM_VALUES) throw new Error(`stream: the probe got ${probe} values, not ${STREAM_VALUES}`);
  const warmup = await runStreams(driver, warmupMs);
  const { values, elapsedMs, p50, p99 } = await runStreams(driver, durationMs);
  return { calls: values, elapsedMs, callsPerSec: (values * 1000) / elapsedMs, p50Ms: p50, p99Ms: p99, totalCalls: probe + warmup.values + values };
}

/** Counts the broadcast messages every subscriber of this process received; `until(n)` resolves once the count reaches n. */
const broadcastCounter = {
  received: 0,
  lastAt: 0,
  target: Infinity,
  reached: undefined as (() => void) | undefined,
  onMessage(): void {
    broadcastCounter.received++;
    broadcastCounter.lastAt = performance.now();
    if (broadcastCounter.received >= broadcastCounter.target) broadcastCounter.reached?.();
  },
  until(target: number): Promise<void> {
    if (this.received >= target) return Promise.resolve();
    return new Promise((resolve) => {
      this.target = target;
      this.reached = () => {
        this.target = Infinity;
        this.reached = undefined;
        resolve();
      };
    });
  },
};

/**
 * One broadcast round as the clients see it: asks the server for a round of `durationMs`, learns how many messages
 * it handed to its transport, then waits (30 s at most) until the subscribers together received that many. The
 * span runs from the request to the last message received.
 */
async function broadcastRound(driver: Driver, durationMs: number): Promise<BroadcastCounts & { elapsedMs: number }> {
  const base = broadcastCounter.received;
  const t0 = performance.now();
  const run = await driver.runBroadcast(durationMs, BROADCAST_CLIENTS);
  const all = broadcastCounter.until(base + run.sent);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`broadcast: ${broadcastCounter.received - base} of ${run.sent} messages arrived within 30 s of the round's end`)), 30_000);
  });
  await Promise.race([all, late]).finally(() => clearTimeout(timer));
  const received = broadcastCounter.received - base;
  const elapsedMs = (received > 0 ? broadcastCounter.lastAt : performance.now()) - t0;
  return { clients: BROADCAST_CLIENTS, sent: run.sent, received, skipped: run.skipped, waits: run.waits, elapsedMs };
}

/** `broadcast`: calls = messages received (summed over the clients); CPU per message received (warm-up included). */
async function runBroadcastWorkload(driver: Driver, durationMs: number, warmupMs: number): Promise<MeasuredResult> {
  const warmup = await broadcastRound(driver, warmupMs);
  const round = await broadcastRound(driver, durationMs);
  const { elapsedMs, ...counts } = round;
  return { calls: round.received, elapsedMs, callsPerSec: (round.received * 1000) / elapsedMs, totalCalls: warmup.received + round.received, broadcast: counts };
}

// ---- idle and soak (erps only) --------------------------------------------------------------------

let idleClients: ErpsClient[] = [];

async function runIdle(args: ClientArgs, count: number, batch: number): Promise<IdleResult> {
  const clientRssBeforeBytes = process.memoryUsage().rss;
  const t0 = performance.now();
  for (let i = 0; i < count; i += batch) {
    const group = Array.from(
      { length: Math.min(batch, count - i) },
      () => new ErpsClient({ host: '127.0.0.1', port: args.port, tls: args.tls, identifier: 'bench', version: '1.0.0', connectTimeoutMs: 30_000 }),
    );
    idleClients.push(...group);
    await Promise.all(group.map((client) => client.connect()));
  }
  const connectMs = performance.now() - t0;
  const connected = idleClients.filter((client) => client.currentStatus === 'connected').length;
  return { clients: count, connectMs, clientRssBeforeBytes, clientRssAfterBytes: process.memoryUsage().rss, connected };
}

async function runSoak(driver: Driver & { client: ErpsClient }, total: number, inflight: number, progressEvery: number): Promise<SoakResult> {
  // Touch the latency buffer first, so its pages (8 bytes per call) count in the starting RSS, not as growth.
  latencies.fill(0, 0, Math.min(total, LATENCY_CAPACITY));
  const clientRssStartBytes = process.memoryUsage().rss;
  let issued = 0;
  let answered = 0;
  let errors = 0;
  let recorded = 0;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    // Bounded: stops after `total` calls in all.
    while (issued < total) {
      issued++;
      const start = performance.now();
      try {
        await driver.echo('small');
        answered++;
      } catch {
        errors++;
      }
      if (recorded < LATENCY_CAPACITY) latencies[recorded++] = performance.now() - start;
      const done = answered + errors;
      if (done % progressEvery === 0) send({ type: 'progress', done, clientRssBytes: process.memoryUsage().rss });
    }
  };
  await Promise.all(Array.from({ length: inflight }, worker));
  const elapsedMs = performance.now() - t0;
  const sorted = latencies.subarray(0, recorded).sort();
  return {
    calls: total,
    answered,
    errors,
    elapsedMs,
    callsPerSec: (answered * 1000) / elapsedMs,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    clientRssStartBytes,
    clientRssEndBytes: process.memoryUsage().rss,
    clientStatus: driver.client.currentStatus,
    privateInFlight: driver.client.stats().inFlight,
  };
}

// ---- process plumbing -----------------------------------------------------------------------------

/** To the parent, while it is there (a reply finishing after the parent went away is dropped, not thrown). */
function send(message: ClientMessage): void {
  if (process.connected) process.send?.(message);
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as ClientArgs;
  const idleOnly = process.argv[3] === 'idle';
  let driver: (Driver & { client?: ErpsClient }) | undefined;
  if (!idleOnly) {
    switch (args.system) {
      case 'erps':
        driver = erpsDriver(args);
        break;
      case 'erps-otel':
        enableOtel();
        driver = erpsDriver(args);
        break;
      case 'nest-tcp':
        driver = nestTcpDriver(args);
        break;
      case 'nest-grpc':
        driver = grpcDriver(args);
        break;
      case 'raw':
        driver = rawDriver(args);
        break;
      case 'raw-msgpack':
        driver = rawDriver(args, true);
        break;
      default:
        throw new Error(`unknown system ${String(args.system)}`);
    }
    await withTimeout(driver.connect(), 15_000, `${args.system} client connect`);
    if ((args.broadcastClients ?? 0) > 0) {
      await withTimeout(
        driver.subscribe(args.broadcastClients ?? 0, () => broadcastCounter.onMessage()),
        60_000,
        `${args.system}: ${args.broadcastClients} subscribers`,
      );
    }
  }

  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => process.exit(0), 3000).unref();
    try {
      await driver?.close();
      await Promise.all(idleClients.map((client) => client.close()));
    } catch {
      // exiting anyway
    }
    process.exit(0);
  };

  process.on('message', (request: ClientRequest) => {
    const reply = (work: Promise<WorkloadResult | IdleResult | SoakResult | undefined>): void => {
      work.then(
        (result) => send({ type: 'reply', id: request.id, result }),
        (err: unknown) => send({ type: 'reply', id: request.id, error: describe(err) }),
      );
    };
    switch (request.cmd) {
      case 'stop':
        send({ type: 'reply', id: request.id });
        void stop();
        return;
      case 'workload': {
        if (driver === undefined) return reply(Promise.reject(new Error('no driver')));
        const client = driver.client;
        if (args.fleet === undefined || client === undefined) return reply(runWorkload(driver, request.workload, request.durationMs, request.warmupMs, request.inflight));
        return reply(
          runWorkload(driver, request.workload, request.durationMs, request.warmupMs).then((result) => ({ ...result, fleetClient: FLEET_CLIENT, endpoints: endpointsOf(client) })),
        );
      }
      case 'idle':
        return reply(runIdle(args, request.clients, request.batch));
      case 'idle-close':
        return reply(
          Promise.all(idleClients.map((client) => client.close())).then(() => {
            idleClients = [];
            return undefined;
          }),
        );
      case 'soak': {
        const d = driver;
        if (d?.client === undefined) return reply(Promise.reject(new Error('soak needs the erps driver')));
        return reply(runSoak({ ...d, client: d.client }, request.calls, request.inflight, request.progressEvery));
      }
    }
  });
  process.on('disconnect', () => void stop());
  send({ type: 'ready' });
}

main().catch((err: unknown) => {
  send({ type: 'failed', error: describe(err) });
  setTimeout(() => process.exit(1), 100);
});
