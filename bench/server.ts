/**
 * One benchmark server, in its own process (forked by bench/main.ts). argv[2] is a JSON ServerArgs.
 * Tells the parent { type: 'ready', port } over IPC, answers 'stats' (RSS, cast count) and 'stop', and
 * exits by itself when the parent goes away.
 *
 * With `workers` > 0 (`--mode scale`) this process is a node:cluster primary: it forks that many workers, each
 * running the server on port 0 (which the primary shares among them: one port), says 'ready' once all listen, and
 * answers 'stats' with the sum over the workers plus its own CPU and RSS, each worker's figures in `workers`.
 */
import 'reflect-metadata';
import cluster, { Worker } from 'node:cluster';
import { readFileSync } from 'node:fs';
import type * as tls from 'node:tls';
import { Controller, INestMicroservice, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventPattern, GrpcMethod, GrpcStreamMethod, MessagePattern, Payload, Transport } from '@nestjs/microservices';
import * as grpc from '@grpc/grpc-js';
import { Observable, Subject } from 'rxjs';
import { ErpsServer } from 'nestjs-erps';
import {
  BROADCAST_BUFFER_LIMIT,
  BROADCAST_PATTERN,
  broadcastRound,
  Broadcaster,
  describe,
  Drainable,
  drainFull,
  pollUntilClear,
  PROTO_LOADER_OPTIONS,
  ServerArgs,
  ServerMessage,
  ServerRequest,
  ServerStats,
  smallObject,
  writeProto,
} from './common.js';
import { startRawServer } from './raw.js';
import { enableOtel } from './otel-setup.js';

const counters = { casts: 0, echoCalls: 0, delayMs: 0, delayConcurrency: 0 };

/** `stream`: a streamed reply of `n` values, all the same ~64-byte object, emitted synchronously (stops early if unsubscribed). */
function streamOf<T>(value: T, n: number): Observable<T> {
  return new Observable<T>((subscriber) => {
    for (let i = 0; i < n && !subscriber.closed; i++) subscriber.next(value);
    subscriber.complete();
  });
}

/**
 * `broadcast` for nest-tcp and gRPC: every client holds one streamed call whose reply is this Subject's values; the
 * round emits into it. `subscribers` counts the open ones.
 */
const ticks = new Subject<GrpcItem>();
let subscribers = 0;
function subscribeTicks(onClose?: () => void): Observable<GrpcItem> {
  return new Observable<GrpcItem>((subscriber) => {
    subscribers++;
    const subscription = ticks.subscribe((value) => subscriber.next(value));
    return () => {
      subscribers--;
      subscription.unsubscribe();
      onClose?.();
    };
  });
}

/** This process's broadcaster (set in main() for the system it serves). */
let broadcaster: Broadcaster | undefined;

async function runBroadcast(run: { durationMs: number; subscribers: number }): Promise<{ sent: number; waits: number; skipped: number }> {
  if (broadcaster === undefined) throw new Error('no broadcaster');
  return broadcastRound(broadcaster, run.durationMs, run.subscribers);
}

/** The slowed daemon: +delayMs per call, at most `delayConcurrency` calls at a time (0: unlimited). */
let delaying = 0;
const waiting: Array<() => void> = [];
function delayed(data: unknown): Promise<unknown> {
  const limit = counters.delayConcurrency;
  const run = (): Promise<unknown> =>
    new Promise((resolve) =>
      setTimeout(() => {
        delaying--;
        waiting.shift()?.();
        resolve(data);
      }, counters.delayMs),
    );
  if (limit === 0 || delaying < limit) {
    delaying++;
    return run();
  }
  return new Promise((resolve) =>
    waiting.push(() => {
      delaying++;
      resolve(run());
    }),
  );
}

@Controller()
class EchoController {
  @MessagePattern('echo')
  echo(@Payload() data: unknown): unknown {
    counters.echoCalls++;
    if (counters.delayMs > 0) return delayed(data);
    return data;
  }

  @EventPattern('cast')
  cast(@Payload() _data: unknown): void {
    counters.casts++;
  }

  /** How many casts this server has handled (the client's end-of-run acknowledgement). */
  @MessagePattern('casts')
  casts(): number {
    return counters.casts;
  }

  /** `stream`: `n` values in one streamed reply. */
  @MessagePattern('stream')
  stream(@Payload() n: number): Observable<unknown> {
    return streamOf(smallObject(), n);
  }

