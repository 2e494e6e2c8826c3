import { Controller, UsePipes, ValidationPipe } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { ErpsContext } from 'nestjs-erps';
import { interval, map, Observable, take } from 'rxjs';
import { RegisterUserDto } from './calc.dto';

/** The remote server: @MessagePattern handlers are Erps calls, @EventPattern handlers are casts. */
@Controller()
export class CalcController {
  /** What the 'audit' casts delivered (main.ts checks it). */
  readonly audit: string[] = [];

  @MessagePattern('sum')
  sum(@Payload() numbers: number[]): number {
    return numbers.reduce((total, n) => total + n, 0);
  }

  @MessagePattern('countdown')
  countdown(@Payload() from: number): Observable<number> {
    return interval(10).pipe(
      take(from + 1),
      map((i) => from - i),
    );
  }

  @MessagePattern('whoami')
  whoami(@Ctx() ctx: ErpsContext): string {
    return `you are "${ctx.peer?.cn}" (certificate ${ctx.peer?.fingerprint256.slice(0, 11)}…), calling over connection ${ctx.connectionId}`;
  }

  @MessagePattern('subscribe')
  subscribe(@Ctx() ctx: ErpsContext): string {
    // Erps Server.push/2: a message of the server's own to the calling client, ordered before this reply.
    ctx.push('news', `hello ${ctx.peer?.cn ?? 'stranger'}, this is a server push`);
    return 'subscribed';
  }

  @MessagePattern('user.register')
  @UsePipes(new ValidationPipe())
  register(@Payload() user: RegisterUserDto): string {
    return `registered ${user.name} (${user.age})`;
  }

  @EventPattern('audit')
  record(@Payload() entry: string): void {
    this.audit.push(entry);
  }
}
