/**
 * A real HTTP app with TerminusModule (HealthCheckService + ErpsHealthIndicator) in front of an Erps daemon over
 * mutual TLS: /health is 200 while the daemon serves, 503 while it drains and once it is stopped.
 */
import { Controller, Get, Inject, INestApplication, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern } from '@nestjs/microservices';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { lastValueFrom } from 'rxjs';
import { ErpsClient, ErpsServer } from 'nestjs-erps';
import { ErpsHealthIndicator } from 'nestjs-erps/terminus';
import { clientFor, RunningServer, startCalcServer } from '../support/apps';
import { CalcController } from '../support/calc.controller';
import { urlOf } from '../support/http-url';
import { waitFor } from '../support/wait';

/** A call that runs until the test opens the gate: it keeps a drain going for as long as the test needs. */
class Gate {
  running = 0;
  open: () => void = () => undefined;
}
const gate = new Gate();

@Controller()
class GateController {
  @MessagePattern('gate')
  async wait(): Promise<string> {
    gate.running++;
    await new Promise<void>((resolve) => (gate.open = resolve));
    return 'through';
  }
}

const ERPS_CLIENT = Symbol('ERPS_CLIENT');
const ERPS_SERVER = Symbol('ERPS_SERVER');

@Controller('health')
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly erps: ErpsHealthIndicator,
    @Inject(ERPS_CLIENT) private readonly client: ErpsClient,
    @Inject(ERPS_SERVER) private readonly server: ErpsServer,
  ) {}

  @Get()
  @HealthCheck()
  check(): Promise<unknown> {
    return this.health.check([() => this.erps.pingCheck('calc', this.client, { timeoutMs: 3000 })]);
  }

  @Get('daemon')
  @HealthCheck()
  daemon(): Promise<unknown> {
    return this.health.check([() => this.erps.isListening('erps', this.server)]);
  }
}

interface HealthBody {
  status: 'ok' | 'error';
  info?: Record<string, Record<string, unknown>>;
  error?: Record<string, Record<string, unknown>>;
  details: Record<string, Record<string, unknown>>;
}

async function get(url: string): Promise<{ status: number; body: HealthBody }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: response.status, body: (await response.json()) as HealthBody };
}

describe('@nestjs/terminus: an HTTP /health route with ErpsHealthIndicator', () => {
  let running: RunningServer;
  let client: ErpsClient;
  let app: INestApplication;
  let url: string;

  beforeAll(async () => {
    running = await startCalcServer({ drainTimeoutMs: 20_000 }, { controllers: [CalcController, GateController] });
    client = await clientFor(running, { reconnect: { minDelayMs: 20, maxDelayMs: 100 } });
    @Module({
      imports: [TerminusModule],
      controllers: [HealthController],
      providers: [ErpsHealthIndicator, { provide: ERPS_CLIENT, useValue: client }, { provide: ERPS_SERVER, useValue: running.server }],
    })
    class HealthModule {}
    app = await NestFactory.create(HealthModule, { logger: false });
    await app.listen(0, '127.0.0.1');
    url = urlOf(app);
  });

  afterAll(async () => {
    await app?.close();
    await client?.close();
    await running?.close();
  });

  it('200 while the daemon serves: a real round trip, with the status, the round trip and each endpoint', async () => {
    const { status, body } = await get(`${url}/health`);
    expect(status).toBe(200);
    expect(body.status).toBe('ok');
    expect(body.info?.calc).toEqual({
      status: 'up',
      service: '',
      serving: 'SERVING',
      rttMs: expect.any(Number),
      endpoint: `127.0.0.1:${running.port}`,
      endpoints: [{ endpoint: `127.0.0.1:${running.port}`, state: 'ready' }],
    });
    const daemon = await get(`${url}/health/daemon`);
    expect(daemon.status).toBe(200);
    expect(daemon.body.info?.erps).toEqual({ status: 'up', server: 'listening', address: '127.0.0.1', port: running.port, connections: 1 });
  });

  it('503 while the daemon drains (a running call keeps the drain going), and 503 once it is stopped', async () => {
    const call = lastValueFrom(client.send<string>('gate', {}));
    await waitFor(() => gate.running === 1);
    const closed = running.server.close();
    try {
      expect(running.server.currentStatus).toBe('draining');
      const draining = await get(`${url}/health`);
      expect(draining.status).toBe(503);
      expect(draining.body.status).toBe('error');
      expect(draining.body.error?.calc).toMatchObject({ status: 'down', message: expect.any(String), endpoints: [expect.objectContaining({ endpoint: `127.0.0.1:${running.port}` })] });
      const daemon = await get(`${url}/health/daemon`);
      expect(daemon.status).toBe(503);
      expect(daemon.body.error?.erps).toEqual({ status: 'down', server: 'draining', message: 'the Erps daemon is draining' });
      expect(running.server.currentStatus).toBe('draining');
    } finally {
      gate.open();
      await expect(call).resolves.toBe('through');
      await closed;
    }
    const stopped = await get(`${url}/health`);
    expect(stopped.status).toBe(503);
    expect(stopped.body.error?.calc).toMatchObject({ status: 'down', code: 'ERPS_DISCONNECTED' });
    const daemon = await get(`${url}/health/daemon`);
    expect(daemon.status).toBe(503);
    expect(daemon.body.error?.erps).toMatchObject({ status: 'down', server: 'closed' });
  });
});
