import { INestMicroservice, ModuleMetadata } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { ErpsClient, ErpsClientOptions, ErpsExceptionFilter, ErpsServer, ErpsServerOptions } from 'nestjs-erps';
import { CalcController, Probe } from './calc.controller';
import { testCertificates } from './certs';
import type { TlsFiles } from 'nestjs-erps/testing';

let localServers = 0;

export interface RunningServer {
  app: INestMicroservice;
  server: ErpsServer;
  probe: Probe;
  port: number;
  /** Set when the server uses transport 'local'. */
  localName: string | undefined;
  close(): Promise<void>;
}

/** A real Nest microservice with CalcController on an Erps daemon (mutual TLS unless told otherwise). */
export async function startCalcServer(options: Partial<ErpsServerOptions> = {}, metadata: ModuleMetadata = {}): Promise<RunningServer> {
  const certs = await testCertificates();
  const probe = new Probe();
  const moduleRef = await Test.createTestingModule({
    ...metadata,
    controllers: metadata.controllers ?? [CalcController],
    providers: [{ provide: Probe, useValue: probe }, ...(metadata.providers ?? [])],
  }).compile();
  const localName = options.transport === 'local' ? (options.localName ?? `calc-${++localServers}`) : undefined;
  const server = new ErpsServer({
    host: '127.0.0.1',
    port: 0,
    tls: options.transport === 'tcp' || options.transport === 'local' ? undefined : certs.server,
    identifier: 'calc',
    versions: '^1.0.0',
    localName,
    ...options,
  });
  const app = moduleRef.createNestMicroservice({ strategy: server, logger: false });
  app.useGlobalFilters(new ErpsExceptionFilter());
  await app.listen();
  return { app, server, probe, port: server.address().port, localName, close: () => app.close() };
}

/** A client for `running`, over the same transport the server uses. */
export async function clientFor(running: RunningServer, options: Partial<ErpsClientOptions> = {}, identity: TlsFiles | 'alice' | 'bob' = 'alice'): Promise<ErpsClient> {
  if (running.localName !== undefined) {
    return new ErpsClient({ transport: 'local', localName: running.localName, identifier: 'calc', version: '1.2.0', ...options });
  }
  return calcClient(running.port, options, identity);
}

/** A client for the calc server, as a user would build it. */
export async function calcClient(port: number, options: Partial<ErpsClientOptions> = {}, identity: TlsFiles | 'alice' | 'bob' = 'alice'): Promise<ErpsClient> {
  const certs = await testCertificates();
  const tls = typeof identity === 'string' ? certs.clients[identity] : identity;
  return new ErpsClient({ host: '127.0.0.1', port, tls: options.transport === 'tcp' ? undefined : tls, identifier: 'calc', version: '1.2.0', ...options });
}
