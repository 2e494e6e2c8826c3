import { firstValueFrom } from 'rxjs';
import { ErpsClient } from 'nestjs-erps';
import { calcClient, RunningServer, startCalcServer } from './support/apps';
import { waitFor } from './support/wait';

describe('stats() and Nest processing hooks', () => {
  let running: RunningServer;
  let client: ErpsClient;

  beforeAll(async () => {
    running = await startCalcServer();
    client = await calcClient(running.port);
  });

  afterAll(async () => {
    await client.close();
    await running.close();
  });

  it('counts calls in flight on both sides, and nothing once they are answered', async () => {
    const slow = Array.from({ length: 7 }, () => firstValueFrom(client.send('slow', 400)));
    // Long enough handlers and a wait on the server's count: a loaded machine must not turn this flaky.
    await waitFor(() => running.server.stats().inFlight === 7);
    expect(client.stats()).toMatchObject({ status: 'connected', inFlight: 7, queued: 0, connections: 1 });
    expect(running.server.stats()).toMatchObject({ connections: 1, inFlight: 7, writeBufferedBytes: 0, partialFrameBytes: 0 });
    await Promise.all(slow);
    expect(client.stats().inFlight).toBe(0);
    expect(running.server.stats().inFlight).toBe(0);
  });

  it('runs processing start/end hooks around each call when installed (instrumentation)', async () => {
    const server = running.server as unknown as {
      setOnProcessingStartHook?: (hook: (transportId: symbol, ctx: unknown, done: () => Promise<unknown>) => unknown) => void;
      setOnProcessingEndHook?: (hook: (transportId: symbol, ctx: unknown) => void) => void;
    };
    if (server.setOnProcessingStartHook === undefined || server.setOnProcessingEndHook === undefined) return; // older Nest
    const seen: string[] = [];
    server.setOnProcessingStartHook((_id, _ctx, done) => {
      seen.push('start');
      return done();
    });
    server.setOnProcessingEndHook(() => seen.push('end'));
    await expect(firstValueFrom(client.send('sum', [1, 2]))).resolves.toBe(3);
    expect(seen).toEqual(['start', 'end']);
  });
});
