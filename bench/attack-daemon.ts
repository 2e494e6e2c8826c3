/**
 * The daemon under attack, in its own process (forked by bench/attack.ts; argv[2] is a JSON DaemonArgs).
 * A Nest microservice with ErpsServer. Over IPC it reports its RSS, open file descriptors, server.stats(),
 * handler runs, the largest event-loop delay of a row and what ended each connection (the 'disconnect'
 * reasons); it broadcasts on request. It exits when the attacker goes away.
 */
import 'reflect-metadata';
import { readdirSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { interval, mergeMap, Observable, take } from 'rxjs';
import { ErpsServer, ErpsServerOptions, ErpsSessionInfo } from 'nestjs-erps';
import { DaemonArgs, DaemonEvent, DaemonMessage, DaemonRequest, DaemonSample, describe, IDENTIFIER, MIB } from './attack-common.js';
import { CONNECTION_DEFAULTS } from '../src/config/defaults.js';

const handlers: Record<string, number> = { sum: 0, probe: 0, 'admin.secret': 0 };
/** A stream that outlives any row ("forever-ish"), bounded so that nothing runs unbounded. */
const STREAM_TICKS = 100_000;
/** 64 KiB values per millisecond tick, for the stream and the broadcast loop: 256 MiB/s offered, whatever the load. */
const VALUES_PER_TICK = 4;

@Controller()
class TargetController {
  @MessagePattern('sum')
  sum(@Payload() xs: number[]): number {
    handlers.sum!++;
    return xs.reduce((a, b) => a + b, 0);
  }

  @MessagePattern('slow')
  async slow(@Payload() ms: number): Promise<string> {
    await new Promise((resolve) => setTimeout(resolve, Math.min(ms, 5000)));
    return 'done';
  }

  @MessagePattern('admin.secret')
  secret(): string {
    handlers['admin.secret']!++;
    return 'the secret';
  }

  /** The target of codec attacks: it never looks at its payload, it only counts that it ran. */
  @MessagePattern('probe')
  probe(): string {
    handlers.probe!++;
    return 'ran';
  }

  /** 64 KiB values, a few every millisecond, for a client that may never read them. */
  @MessagePattern('stream')
  stream(): Observable<Buffer> {
    return interval(1).pipe(
      take(STREAM_TICKS),
      mergeMap((i) => Array.from({ length: VALUES_PER_TICK }, () => Buffer.alloc(64 * 1024, i & 0xff))),
    );
  }

  /** A 1 MiB reply (fresh memory each time, as a real reply would be). */
  @MessagePattern('big')
  big(): Buffer {
    return Buffer.alloc(MIB, 7);
  }
}

@Module({ controllers: [TargetController] })
class TargetModule {}

const MAX_EVENTS = 5000;

function send(message: DaemonMessage): void {
  process.send?.(message);
}

/**
 * Frees the garbage of earlier rows before a row's baseline is taken: a full GC, then a pause for the buffers it
 * released to be returned to the system (V8 frees them off the main thread), then another.
 */
async function settleMemory(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  await new Promise((resolve) => setTimeout(resolve, 250));
  gc?.();
}

function codeOf(err: unknown): string {
  if (err === undefined || err === null) return 'clean';
  const e = err as { code?: unknown; name?: unknown };
  return typeof e.code === 'string' ? e.code : typeof e.name === 'string' ? e.name : 'unknown';
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as DaemonArgs;
  const options = {
    ...args.options,
    host: '127.0.0.1',
    port: args.port,
    tls: args.tls,
    identifier: IDENTIFIER,
    versions: '^1.0.0',
    authorize: ({ peer, pattern }) => !pattern.startsWith('admin.') || peer?.cn === 'bob',
  } as ErpsServerOptions;
  const server = new ErpsServer(options);
  const app = await NestFactory.createMicroservice(TargetModule, { strategy: server, logger: false });
  await app.listen();

  let events: DaemonEvent[] = [];
  const record = (event: DaemonEvent): void => {
    if (events.length < MAX_EVENTS) events.push(event);
  };
  server.on('disconnect', (info: ErpsSessionInfo, reason?: Error) => {
    record({ kind: 'disconnect', port: info.remotePort, code: codeOf(reason), message: reason?.message ?? '', at: Date.now(), connectedAt: info.connectedAt.getTime() });
  });
  server.on('tlsClientError', (err: Error) => {
    record({ kind: 'tlsClientError', port: undefined, code: codeOf(err), message: err.message, at: Date.now(), connectedAt: undefined });
  });
  server.on('handshakeRejected', (info: ErpsSessionInfo, reason: string) => {
    record({ kind: 'handshakeRejected', port: info.remotePort, code: 'REJECT', message: reason, at: Date.now(), connectedAt: info.connectedAt.getTime() });
  });

  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const broadcasts = { calls: 0, delivered: 0 };
  let broadcasting: NodeJS.Timeout | undefined;
  const stopBroadcast = (): void => {
    clearInterval(broadcasting);
    broadcasting = undefined;
  };

  const sample = (): DaemonSample => {
    const stats = server.stats();
    const fds = readdirSync('/proc/self/fd').length;
    return { rss: process.memoryUsage().rss, fds, connections: stats.connections, inFlight: stats.inFlight, handlers: { ...handlers } };
  };

  process.on('message', (request: DaemonRequest) => {
    switch (request.cmd) {
      case 'sample':
        return send({ type: 'reply', id: request.id, sample: sample() });
      case 'rowStart':
        void settleMemory().then(() => {
          events = [];
          broadcasts.calls = 0;
          broadcasts.delivered = 0;
          delay.reset();
          send({ type: 'reply', id: request.id, sample: sample() });
        });
        return;
      case 'events':
        return send({ type: 'reply', id: request.id, report: { eventLoopMaxMs: delay.max / 1e6, events: [...events], broadcasts: { ...broadcasts } } });
      case 'rowEnd': {
        stopBroadcast();
        const report = { eventLoopMaxMs: delay.max / 1e6, events, broadcasts: { ...broadcasts } };
        events = [];
        return send({ type: 'reply', id: request.id, report });
      }
      case 'broadcast': {
        stopBroadcast();
        const { cn, bytes, everyMs, forMs } = request;
        const until = Date.now() + forMs;
        // Fresh bytes for every broadcast, as real events would be; but a payload nobody took is reused, so that
        // skipped broadcasts do not fill the heap with garbage that the row would count as growth.
        let payload: Buffer | undefined;
        broadcasting = setInterval(() => {
          if (Date.now() > until) return stopBroadcast();
          for (let i = 0; i < VALUES_PER_TICK; i++) {
            payload ??= Buffer.alloc(bytes, broadcasts.calls & 0xff);
            broadcasts.calls++;
            const delivered = server.broadcast('tick', payload, (c) => c.peer?.cn === cn);
            broadcasts.delivered += delivered;
            if (delivered > 0) payload = undefined;
          }
        }, everyMs);
        return send({ type: 'reply', id: request.id });
      }
      case 'stop':
        send({ type: 'reply', id: request.id });
        return void stop();
    }
  });
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    stopBroadcast();
    setTimeout(() => process.exit(0), 3000).unref();
    await app.close().catch(() => undefined);
    process.exit(0);
  };
  process.on('disconnect', () => void stop());

  const { maxFrameBytes, keepaliveMs, maxMissedPings } = { ...CONNECTION_DEFAULTS, ...definedOnly(args.options) };
  send({ type: 'ready', config: { name: args.name, port: server.address().port, options: args.options, maxFrameBytes, keepaliveMs, maxMissedPings } });
}

/** The options that are set (undefined ones would hide the defaults in a spread). */
function definedOnly(options: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
}

main().catch((err: unknown) => {
  send({ type: 'failed', error: describe(err) });
  setTimeout(() => process.exit(1), 100);
});
