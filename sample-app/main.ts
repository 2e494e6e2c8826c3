import 'reflect-metadata';
import { resolve } from 'node:path';
import { NestFactory } from '@nestjs/core';
import { ErpsExceptionFilter, ErpsServer } from 'nestjs-erps';
import { generateDevCertificates } from 'nestjs-erps/testing';
import { CalcClientService } from './calc-client.service';
import { CalcController } from './calc.controller';
import { CalcClientModule, CalcServerModule } from './modules';

/** Nest's own log lines are kept to warnings and errors so the demo output stays readable. */
const QUIET = { logger: ['warn', 'error'] as ('warn' | 'error')[] };
const GLOBAL_TIMEOUT_MS = 30_000;

function show(what: string, result: unknown): void {
  console.log(`  ${what.padEnd(34)} -> ${String(result)}`);
}

/**
 * `npm start`: development certificates (made if missing), an Erps daemon and a Nest client app talking over
 * mutual TLS: calls, a stream, a server push, a cast, a validation error and the caller's certificate CN.
 */
async function main(): Promise<void> {
  const certs = await generateDevCertificates({ dir: resolve(__dirname, '../../certs') });
  console.log(`certificates: ${certs.dir}`);

  const server = new ErpsServer({ host: '127.0.0.1', port: 0, tls: certs.server, identifier: 'calc', versions: '^1.0.0' });
  const serverApp = await NestFactory.createMicroservice(CalcServerModule, { strategy: server, ...QUIET });
  serverApp.useGlobalFilters(new ErpsExceptionFilter());
  server.enableDirectDispatch(serverApp);
  await serverApp.listen();
  const { port } = server.address();
  console.log(`Erps daemon:  127.0.0.1:${port} (mutual TLS, identifier "calc", versions ^1.0.0)`);
  const direct = server.dispatchPlan().filter((entry) => entry.direct);
  console.log(`direct dispatch: ${direct.map((entry) => entry.pattern).join(', ') || 'none'} (no guard, pipe or interceptor on them)`);

  const clientApp = await NestFactory.createApplicationContext(
    CalcClientModule.register({ host: '127.0.0.1', port, tls: certs.clients.alice, identifier: 'calc', version: '1.2.0' }),
    QUIET,
  );
  console.log('Erps client:  certificate CN "alice", version 1.2.0\n');
  const calc = clientApp.get(CalcClientService);
  try {
    show('call sum([1, 2, 3, 4])', await calc.sum([1, 2, 3, 4]));
    show('call countdown(5)  (a stream)', (await calc.countdown(5)).join(', '));
    show('call whoami  (ctx.peer.cn)', await calc.whoami());
    show('call subscribe  (server push)', await calc.subscribe());

    await calc.audit('alice looked at the numbers');
    const audit = serverApp.get(CalcController).audit;
    for (let i = 0; i < 100 && audit.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    if (audit.length === 0) throw new Error('the cast never arrived');
    show('cast audit', `the server recorded "${audit[0]}"`);

    show('call user.register(valid)', await calc.register({ name: 'alice', age: 30 }));
    const rejected = await calc.register({ name: 'x', age: -1 }).then(
      () => {
        throw new Error('an invalid DTO was accepted');
      },
      (err: { message: string[] }) => err,
    );
    if (!Array.isArray(rejected.message)) throw new Error(`validation error without messages: ${JSON.stringify(rejected)}`);
    show('call user.register(invalid)', `rejected: ${rejected.message.join('; ')}`);
    console.log('\nall good: calls, stream, push, cast and validation over mutual TLS');
  } finally {
    await clientApp.close();
    await serverApp.close();
  }
}

const watchdog = setTimeout(() => {
  console.error(`sample app: timed out after ${GLOBAL_TIMEOUT_MS / 1000} s`);
  process.exit(1);
}, GLOBAL_TIMEOUT_MS);
watchdog.unref();

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error('sample app failed:', err);
    process.exit(1);
  },
);
