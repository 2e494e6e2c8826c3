import { CallHandler, CanActivate, Controller, ExecutionContext, Injectable, INestMicroservice, NestInterceptor } from '@nestjs/common';
import { APP_GUARD, APP_INTERCEPTOR } from '@nestjs/core';
import { MessagePattern } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { lastValueFrom, Observable, tap } from 'rxjs';
import { ErpsClient, ErpsExceptionFilter, ErpsHealthUnsupportedError, ErpsServer } from 'nestjs-erps';
import { createCodec } from '../src/protocol/codec';
import { encodeFrame, FrameType } from '../src/protocol/frame';
import { calcClient, clientFor, RunningServer, startCalcServer } from './support/apps';
import { CapturedLogs } from './support/captured-logs';
import { testCertificates } from './support/certs';
import { FakeConnector } from './support/fake-connector';
import { rawFrames, rawPeer } from './support/raw-peer';
import { waitFor } from './support/wait';

const codec = createCodec('msgpack');

/** Counts every time Nest's pipeline runs for a message: guards, interceptors, handlers, authorize. */
class Seen {
  guard = 0;
  interceptor = 0;
  handler = 0;
  authorize = 0;
}
const seen = new Seen();

@Injectable()
class CountingGuard implements CanActivate {
  canActivate(): boolean {
    seen.guard++;
    return true;
  }
}

@Injectable()
class CountingInterceptor implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    seen.interceptor++;
    return next.handle().pipe(tap(() => undefined));
  }
}

@Controller()
class ShadowingController {
  /** A user handler for the reserved pattern: the transport answers health checks itself, so it never runs. */
  @MessagePattern('$erps.health')
  health(): unknown {
    seen.handler++;
    return { status: 'SERVING', from: 'user handler' };
  }

  @MessagePattern('ping')
  ping(): string {
    seen.handler++;
    return 'pong';
  }
}

describe('the health service ($erps.health), over mutual TLS', () => {
  let running: RunningServer;
  let client: ErpsClient;

  beforeAll(async () => {
    running = await startCalcServer({ drainTimeoutMs: 5000 });
    client = await clientFor(running);
  });

  afterAll(async () => {
    await client.close();
    await running.close();
  });

  it("'' is the server as a whole: SERVING once listening, with the round trip and the endpoint that answered", async () => {
    expect(running.server.currentStatus).toBe('listening');
    expect(running.server.servingStatus()).toBe('SERVING');
    const result = await client.health();
    expect(result).toEqual({ status: 'SERVING', rttMs: expect.any(Number), endpoint: { host: '127.0.0.1', port: running.port } });
    expect(result.rttMs).toBeGreaterThan(0);
  });

  it('per service: what setServingStatus set, SERVICE_UNKNOWN for a name never set; the overall status can be set too', async () => {
    await expect(client.health('calc')).resolves.toMatchObject({ status: 'SERVICE_UNKNOWN' });
    running.server.setServingStatus('calc', 'SERVING');
    running.server.setServingStatus('billing', 'NOT_SERVING');
    await expect(client.health('calc')).resolves.toMatchObject({ status: 'SERVING' });
    await expect(client.health('billing')).resolves.toMatchObject({ status: 'NOT_SERVING' });
    await expect(client.health('nope')).resolves.toMatchObject({ status: 'SERVICE_UNKNOWN' });
    running.server.setServingStatus('', 'NOT_SERVING');
    await expect(client.health()).resolves.toMatchObject({ status: 'NOT_SERVING' });
    running.server.setServingStatus('', 'SERVING');
    await expect(client.health('')).resolves.toMatchObject({ status: 'SERVING' });
    expect(() => running.server.setServingStatus('calc', 'DOWN' as never)).toThrow(/'SERVING' or 'NOT_SERVING'/);
    expect(() => running.server.setServingStatus(7 as never, 'SERVING')).toThrow(/must be a string/);
  });

  it('is not a user call: no handler ran, not in stats, and ordinary calls go on beside it', async () => {
    const before = running.probe.calls.length;
    await Promise.all([client.health(), client.health('calc'), lastValueFrom(client.send('sum', [1, 2]))]);
    expect(running.probe.calls.length).toBe(before + 1);
    expect(running.server.stats().inFlight).toBe(0);
  });
});

