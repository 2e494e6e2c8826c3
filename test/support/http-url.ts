import { INestApplication } from '@nestjs/common';

/** The loopback URL of an app that listens on a port the OS chose. */
export function urlOf(app: INestApplication): string {
  const address = app.getHttpServer().address() as { port: number };
  return `http://127.0.0.1:${address.port}`;
}
