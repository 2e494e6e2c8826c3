import { Body, Controller, HttpException, Inject, INestApplication, LoggerService, Module, Post } from '@nestjs/common';
import { ClientProxy, ClientsModule } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { firstValueFrom } from 'rxjs';
import { ErpsClient, ErpsClientOptions } from 'nestjs-erps';
import { urlOf } from './http-url';

const USERS = Symbol('USERS');

/** An Erps error reply that carries an HTTP status (ErpsExceptionFilter's) becomes that HTTP error; others a 502. */
function httpExceptionFrom(error: unknown): HttpException {
  if (typeof error === 'object' && error !== null) {
    const { status: _status, ...body } = error as Record<string, unknown>;
    if (typeof body.statusCode === 'number') return new HttpException(body, body.statusCode);
  }
  return new HttpException({ statusCode: 502, message: 'users service failed' }, 502);
}

/** An HTTP front for the users service: each route calls it through an ErpsClient from ClientsModule. */
@Controller('users')
class UsersGatewayController {
  constructor(@Inject(USERS) private readonly users: ClientProxy) {}

  @Post()
  async register(@Body() user: unknown): Promise<unknown> {
    try {
      return await firstValueFrom(this.users.send('user.register', user));
    } catch (error) {
      throw httpExceptionFrom(error);
    }
  }
}

/** A plain HTTP app (listening on a free loopback port) whose routes call the users service over Erps. */
export async function startUsersGateway(erps: ErpsClientOptions, logger: LoggerService): Promise<{ app: INestApplication; url: string }> {
  @Module({
    imports: [ClientsModule.register([{ name: USERS, customClass: ErpsClient, options: erps }])],
    controllers: [UsersGatewayController],
  })
  class UsersGatewayModule {}

  const moduleRef = await Test.createTestingModule({ imports: [UsersGatewayModule] })
    .setLogger(logger)
    .compile();
  const app = moduleRef.createNestApplication();
  await app.listen(0, '127.0.0.1');
  return { app, url: urlOf(app) };
}
