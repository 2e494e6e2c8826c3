import { AsyncLocalStorage } from 'node:async_hooks';
import { Controller, Injectable } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { ErpsAllow, ErpsContext, LocalOnly, RemoteOnly } from 'nestjs-erps';
import { interval, map, Observable } from 'rxjs';
import { Probe } from './calc.controller';

export interface Universe {
  universe: string;
}

/** The server side's own AsyncLocalStorage: values only get here if forwarding carried them. */
export const serverStorage = new AsyncLocalStorage<Universe>();

/** A service deep under a handler that reads "its" universe, as a repository or test double would. */
@Injectable()
export class UniverseService {
  current(): string {
    return serverStorage.getStore()?.universe ?? 'none';
  }
}

@Controller()
export class FeaturesController {
  constructor(
    private readonly probe: Probe,
    private readonly universes: UniverseService,
  ) {}

  @MessagePattern('push.me')
  pushMe(@Payload() count: number, @Ctx() ctx: ErpsContext): string {
    for (let i = 0; i < count; i++) ctx.push('note', { i });
    return 'pushed';
  }

  @MessagePattern('headers')
  headers(@Ctx() ctx: ErpsContext): Record<string, string> {
    return { ...ctx.getHeaders() };
  }

  /** Written as for Nest's TcpContext; 'none' stands for undefined, which the codec would not keep apart from null. */
  @MessagePattern('metadata')
  metadata(@Ctx() ctx: ErpsContext): Record<string, string> | 'none' {
    return ctx.getMetadata() ?? 'none';
  }

  @EventPattern<string>('metadata.cast') // the plain form is TS1241 on Nest 12 with a typed @Ctx()
  metadataCast(@Payload() _data: unknown, @Ctx() ctx: ErpsContext): void {
    this.probe.events.push(ctx.getMetadata() ?? 'none');
  }

  @MessagePattern('universe')
  async universe(): Promise<string> {
    await new Promise((resolve) => setTimeout(resolve, 5));
    return this.universes.current();
  }

  @RemoteOnly()
  @MessagePattern('remote.only')
  remoteOnly(): string {
    this.probe.calls.push('remote.only');
    return 'remote ok';
  }

  @LocalOnly()
  @MessagePattern('local.only')
  localOnly(): string {
    this.probe.calls.push('local.only');
    return 'local ok';
  }

  /** Never answers; counts subscriptions and teardowns, so tests can see a CANCEL reach the server. */
  @MessagePattern('stall')
  stall(): Observable<never> {
    return new Observable<never>(() => {
      this.probe.active++;
      return () => {
        this.probe.active--;
        this.probe.torndown++;
      };
    });
  }

  @ErpsAllow({ cn: ['bob'] })
  @MessagePattern('bob.only')
  bobOnly(): string {
    this.probe.calls.push('bob.only');
    return 'hello bob';
  }

  /** Streams `bytes`-sized Buffers every millisecond until cancelled: a reply a peer that never reads cannot keep up with. */
  @MessagePattern('flood')
  flood(@Payload() bytes: number): Observable<Buffer> {
    return interval(1).pipe(map(() => Buffer.alloc(bytes)));
  }

  @MessagePattern('zeros')
  zeros(@Payload() bytes: number): Buffer {
    return Buffer.alloc(bytes);
  }
}
