import * as net from 'node:net';
import { HealthIndicatorService } from '@nestjs/terminus';
import { ErpsClient, ErpsServer } from 'nestjs-erps';
import { ErpsHealthIndicator } from 'nestjs-erps/terminus';
import { FrameType } from '../../src/protocol/frame';
import { clientFor, RunningServer, startCalcServer } from '../support/apps';
import { testCertificates } from '../support/certs';
import { FakeConnector } from '../support/fake-connector';
import { waitFor } from '../support/wait';

/** A loopback port nothing listens on (the OS gave it, then it was closed). */
async function deadPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('ErpsHealthIndicator', () => {
  const indicator = new ErpsHealthIndicator(new HealthIndicatorService());
  let running: RunningServer;
  const clients: ErpsClient[] = [];

  beforeAll(async () => {
    running = await startCalcServer();
  });

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await running.close();
  });

  it('pingCheck asks for options.service: down with the status when it is NOT_SERVING or SERVICE_UNKNOWN', async () => {
    const client = await clientFor(running);
    clients.push(client);
    running.server.setServingStatus('calc', 'SERVING');
    await expect(indicator.pingCheck('calc', client, { service: 'calc' })).resolves.toEqual({
      calc: { status: 'up', service: 'calc', serving: 'SERVING', rttMs: expect.any(Number), endpoint: `127.0.0.1:${running.port}`, endpoints: expect.any(Array) },
    });
    running.server.setServingStatus('calc', 'NOT_SERVING');
    await expect(indicator.pingCheck('calc', client, { service: 'calc' })).resolves.toEqual({
      calc: expect.objectContaining({ status: 'down', serving: 'NOT_SERVING', message: 'service "calc" is NOT_SERVING' }),
    });
    await expect(indicator.pingCheck('other', client, { service: 'other' })).resolves.toEqual({
      other: expect.objectContaining({ status: 'down', serving: 'SERVICE_UNKNOWN', message: 'service "other" is SERVICE_UNKNOWN' }),
    });
  });

  it('pingCheck is down when the server is slower than timeoutMs', async () => {
    const connector = new FakeConnector();
    const client = new ErpsClient({ host: 'quiet.example', port: 4100, transport: 'tcp', identifier: 'calc', version: '1.0.0', keepaliveMs: 0 }, connector.connect);
    clients.push(client);
    const checked = indicator.pingCheck('quiet', client, { timeoutMs: 50 });
    await waitFor(() => connector.attempts.length === 1);
    const server = connector.last.accept();
    server.socket.once('end', () => server.socket.end());
    const result = await checked;
    expect(server.frames.map((frame) => frame.type)).toContain(FrameType.CALL); // it was asked, and never answered
    expect(result).toEqual({
      quiet: { status: 'down', code: 'ERPS_TIMEOUT', message: 'Erps call timed out after 50 ms', service: '', endpoints: [{ endpoint: 'quiet.example:4100', state: 'ready' }] },
    });
  });

  it('pingCheck is down when no server is reachable, and names why', async () => {
    const certs = await testCertificates();
    const port = await deadPort();
    const client = new ErpsClient({ host: '127.0.0.1', port, tls: certs.clients.alice, identifier: 'calc', version: '1.2.0', reconnect: false });
    clients.push(client);
    const result = await indicator.pingCheck('calc', client);
    expect(result.calc).toMatchObject({ status: 'down', code: 'ERPS_DISCONNECTED', message: expect.stringContaining('ECONNREFUSED') });
    expect(result.calc.endpoints).toEqual([{ endpoint: `127.0.0.1:${port}`, state: 'transient-failure', lastError: expect.stringContaining('ECONNREFUSED') }]);
  });

  it("a fleet client: up when the server it picks serves, with each endpoint's state in the details", async () => {
    const certs = await testCertificates();
    const port = await deadPort();
    const client = new ErpsClient({
      endpoints: [
        { host: '127.0.0.1', port: running.port },
        { host: '127.0.0.1', port },
      ],
      tls: certs.clients.alice,
      identifier: 'calc',
      version: '1.2.0',
      reconnect: { minDelayMs: 1000, maxDelayMs: 2000 },
    });
    clients.push(client);
    await client.connect();
    await waitFor(() => client.endpoints()[1]!.state === 'transient-failure');
    const result = await indicator.pingCheck('fleet', client);
    expect(result.fleet).toMatchObject({ status: 'up', serving: 'SERVING', endpoint: `127.0.0.1:${running.port}` });
    expect(result.fleet.endpoints).toEqual([
      { endpoint: `127.0.0.1:${running.port}`, state: 'ready' },
      { endpoint: `127.0.0.1:${port}`, state: 'transient-failure', lastError: expect.stringContaining('ECONNREFUSED') },
    ]);
  });

  it('isListening: down before listen(), up while listening, with the address', async () => {
    const idle = new ErpsServer({ host: '127.0.0.1', port: 0, transport: 'tcp' });
    expect(indicator.isListening('erps', idle)).toEqual({ erps: { status: 'down', server: 'idle', message: 'the Erps daemon is idle' } });
    expect(indicator.isListening('erps', running.server)).toEqual({
      erps: { status: 'up', server: 'listening', address: '127.0.0.1', port: running.port, connections: expect.any(Number) },
    });
  });
});
