import { Inject, Injectable } from '@nestjs/common';
import { ClientProxy, ClientsModule } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { firstValueFrom } from 'rxjs';
import { ErpsClient, ErpsClientOptions } from 'nestjs-erps';
import { RunningServer, startCalcServer } from './support/apps';
import { testCertificates } from './support/certs';

@Injectable()
class SumService {
  constructor(@Inject('CALC') readonly calc: ClientProxy) {}

  sum(xs: number[]): Promise<number> {
    return firstValueFrom(this.calc.send<number>('sum', xs));
  }
}

describe('ErpsClient through ClientsModule', () => {
  let running: RunningServer;
  let options: ErpsClientOptions;

  beforeAll(async () => {
    running = await startCalcServer();
    const certs = await testCertificates();
    options = { host: '127.0.0.1', port: running.port, tls: certs.clients.alice, identifier: 'calc', version: '1.2.0' };
  });

  afterAll(() => running.close());

  it.each([
    ['register', () => ClientsModule.register([{ name: 'CALC', customClass: ErpsClient, options }])],
    ['registerAsync', () => ClientsModule.registerAsync([{ name: 'CALC', useFactory: async () => ({ customClass: ErpsClient, options }) }])],
  ])('%s: injected, makes calls, closed with the app', async (_name, imports) => {
    const moduleRef = await Test.createTestingModule({ imports: [imports()], providers: [SumService] }).compile();
    const app = await moduleRef.init();
    const service = app.get(SumService);
    expect(service.calc).toBeInstanceOf(ErpsClient);
    await expect(service.sum([40, 2])).resolves.toBe(42);
    await app.close();
    expect((service.calc as ErpsClient).currentStatus).toBe('closed');
  });
});