describe('the health service while the daemon drains', () => {
  it('answers NOT_SERVING for every service as soon as the drain starts, while running calls finish and new calls get ERPS_GOAWAY', async () => {
    const running = await startCalcServer({ drainTimeoutMs: 10_000 });
    running.server.setServingStatus('calc', 'SERVING');
    const client = await clientFor(running);
    const peer = await rawPeer(running.port);
    try {
      await expect(client.health('calc')).resolves.toMatchObject({ status: 'SERVING' });
      // A raw peer ignores GOAWAY, as a client whose calls crossed it would: its calls still reach the draining session.
      peer.write(rawFrames.hello());
      await waitFor(() => peer.frames.some((frame) => frame.type === FrameType.WELCOME));
      const slow = lastValueFrom(client.send('slow', 400));
      await waitFor(() => running.probe.active === 1);
      const closed = running.server.close();
      await waitFor(() => peer.frames.some((frame) => frame.type === FrameType.GOAWAY));
      expect(running.server.currentStatus).toBe('draining');
      expect(running.server.servingStatus('')).toBe('NOT_SERVING');
      peer.write(rawFrames.callValue(1, '$erps.health', { service: '' }));
      peer.write(rawFrames.callValue(2, '$erps.health', { service: 'calc' }));
      peer.write(rawFrames.callValue(3, '$erps.health', { service: 'never-set' }));
      peer.write(rawFrames.callValue(4, 'sum', [1, 2]));
      await waitFor(() => peer.frames.filter((frame) => frame.type === FrameType.REPLY || frame.type === FrameType.ERROR).length === 4);
      const answers = peer.frames.filter((frame) => frame.type === FrameType.REPLY || frame.type === FrameType.ERROR).map((frame) => [frame.id, codec.decode(frame.body)]);
      expect(answers).toEqual([
        [1, { status: 'NOT_SERVING' }],
        [2, { status: 'NOT_SERVING' }],
        [3, { status: 'SERVICE_UNKNOWN' }],
        [4, expect.objectContaining({ code: 'ERPS_GOAWAY' })],
      ]);
      // The client got GOAWAY too: it sends nothing new to a draining server, health checks included.
      await waitFor(() => client.endpoints()[0]!.state !== 'ready');
      await expect(client.health()).rejects.toMatchObject({ code: 'ERPS_DISCONNECTED' });
      await expect(slow).resolves.toBe('done');
      peer.socket.destroy();
      await closed;
      expect(running.server.currentStatus).toBe('closed');
      expect(running.server.servingStatus()).toBe('NOT_SERVING');
    } finally {
      peer.socket.destroy();
      await client.close();
      await running.close();
    }
  });
});

describe('the health service is not a user call', () => {
  let app: INestMicroservice;
  let server: ErpsServer;
  const logs = new CapturedLogs();

  beforeAll(async () => {
    const certs = await testCertificates();
    const moduleRef = await Test.createTestingModule({
      controllers: [ShadowingController],
      providers: [
        { provide: APP_GUARD, useClass: CountingGuard },
        { provide: APP_INTERCEPTOR, useClass: CountingInterceptor },
      ],
    }).compile();
    server = new ErpsServer({
      host: '127.0.0.1',
      port: 0,
      tls: certs.server,
      identifier: 'calc',
      versions: '^1.0.0',
      authorize: () => {
        seen.authorize++;
        return true;
      },
    });
    app = moduleRef.createNestMicroservice({ strategy: server, logger: logs });
    app.useGlobalFilters(new ErpsExceptionFilter());
    await app.listen();
  });

  afterAll(async () => {
    await app.close();
  });

  it('no handler, guard, interceptor or authorize runs for it, even with a handler for "$erps.health" (warned of at listen)', async () => {
    const client = await calcClient(server.address().port);
    try {
      await expect(lastValueFrom(client.send('ping', {}))).resolves.toBe('pong');
      expect(seen).toEqual({ guard: 1, interceptor: 1, handler: 1, authorize: 1 });
      await expect(client.health()).resolves.toMatchObject({ status: 'SERVING' });
      await expect(client.health('x')).resolves.toMatchObject({ status: 'SERVICE_UNKNOWN' });
      // Through send() too: the reserved pattern is the transport's, whoever asks.
      await expect(lastValueFrom(client.send('$erps.health', { service: '' }))).resolves.toEqual({ status: 'SERVING' });
      expect(seen).toEqual({ guard: 1, interceptor: 1, handler: 1, authorize: 1 });
      expect(logs.warnings('"$erps.health"')).toEqual([expect.stringContaining('reserved for the Erps transport')]);
    } finally {
      await client.close();
    }
  });
});

describe('client.health() against a server without the health service', () => {
  it('reports it clearly: ErpsHealthUnsupportedError naming the endpoint, the ERPS_NO_HANDLER reply as its cause', async () => {
    const connector = new FakeConnector();
    const client = new ErpsClient({ host: 'old.example', port: 4100, transport: 'tcp', identifier: 'calc', version: '1.0.0', keepaliveMs: 0 }, connector.connect);
    try {
      const asked = client.health();
      await waitFor(() => connector.attempts.length === 1);
      const server = connector.last.accept();
      server.socket.once('end', () => server.socket.end()); // closes when the client does
      await waitFor(() => server.frames.some((frame) => frame.type === FrameType.CALL));
      const call = server.frames.find((frame) => frame.type === FrameType.CALL)!;
      const noHandler = { status: 'error', code: 'ERPS_NO_HANDLER', message: 'There is no matching message handler defined in the remote service for pattern "$erps.health".' };
      server.write(encodeFrame(FrameType.ERROR, 0, call.id, codec.encode(noHandler)));
      const error = await asked.catch((err: unknown) => err);
      expect(error).toBeInstanceOf(ErpsHealthUnsupportedError);
      expect(error).toMatchObject({ code: 'ERPS_HEALTH_UNSUPPORTED', cause: noHandler });
      expect((error as Error).message).toBe('old.example:4100 does not answer Erps health checks: it predates the health service (ERPS_NO_HANDLER for "$erps.health")');

      // A user's "$erps.health" handler on such a server answers something that is no health reply: refused too.
      const again = client.health();
      await waitFor(() => server.frames.filter((frame) => frame.type === FrameType.CALL).length === 2);
      const second = server.frames.filter((frame) => frame.type === FrameType.CALL)[1]!;
      server.write(encodeFrame(FrameType.REPLY, 0, second.id, codec.encode({ ok: true })));
      await expect(again).rejects.toMatchObject({ code: 'ERPS_HEALTH_UNSUPPORTED', message: expect.stringContaining('something else than a health reply: {"ok":true}') });
    } finally {
      await client.close();
    }
  });
});
