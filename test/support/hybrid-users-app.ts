import { INestApplication, INestMicroservice, LoggerService } from '@nestjs/common';
import { APP_FILTER, HttpAdapterHost } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { ErpsExceptionFilter, ErpsServer } from 'nestjs-erps';
import { testCertificates } from './certs';
import { FilteredUsersController, UsersController } from './users.controller';
import { urlOf } from './http-url';

/** Each way to register ErpsExceptionFilter in a hybrid app, as the README documents them. */
export const WORKING_REGISTRATIONS = ['app.useGlobalFilters() before connectMicroservice()', 'an APP_FILTER provider', '@UseFilters() on the controller'] as const;

/** The trap: registrations that come too late for the microservice's handlers. */
export const TOO_LATE_REGISTRATIONS = ['app.useGlobalFilters() after connectMicroservice()', 'useGlobalFilters() on the microservice'] as const;

export type FilterRegistration = (typeof WORKING_REGISTRATIONS)[number] | (typeof TOO_LATE_REGISTRATIONS)[number];

export interface HybridUsersApp {
  app: INestApplication;
  server: ErpsServer;
  /** The app's own HTTP routes. */
  url: string;
  erpsPort: number;
  close(): Promise<void>;
}

/**
 * A hybrid app as users write it: an HTTP app, an Erps daemon over mutual TLS connected with
 * connectMicroservice(), startAllMicroservices(), listen() on a free loopback port; ErpsExceptionFilter
 * registered as `registration` says. Nest logs go to `logger`.
 */
export async function startHybridUsersApp(registration: FilterRegistration, logger: LoggerService): Promise<HybridUsersApp> {
  const certs = await testCertificates();
  const moduleRef = await Test.createTestingModule({
    controllers: [registration === '@UseFilters() on the controller' ? FilteredUsersController : UsersController],
    providers: registration === 'an APP_FILTER provider' ? [{ provide: APP_FILTER, useClass: ErpsExceptionFilter }] : [],
  })
    .setLogger(logger)
    .compile();
  const app = moduleRef.createNestApplication();
  const filter = (): ErpsExceptionFilter => new ErpsExceptionFilter(app.get(HttpAdapterHost));

  if (registration === 'app.useGlobalFilters() before connectMicroservice()') app.useGlobalFilters(filter());
  const server = new ErpsServer({ host: '127.0.0.1', port: 0, tls: certs.server, identifier: 'users', versions: '^1.0.0' });
  const inheritAppConfig = registration !== '@UseFilters() on the controller';
  const microservice: INestMicroservice = app.connectMicroservice({ strategy: server }, { inheritAppConfig });
  if (registration === 'app.useGlobalFilters() after connectMicroservice()') app.useGlobalFilters(filter());
  if (registration === 'useGlobalFilters() on the microservice') microservice.useGlobalFilters(filter());

  await app.startAllMicroservices();
  await app.listen(0, '127.0.0.1');
  return { app, server, url: urlOf(app), erpsPort: server.address().port, close: () => app.close() };
}
