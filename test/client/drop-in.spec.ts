import { spawn } from 'node:child_process';
import * as net from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { RpcException } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import { ErpsClient, ErpsClientOptions, ErpsConnectFailedError, ErpsDisconnectedError, ErpsReconnectingEvent, ErpsTimeoutError } from 'nestjs-erps';
import { calcClient, clientFor, RunningServer, startCalcServer } from '../support/apps';
import { testCertificates } from '../support/certs';

/** A port nothing listens on (bound, then closed). */
async function deadPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('ErpsClient behaves as Nest clients do', () => {
  let running: RunningServer;

  beforeAll(async () => {
    running = await startCalcServer();
  });

  afterAll(async () => {
    await running.close();
  });

  it("honours a subclass's serializeError and serializeResponse", async () => {
    class MappingClient extends ErpsClient {
      protected override serializeError(err: unknown): unknown {
        return new RpcException(err as object);
      }
      protected override serializeResponse(response: unknown): unknown {
        return { wrapped: response };
      }
    }
    const certs = await testCertificates();
    const client = new MappingClient({ host: '127.0.0.1', port: running.port, tls: certs.clients.alice, identifier: 'calc', version: '1.2.0' });
    try {
      await expect(firstValueFrom(client.send('sum', [1, 2]))).resolves.toEqual({ wrapped: 3 });
      const err = await firstValueFrom(client.send('fail.rpc', {})).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RpcException);
      expect((err as RpcException).getError()).toMatchObject({ code: 'E_CALC' });
    } finally {
      await client.close();
    }
  });

  it('honours a deserializer given in the options', async () => {
    const options: Partial<ErpsClientOptions> = { deserializer: { deserialize: (packet: { response?: unknown }) => ({ ...packet, response: ['deserialized', packet.response] }) } };
    const client = await clientFor(running, options);
    try {
      await expect(firstValueFrom(client.send('sum', [2, 2]))).resolves.toEqual(['deserialized', 4]);
    } finally {
      await client.close();
    }
  });

  it('a deserializer that throws fails that call only: the connection that read the reply goes on', async () => {
    const options: Partial<ErpsClientOptions> = {
      deserializer: {
        deserialize: (packet: { response?: unknown }) => {
          if (packet.response === 4) throw new Error('refused by the deserializer');
          return packet;
        },
      },
    };
    const client = await clientFor(running, options);
    const statuses: string[] = [];
    try {
      await expect(firstValueFrom(client.send('sum', [1, 2]))).resolves.toBe(3);
      client.on('status', (status: string) => statuses.push(status));
      await expect(firstValueFrom(client.send('sum', [2, 2]))).rejects.toThrow('refused by the deserializer');
      await expect(firstValueFrom(client.send('sum', [3, 2]))).resolves.toBe(5);
      expect(statuses).toEqual([]);
    } finally {
      await client.close();
    }
  });

  it('a serializeError that throws fails that call with what it threw; the connection goes on', async () => {
    class ThrowingClient extends ErpsClient {
      protected override serializeError(): unknown {
        throw new Error('serializeError failed');
      }
    }
    const certs = await testCertificates();
    const client = new ThrowingClient({ host: '127.0.0.1', port: running.port, tls: certs.clients.alice, identifier: 'calc', version: '1.2.0' });
    const statuses: string[] = [];
    try {
      await expect(firstValueFrom(client.send('sum', [1, 2]))).resolves.toBe(3);
      client.on('status', (status: string) => statuses.push(status));
      await expect(firstValueFrom(client.send('fail.rpc', {}))).rejects.toThrow('serializeError failed');
      await expect(firstValueFrom(client.send('sum', [3, 2]))).resolves.toBe(5);
      expect(statuses).toEqual([]);
    } finally {
      await client.close();
    }
  });

  it('with a deserializer, a call unsubscribed while it waits for a connection is never sent', async () => {
    const localName = `late-calc-${process.pid}`;
    const client = new ErpsClient({
      transport: 'local',
      localName,
      identifier: 'calc',
      version: '1.2.0',
      waitForReady: true,
      reconnect: { minDelayMs: 5, maxDelayMs: 10 },
      deserializer: { deserialize: (packet: unknown) => packet },
    });
    let late: RunningServer | undefined;
    try {
      void client.connect().catch(() => undefined);
      const values: unknown[] = [];
      client
        .send('sum', [1, 1])
        .subscribe({ next: (v) => values.push(v) })
        .unsubscribe();
      late = await startCalcServer({ transport: 'local', localName });
      await expect(firstValueFrom(client.send('sum', [2, 3]))).resolves.toBe(5);
      expect(late.probe.calls).toEqual(['sum']);
      expect(values).toEqual([]);
    } finally {
      await client.close();
      await late?.close();
    }
  });

  it('connect() after close() starts afresh', async () => {
    const client = await clientFor(running);
    await client.connect();
    await client.close();
    await expect(firstValueFrom(client.send('sum', [1]))).rejects.toMatchObject({ code: 'ERPS_CLOSED' });
    await client.connect();
    expect(client.currentStatus).toBe('connected');
    await expect(firstValueFrom(client.send('sum', [1, 1]))).resolves.toBe(2);
    await client.close();
  });

  it('unwrap() returns the socket as soon as one exists, before the handshake is done', async () => {
    const client = await clientFor(running);
    expect(() => client.unwrap()).toThrow(ErpsDisconnectedError);
    const connected = client.connect();
    expect(client.unwrap()).toBeInstanceOf(tls.TLSSocket);
    await connected;
    expect(client.unwrap()).toBeInstanceOf(tls.TLSSocket);
    await client.close();
  });

  it('a connection error keeps the original error as cause (code, errno, syscall)', async () => {
    const client = await calcClient(await deadPort(), { reconnect: false });
    const err = (await client.connect().catch((e: unknown) => e)) as ErpsDisconnectedError & { cause: NodeJS.ErrnoException };
    expect(err).toBeInstanceOf(ErpsDisconnectedError);
    expect(err).toBeInstanceOf(ErpsConnectFailedError);
    expect(err.cause).toMatchObject({ code: 'ECONNREFUSED', syscall: 'connect' });
    expect(typeof err.cause.errno).toBe('number');
    await client.close();
  });

  it('a queued call that times out says why: the last connect error, as message and cause', async () => {
    const client = await calcClient(await deadPort(), { waitForReady: true, timeoutMs: 300, reconnect: { minDelayMs: 20, maxDelayMs: 50 } });
    const err = (await firstValueFrom(client.send('sum', [1])).catch((e: unknown) => e)) as ErpsTimeoutError;
    expect(err).toBeInstanceOf(ErpsTimeoutError);
    expect(err.message).toMatch(/waiting for a connection; last connect error: .*ECONNREFUSED/);
    expect((err.cause as ErpsDisconnectedError).cause).toMatchObject({ code: 'ECONNREFUSED' });
    await client.close();
  });

  it("on('reconnecting') always receives its event object", async () => {
    const client = await calcClient(await deadPort(), { reconnect: { minDelayMs: 5, maxDelayMs: 10, maxAttempts: 3 } });
    const events: ErpsReconnectingEvent[] = [];
    const statuses: string[] = [];
    client.on('reconnecting', (event: ErpsReconnectingEvent) => events.push(event));
    client.on('status', (status: string) => statuses.push(status));
    await client.connect().catch(() => undefined);
    await new Promise<void>((resolve) => client.on('failed', () => resolve()));
    expect(events.length).toBeGreaterThan(0);
    for (const event of events) expect(event).toMatchObject({ attempt: expect.any(Number), delayMs: expect.any(Number), error: expect.any(Error) });
    expect(statuses).toContain('reconnecting');
    await client.close();
  });

  it('a client whose server is down does not keep the process alive', async () => {
    const port = await deadPort();
    const dist = join(__dirname, '..', '..', 'dist', 'index.js');
    const script = `
      const { ErpsClient } = require(${JSON.stringify(dist)});
      const client = new ErpsClient({ host: '127.0.0.1', port: ${port}, transport: 'tcp', reconnect: { minDelayMs: 10000, maxDelayMs: 10000 } });
      client.connect().catch(() => console.log('connect failed, retrying in the background'));
    `;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exit = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => {
        child.kill();
        resolve(null);
      }, 8000);
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
    expect(output).toContain('connect failed');
    expect(exit).toBe(0);
  });
});
