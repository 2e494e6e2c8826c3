import { Inject, Injectable } from '@nestjs/common';
import { ErpsClient } from 'nestjs-erps';
import { firstValueFrom, lastValueFrom, toArray } from 'rxjs';

export const CALC = 'CALC';

/** A service of the client app: it talks to the remote calculator through the injected ErpsClient. */
@Injectable()
export class CalcClientService {
  constructor(@Inject(CALC) private readonly calc: ErpsClient) {}

  sum(numbers: number[]): Promise<number> {
    return firstValueFrom(this.calc.send<number>('sum', numbers));
  }

  countdown(from: number): Promise<number[]> {
    return lastValueFrom(this.calc.send<number>('countdown', from).pipe(toArray()));
  }

  whoami(): Promise<string> {
    return firstValueFrom(this.calc.send<string>('whoami', {}));
  }

  /** Calls 'subscribe' and returns what the server pushed to us meanwhile. */
  async subscribe(): Promise<string> {
    const news = firstValueFrom(this.calc.pushes<string>('news'));
    await firstValueFrom(this.calc.send<string>('subscribe', {}));
    return (await news).data;
  }

  register(user: unknown): Promise<string> {
    return firstValueFrom(this.calc.send<string>('user.register', user));
  }

  async audit(entry: string): Promise<void> {
    await lastValueFrom(this.calc.emit('audit', entry));
  }
}
