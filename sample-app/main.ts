import 'reflect-metadata';
import { resolve } from 'node:path';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ErpsExceptionFilter, ErpsServer } from 'nestjs-erps';
import { generateDevCertificates } from 'nestjs-erps/testing';
import { CalcClientService } from './calc-client.service';
import { CalcController } from './calc.controller';
import { CalcClientModule, CalcServerModule } from './modules';

/**
 * `npm start`: development certificates (made if missing), an Erps daemon and a Nest client app,
 * talking over mutual TLS; shows calls, a stream, a cast and a validation error, then exits.
 */
async function main(): Promise<void> {
  const log = new Logger('sample');
  const certs = await generateDevCertificates({ dir: resolve(__dirname, '../../certs') });
  log.log(`certificates in ${certs.dir}`);

  const server = new ErpsServer({ host: '127.0.0.1', port: 0, tls: certs.server, identifier: 'calc', versions: '^1.0.0' });
  const serverApp = await NestFactory.createMicroservice(CalcServerModule, { strategy: server, logger: ['log', 'warn', 'error'] });
  serverApp.useGlobalFilters(new ErpsExceptionFilter());
  await serverApp.listen();
  const { port } = server.address();
  log.log(`Erps daemon listening on 127.0.0.1:${port} (mutual TLS, identifier "calc", versions ^1.0.0)`);

  const clientApp = await NestFactory.createApplicationContext(
    CalcClientModule.register({ host: '127.0.0.1', port, tls: certs.clients.alice, identifier: 'calc', version: '1.2.0' }),
    { logger: ['log', 'warn', 'error'] },
  );
  const calc = clientApp.get(CalcClientService);
  try {
    log.log(`call  sum([1, 2, 3, 4])        -> ${await calc.sum([1, 2, 3, 4])}`);
    log.log(`call  countdown(5) (a stream)  -> ${(await calc.countdown(5)).join(', ')}`);
    log.log(`call  whoami                   -> ${await calc.whoami()}`);
    await calc.audit('alice looked at the numbers');
    const audit = serverApp.get(CalcController).audit;
    for (let i = 0; i < 100 && audit.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    if (audit.length === 0) throw new Error('the cast never arrived');
    log.log(`cast  audit                    -> the server recorded: "${audit[0]}"`);
    log.log(`call  user.register(valid)     -> ${await calc.register({ name: 'alice', age: 30 })}`);
    const rejected = await calc.register({ name: 'x', age: -1 }).then(
      () => {
        throw new Error('an invalid DTO was accepted');
      },
      (err: { message: string[] }) => err,
    );
    log.log(`call  user.register(invalid)   -> rejected: ${rejected.message.join('; ')}`);
    log.log('all good: calls, stream, cast and validation over mutual TLS');
  } finally {
    await clientApp.close();
    await serverApp.close();
  }
}

const watchdog = setTimeout(() => {
  console.error('sample app: timed out after 30 s');
  process.exit(1);
}, 30_000);
watchdog.unref();

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error('sample app failed:', err);
    process.exit(1);
  },
);
