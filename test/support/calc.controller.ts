import { Controller, UsePipes, ValidationPipe } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { IsInt, IsString, Min, MinLength } from 'class-validator';
import { interval, Observable, of, take, map, finalize } from 'rxjs';
import { ErpsContext } from 'nestjs-erps';

export class CreateUserDto {
  @IsString()
  @MinLength(3)
  name!: string;

  @IsInt()
  @Min(0)
  age!: number;
}

/** Records what handlers saw, so tests can assert that a handler ran, or never ran. */
export class Probe {
  calls: string[] = [];
  events: unknown[] = [];
  peers: Array<string | undefined> = [];
  active = 0;
  produced = 0;
  torndown = 0;
}

@Controller()
export class CalcController {
  constructor(private readonly probe: Probe) {}

  @MessagePattern('sum')
  sum(@Payload() xs: number[]): number {
    this.probe.calls.push('sum');
    return xs.reduce((a, b) => a + b, 0);
  }

  @MessagePattern('sum.async')
  async sumAsync(@Payload() xs: number[]): Promise<number> {
    this.probe.calls.push('sum.async');
    await new Promise((resolve) => setTimeout(resolve, 5));
    return xs.reduce((a, b) => a + b, 0);
  }

  @MessagePattern({ cmd: 'count', version: 1 })
  count(@Payload() n: number): Observable<number> {
    this.probe.calls.push('count');
    return interval(1).pipe(
      take(n),
      map((i) => i + 1),
    );
  }

  @MessagePattern('echo')
  echo(@Payload() value: unknown): unknown {
    return value;
  }

  @MessagePattern('whoami')
  whoami(@Ctx() ctx: ErpsContext): { cn: string | undefined; remote: boolean; connectionId: number; pattern: string } {
    this.probe.peers.push(ctx.peer?.cn);
    return { cn: ctx.peer?.cn, remote: ctx.isRemote(), connectionId: ctx.connectionId, pattern: ctx.getPattern() };
  }

  @MessagePattern('fail.rpc')
  failRpc(): never {
    throw new RpcException({ code: 'E_CALC', message: 'calculator says no', details: { x: 1 } });
  }

  @MessagePattern('fail.crash')
  failCrash(): never {
    throw new Error('secret internal detail');
  }

  @MessagePattern('user.create')
  @UsePipes(new ValidationPipe())
  createUser(@Payload() dto: CreateUserDto): string {
    return `created ${dto.name}`;
  }

  @MessagePattern('slow')
  async slow(@Payload() ms: number): Promise<string> {
    this.probe.active++;
    await new Promise((resolve) => setTimeout(resolve, ms));
    this.probe.active--;
    return 'done';
  }

  @MessagePattern('ticks')
  ticks(): Observable<number> {
    return interval(5).pipe(
      map((i) => {
        this.probe.produced++;
        return i;
      }),
      finalize(() => this.probe.torndown++),
    );
  }

  @MessagePattern('nothing')
  nothing(): Observable<never> {
    return new Observable((subscriber) => subscriber.complete());
  }

  @EventPattern('audit')
  audit(@Payload() event: unknown): void {
    this.probe.events.push(event);
  }

  @MessagePattern('of3')
  of3(): Observable<string> {
    return of('a', 'b', 'c');
  }
}