  /** `broadcast` (nest-tcp): the caller's end of the shared Subject, open until the client goes. */
  @MessagePattern('subscribe')
  subscribe(): Observable<unknown> {
    return subscribeTicks();
  }

  /** `broadcast`: one round; answers when it is over. */
  @MessagePattern('broadcast-run')
  broadcastRun(@Payload() run: { durationMs: number; subscribers: number }): Promise<{ sent: number; waits: number; skipped: number }> {
    return runBroadcast(run);
  }
}

@Module({ controllers: [EchoController] })
class EchoModule {}

interface GrpcItem {
  id?: number;
  name?: string;
  tags?: string[];
  ok?: boolean;
  n?: number;
  blob?: Buffer;
}

@Controller()
class GrpcEchoController {
  @GrpcMethod('Bench', 'Echo')
  echo(item: GrpcItem): GrpcItem {
    counters.echoCalls++;
    return item;
  }

  /** One-way messages in gRPC terms: a client stream, answered with the count once the client ends it. */
  @GrpcStreamMethod('Bench', 'Cast')
  cast(messages: Observable<GrpcItem>): Observable<{ count: number }> {
    return new Observable((subscriber) => {
      let count = 0;
      const sub = messages.subscribe({
        next: () => {
          count++;
          counters.casts++;
        },
        error: (err: unknown) => subscriber.error(err),
        complete: () => {
          subscriber.next({ count });
          subscriber.complete();
        },
      });
      return () => sub.unsubscribe();
    });
  }
}

/** The gRPC Subscribe calls (server streams) open now: their write buffers are the broadcast's backpressure. */
const grpcCalls = new Set<grpc.ServerWritableStream<GrpcItem, GrpcItem>>();

@Controller()
class GrpcStreamController {
  /** `stream`: item.id values in one server stream. */
  @GrpcMethod('Bench', 'Stream')
  stream(item: GrpcItem): Observable<GrpcItem> {
    return streamOf<GrpcItem>(smallObject(), item.id ?? 0);
  }

  /** `broadcast`: one server stream per client, fed by the shared Subject. */
  @GrpcMethod('Bench', 'Subscribe')
  subscribe(_item: GrpcItem, _metadata: unknown, call: grpc.ServerWritableStream<GrpcItem, GrpcItem>): Observable<GrpcItem> {
    grpcCalls.add(call);
    return subscribeTicks(() => grpcCalls.delete(call));
  }

  @GrpcMethod('Bench', 'Broadcast')
  async broadcast(run: { durationMs?: number; subscribers?: number }): Promise<{ sent: number; waits: number }> {
    const { sent, waits } = await runBroadcast({ durationMs: run.durationMs ?? 0, subscribers: run.subscribers ?? 0 });
    return { sent, waits };
  }
}

@Module({ controllers: [GrpcEchoController, GrpcStreamController] })
class GrpcEchoModule {}

/** Calls the daemon still tracks (ErpsServer.stats()). */
function activeCalls(server: ErpsServer | undefined): number | undefined {
  return server?.stats().inFlight;
}

/** To the parent, while it is there (a reply finishing after the parent went away is dropped, not thrown). */
function send(message: ServerMessage): void {
  if (process.connected) process.send?.(message);
}

/** erps: ErpsServer.broadcast() of the ~64-byte object; backpressure from stats().maxWriteBufferedBytes, polled. */
function erpsBroadcaster(erps: ErpsServer): Broadcaster {
  const small = smallObject();
  let skipped = 0;
  return {
    subscribers: () => erps.stats().connections,
    turn: (n) => {
      const connections = erps.stats().connections;
      let sent = 0;
      for (let i = 0; i < n; i++) sent += erps.broadcast(BROADCAST_PATTERN, small);
      skipped += n * connections - sent;
      return sent;
    },
    settle: () => pollUntilClear(() => erps.stats().maxWriteBufferedBytes > BROADCAST_BUFFER_LIMIT),
    skipped: () => skipped,
  };
}

