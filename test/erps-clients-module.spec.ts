import { Inject, Injectable, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { firstValueFrom } from 'rxjs';
import { ErpsClient, ErpsClientOptions, ErpsClientsModule } from 'nestjs-erps';
import { RunningServer, startCalcServer } from './support/apps';
import { testCertificates } from './support/certs';

@Injectable()
class TwoCalcs {
  constructor(
    @Inject('CALC') readonly calc: ErpsClient,
    @Inject('CALC_BOB') readonly asBob: ErpsClient,
  ) {}

  sum(client: ErpsClient, xs: number[]): Promise<number> {
    return firstValueFrom(client.send<number>('sum', xs));
  }
}

/** Where registerAsync takes its settings from, as an app's ConfigModule would provide them. */
class CalcSettings {
  constructor(readonly options: ErpsClientOptions) {}
}

describe('ErpsClientsModule', () => {
  let running: RunningServer;
  let alice: ErpsClientOptions;
  let bob: ErpsClientOptions;

  beforeAll(async () => {
    running = await startCalcServer();
    const certs = await testCertificates();
    alice = { host: '127.0.0.1', port: running.port, tls: certs.clients.alice, identifier: 'calc', version: '1.2.0' };
    bob = { ...alice, tls: certs.clients.bob };
  });

  afterAll(() => running.close());

  async function callBothThenClose(imports: Parameters<typeof Test.createTestingModule>[0]['imports']): Promise<void> {
    const moduleRef = await Test.createTestingModule({ imports, providers: [TwoCalcs] }).compile();
    const app = await moduleRef.init();
    const service = app.get(TwoCalcs);
    try {
      expect(service.calc).toBeInstanceOf(ErpsClient);
      await expect(service.sum(service.calc, [40, 2])).resolves.toBe(42);
      await expect(firstValueFrom(service.calc.send('whoami', {}))).resolves.toMatchObject({ cn: 'alice' });
      await expect(firstValueFrom(service.asBob.send('whoami', {}))).resolves.toMatchObject({ cn: 'bob' });
    } finally {
      await app.close();
    }
    expect(service.calc.currentStatus).toBe('closed');
    expect(service.asBob.currentStatus).toBe('closed');
  }

  it('register: each named client is an injected ErpsClient that calls over mutual TLS, closed with the app', async () => {
    await callBothThenClose([
      ErpsClientsModule.register([
        { name: 'CALC', options: alice },
        { name: 'CALC_BOB', options: bob },
      ]),
    ]);
  });

  it('registerAsync: options from factories with injected dependencies from imported modules', async () => {
    @Module({ providers: [{ provide: CalcSettings, useValue: new CalcSettings(alice) }], exports: [CalcSettings] })
    class SettingsModule {}

    await callBothThenClose([
      ErpsClientsModule.registerAsync([
        { name: 'CALC', imports: [SettingsModule], inject: [CalcSettings], useFactory: (settings: CalcSettings) => settings.options },
        { name: 'CALC_BOB', imports: [SettingsModule], inject: [CalcSettings], useFactory: async (settings: CalcSettings) => ({ ...settings.options, tls: bob.tls }) },
      ]),
    ]);
  });

  it('isGlobal: a client registered once is injectable in another module', async () => {
    @Module({ providers: [TwoCalcs], exports: [TwoCalcs] })
    class FeatureModule {}

    const moduleRef = await Test.createTestingModule({
      imports: [
        ErpsClientsModule.register(
          [
            { name: 'CALC', options: alice },
            { name: 'CALC_BOB', options: bob },
          ],
          { isGlobal: true },
        ),
        FeatureModule,
      ],
    }).compile();
    const app = await moduleRef.init();
    const service = app.get(TwoCalcs);
    try {
      await expect(service.sum(service.asBob, [1, 2])).resolves.toBe(3);
    } finally {
      await app.close();
    }
    expect(service.asBob.currentStatus).toBe('closed');
  });
});

// Never called: `npm test` type-checks this file, and each @ts-expect-error must meet the error it announces.
export function optionsAreTyped(options: ErpsClientOptions): void {
  ErpsClientsModule.register([
    {
      name: 'CALC',
      options: {
        port: 4000,
        // @ts-expect-error a misspelled option
        identifer: 'calc',
      },
    },
  ]);
  ErpsClientsModule.register([
    {
      name: 'CALC',
      options: {
        // @ts-expect-error a port is a number
        port: '4000',
      },
    },
  ]);
  ErpsClientsModule.registerAsync([
    {
      name: 'CALC',
      useFactory: () => ({
        ...options,
        // @ts-expect-error a misspelled option, from a factory
        identifer: 'calc',
      }),
    },
  ]);
  ErpsClientsModule.registerAsync([
    {
      name: 'CALC',
      // @ts-expect-error a port is a number, from an async factory
      useFactory: async () => ({ ...options, port: '4000' }),
    },
  ]);
  ErpsClientsModule.registerAsync([
    {
      name: 'CALC',
      // @ts-expect-error a factory returns options
      useFactory: () => 4000,
    },
  ]);
  ErpsClientsModule.registerAsync([
    { name: 'CALC', useFactory: async () => options },
    { name: 'OTHER', inject: ['PORT'], useFactory: (port: number) => ({ ...options, port }) },
  ]);
}
