/**
 * One benchmark server, in its own process (forked by bench/main.ts). argv[2] is a JSON ServerArgs.
 * Tells the parent { type: 'ready', port } over IPC, answers 'stats' (RSS, cast count) and 'stop', and
 * exits by itself when the parent goes away.
 */
import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { Controller, INestMicroservice, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventPattern, GrpcMethod, GrpcStreamMethod, MessagePattern, Payload, Transport } from '@nestjs/microservices';
import * as grpc from '@grpc/grpc-js';
import { Observable } from 'rxjs';
import { ErpsServer } from 'nestjs-erps';
import { describe, PROTO_LOADER_OPTIONS, ServerArgs, ServerMessage, ServerRequest, writeProto } from './common.js';
import { startRawServer } from './raw.js';
import { enableOtel } from './otel-setup.js';

const counters = { casts: 0, echoCalls: 0, delayMs: 0, delayConcurrency: 0 };

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

@Module({ controllers: [GrpcEchoController] })
class GrpcEchoModule {}

/** Calls the daemon still tracks (ErpsServer.stats()). */
function activeCalls(server: ErpsServer | undefined): number | undefined {
  return server?.stats().inFlight;
}

function send(message: ServerMessage): void {
  process.send?.(message);
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as ServerArgs;
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
      break;
    }
    case 'nest-tcp': {
      app = await NestFactory.createMicroservice(EchoModule, {
        transport: Transport.TCP,
        options: { host: '127.0.0.1', port: 0, tlsOptions: { ca, cert, key, requestCert: true, rejectUnauthorized: true } },
        logger: false,
      });
      await app.listen();
      const address = app.unwrap<import('node:net').Server>().address();
      if (address === null || typeof address === 'string') throw new Error('nest-tcp: no address');
      port = address.port;
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
      break;
    }
    case 'raw': {
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

main().catch((err: unknown) => {
  send({ type: 'failed', error: describe(err) });
  setTimeout(() => process.exit(1), 100);
});