/** nest-tcp and gRPC: emits into the shared Subject; `full` says which of `streams` is over its limit. */
function subjectBroadcaster<T extends Drainable>(streams: Iterable<T>, full: (stream: T) => boolean): Broadcaster {
  const small = smallObject();
  return {
    subscribers: () => subscribers,
    turn: (n) => {
      for (let i = 0; i < n; i++) ticks.next(small);
      return n * subscribers;
    },
    settle: () => drainFull(streams, full),
  };
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as ServerArgs;
  if (cluster.isPrimary && (args.workers ?? 0) > 0) return runPrimary(args);
  const ca = readFileSync(args.tls.caFile);
  const cert = readFileSync(args.tls.certFile);
  const key = readFileSync(args.tls.keyFile);
  let app: INestMicroservice | undefined;
  let erps: ErpsServer | undefined;
  let closeRaw: (() => void) | undefined;
  let casts = (): number => counters.casts;
  let port: number;

  switch (args.system) {
    case 'erps':
    case 'erps-otel': {
      if (args.system === 'erps-otel') enableOtel();
      counters.delayMs = args.delayMs ?? 0;
      counters.delayConcurrency = args.delayConcurrency ?? 0;
      erps = new ErpsServer({ host: '127.0.0.1', port: 0, tls: args.tls, identifier: 'bench', versions: '^1.0.0' });
      app = await NestFactory.createMicroservice(EchoModule, { strategy: erps, logger: false });
      erps.enableDirectDispatch(app);
      await app.listen();
      port = erps.address().port;
      broadcaster = erpsBroadcaster(erps);
      break;
    }
    case 'nest-tcp': {
      app = await NestFactory.createMicroservice(EchoModule, {
        transport: Transport.TCP,
        options: { host: '127.0.0.1', port: 0, tlsOptions: { ca, cert, key, requestCert: true, rejectUnauthorized: true } },
        logger: false,
      });
      await app.listen();
      const server = app.unwrap<tls.Server>();
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('nest-tcp: no address');
      port = address.port;
      // Nest TCP has no backpressure of its own: the broadcast loop watches the sockets' write buffers.
      const sockets = new Set<tls.TLSSocket>();
      server.on('secureConnection', (socket: tls.TLSSocket) => {
        sockets.add(socket);
        socket.once('close', () => sockets.delete(socket));
      });
      broadcaster = subjectBroadcaster(sockets, (socket) => socket.writableLength > BROADCAST_BUFFER_LIMIT);
      break;
    }
    case 'nest-grpc': {
      const protoPath = writeProto(args.workDir);
      app = await NestFactory.createMicroservice(GrpcEchoModule, {
        transport: Transport.GRPC,
        options: {
          package: 'bench',
          protoPath,
          url: `127.0.0.1:${args.port}`,
          loader: PROTO_LOADER_OPTIONS,
          credentials: grpc.ServerCredentials.createSsl(ca, [{ private_key: key, cert_chain: cert }], true),
          maxReceiveMessageLength: 8 * 1024 * 1024,
          maxSendMessageLength: 8 * 1024 * 1024,
        },
        logger: false,
      });
      await app.listen();
      port = args.port;
      // A call whose writable side is full (write() returned false: Nest then queues the values itself until 'drain').
      broadcaster = subjectBroadcaster(grpcCalls, (call) => call.writableNeedDrain);
      break;
    }
    case 'raw':
    case 'raw-msgpack': {
      const raw = await startRawServer({ ca, cert, key }, 0);
      const address = raw.server.address();
      if (address === null || typeof address === 'string') throw new Error('raw: no address');
      port = address.port;
      casts = () => raw.casts();
      closeRaw = () => raw.server.close();
      break;
    }
    default:
      throw new Error(`unknown system ${String(args.system)}`);
  }

  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    const hard = setTimeout(() => process.exit(0), 3000);
    hard.unref();
    try {
      closeRaw?.();
      await app?.close();
    } catch {
      // exiting anyway
    }
    process.exit(0);
  };

  process.on('message', (request: ServerRequest) => {
    if (request.cmd === 'stop') {
      send({ type: 'reply', id: request.id });
      void stop();
      return;
    }
    if (request.gc === true) (globalThis as { gc?: () => void }).gc?.();
    const memory = process.memoryUsage();
    const cpu = process.cpuUsage();
    send({
      type: 'reply',
      id: request.id,
      stats: {
        rssBytes: memory.rss,
        heapUsedBytes: memory.heapUsed,
        casts: casts(),
        echoCalls: counters.echoCalls,
        cpuUserUs: cpu.user,
        cpuSystemUs: cpu.system,
        connections: erps?.connections().length,
        privateActiveCalls: activeCalls(erps),
      },
    });
  });
  process.on('disconnect', () => void stop());
  send({ type: 'ready', port });
}

// ---- node:cluster primary (`--mode scale`) ----------------------------------------------------------

