import { firstValueFrom } from 'rxjs';
import { ErpsClient, ErpsClientStatus, ErpsConnectionLostError } from 'nestjs-erps';
import { calcClient } from '../support/apps';
import { testCertificates } from '../support/certs';
import { waitFor } from '../support/wait';
import { ServerProcess, startServerProcess } from './fixtures/processes';

describe('a server process killed with SIGKILL mid-flight', () => {
  let server: ServerProcess | undefined;
  let client: ErpsClient | undefined;

  afterEach(async () => {
    await client?.close();
    await server?.kill();
  });

  it('settles all 500 in-flight calls with a typed error within 1 s, then reconnects to the restarted server by itself', async () => {
    const certs = await testCertificates();
    server = await startServerProcess(certs.dir);
    const port = server.port;
    client = await calcClient(port, { reconnect: { minDelayMs: 20, maxDelayMs: 100 }, timeoutMs: 30_000 });
    const statuses: ErpsClientStatus[] = [];
    client.on('status', (status: ErpsClientStatus) => statuses.push(status));
    await expect(firstValueFrom(client.send('sum', [1, 2]))).resolves.toBe(3);

    const settled: Array<{ error: unknown; at: number }> = [];
    const calls = Array.from({ length: 500 }, () =>
      firstValueFrom(client!.send('slow', 60_000)).then(
        () => settled.push({ error: undefined, at: Date.now() }),
        (error: unknown) => settled.push({ error, at: Date.now() }),
      ),
    );
    await waitFor(() => client!.stats().inFlight === 500);
    const killedAt = Date.now();
    await server.kill('SIGKILL');
    await Promise.all(calls);

    expect(settled).toHaveLength(500);
    for (const { error, at } of settled) {
      expect(error).toBeInstanceOf(ErpsConnectionLostError);
      expect(at - killedAt).toBeLessThan(1000);
    }
    expect(client.stats().inFlight).toBe(0);

    server = await startServerProcess(certs.dir, port);
    await waitFor(() => client!.currentStatus === 'connected', 5000);
    await expect(firstValueFrom(client.send('sum', [2, 3]))).resolves.toBe(5);

    // connected → lost → retrying (refused while the server is down) → connected again, no user action.
    expect(statuses[0]).toBe('connecting');
    expect(statuses[1]).toBe('connected');
    expect(statuses[2]).toBe('disconnected');
    expect(statuses[3]).toBe('reconnecting');
    expect(statuses[statuses.length - 1]).toBe('connected');
    expect(statuses.slice(3, -1).every((s) => s === 'reconnecting' || s === 'disconnected')).toBe(true);
  });
});