async function runPrimary(args: ServerArgs): Promise<void> {
  // The workers run this script with the same arguments, minus `workers`; each listens on port 0, which the
  // primary turns into one shared port (round-robin hand-off of connections on Linux).
  cluster.setupPrimary({ args: [JSON.stringify({ ...args, workers: 0 })], silent: false });
  const workers: Worker[] = [];
  const waiting = new Map<number, { resolve(msg: ServerMessage): void; timer: NodeJS.Timeout }>();
  let nextId = 1;
  let stopping = false;
  const killAll = (): void => {
    for (const worker of workers) if (!worker.isDead()) worker.process.kill('SIGKILL');
  };
  const ask = (worker: Worker, body: { cmd: 'stats'; gc?: boolean }): Promise<ServerMessage> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error(`worker ${worker.id}: no stats after 10 s`));
      }, 10_000);
      waiting.set(id, { resolve, timer });
      worker.send({ ...body, id });
    });
  const fork = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const worker = cluster.fork();
      workers.push(worker);
      worker.on('message', (msg: ServerMessage) => {
        if (msg.type === 'ready') resolve(msg.port);
        else if (msg.type === 'failed') reject(new Error(`worker ${worker.id}: ${msg.error}`));
        else if (msg.type === 'reply') {
          const waiter = waiting.get(msg.id);
          if (waiter === undefined) return;
          waiting.delete(msg.id);
          clearTimeout(waiter.timer);
          waiter.resolve(msg);
        }
      });
      worker.once('exit', (code, signal) => {
        reject(new Error(`worker ${worker.id} exited (${String(code ?? signal)})`));
        if (!stopping) console.error(`bench: cluster worker ${worker.id} exited (code ${String(code)}, signal ${String(signal)})`);
      });
    });
  process.on('disconnect', () => {
    killAll();
    process.exit(0);
  });
  try {
    const ports: number[] = [];
    for (let i = 0; i < (args.workers ?? 0); i++) ports.push(await fork());
    if (new Set(ports).size !== 1) throw new Error(`the workers listen on different ports: ${ports.join(', ')}`);

    process.on('message', (request: ServerRequest) => {
      if (request.cmd === 'stop') {
        stopping = true;
        send({ type: 'reply', id: request.id });
        for (const worker of workers) if (!worker.isDead()) worker.send({ cmd: 'stop', id: 0 });
        const hard = setTimeout(() => {
          killAll();
          process.exit(0);
        }, 3000);
        hard.unref();
        void Promise.all(workers.map((w) => (w.isDead() ? undefined : new Promise((resolve) => w.once('exit', resolve))))).then(() => process.exit(0));
        return;
      }
      Promise.all(workers.map((worker) => ask(worker, { cmd: 'stats', gc: request.gc }))).then(
        (replies) => {
          const each = replies.map((reply, i) => {
            if (reply.type !== 'reply' || reply.stats === undefined) throw new Error(`worker ${workers[i]!.id}: no stats`);
            return { pid: workers[i]!.process.pid ?? 0, ...reply.stats };
          });
          const memory = process.memoryUsage();
          const cpu = process.cpuUsage();
          const sum = (pick: (s: ServerStats) => number | undefined): number => each.reduce((total, s) => total + (pick(s) ?? 0), 0);
          send({
            type: 'reply',
            id: request.id,
            stats: {
              rssBytes: memory.rss + sum((s) => s.rssBytes),
              heapUsedBytes: memory.heapUsed + sum((s) => s.heapUsedBytes),
              casts: sum((s) => s.casts),
              echoCalls: sum((s) => s.echoCalls),
              cpuUserUs: cpu.user + sum((s) => s.cpuUserUs),
              cpuSystemUs: cpu.system + sum((s) => s.cpuSystemUs),
              connections: sum((s) => s.connections),
              privateActiveCalls: sum((s) => s.privateActiveCalls),
              workers: each.map((s) => ({
                pid: s.pid,
                echoCalls: s.echoCalls,
                connections: s.connections,
                cpuUserUs: s.cpuUserUs,
                cpuSystemUs: s.cpuSystemUs,
                rssBytes: s.rssBytes,
              })),
            },
          });
        },
        (err: unknown) => send({ type: 'reply', id: request.id, error: describe(err) }),
      );
    });
    send({ type: 'ready', port: ports[0]! });
  } catch (err) {
    killAll();
    throw err;
  }
}

main().catch((err: unknown) => {
  send({ type: 'failed', error: describe(err) });
  setTimeout(() => process.exit(1), 100);
});
