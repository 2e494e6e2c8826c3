import { firstValueFrom, Subscription } from 'rxjs';
import { ErpsClient, ErpsConnectionLostError, ErpsQueueFullError, ErpsTimeoutError } from 'nestjs-erps';
import { calcClient, clientFor, RunningServer, startCalcServer } from '../support/apps';
import { startFeaturesServer } from '../support/features-app';
import { waitFor } from '../support/wait';
import { BlackHoleProxy } from './fixtures/black-hole-proxy';
import { freePort } from './fixtures/processes';

const fastReconnect = { minDelayMs: 10, maxDelayMs: 50 };

describe('heartbeat: a peer that stops answering without closing', () => {
  it('is declared dead within keepaliveMs × maxMissedPings (+ margin), and the client reconnects once traffic flows', async () => {
    const running = await startFeaturesServer({ keepaliveMs: 100 });
    const proxy = new BlackHoleProxy({ host: '127.0.0.1', port: running.port });
    const proxyPort = await proxy.listen();
    const client = await calcClient(proxyPort, { keepaliveMs: 100, maxMissedPings: 2, reconnect: fastReconnect, connectTimeoutMs: 300, timeoutMs: 10_000 });
    try {
      await expect(firstValueFrom(client.send('sum', [1, 1]))).resolves.toBe(2);
      const pending = firstValueFrom(client.send('stall', {})).catch((err: unknown) => ({ err, at: Date.now() }));
      await new Promise((resolve) => setTimeout(resolve, 20));
      proxy.blackHole = true;
      const start = Date.now();
      const outcome = (await pending) as { err: unknown; at: number };
      expect(outcome.err).toBeInstanceOf(ErpsConnectionLostError);
      expect((outcome.err as Error).message).toMatch(/answered no PING/);
      expect(outcome.at - start).toBeLessThan(100 * 2 + 150);
      expect(client.currentStatus).not.toBe('connected');
      proxy.blackHole = false;
      await waitFor(() => client.currentStatus === 'connected', 3000);
      await expect(firstValueFrom(client.send('sum', [2, 2]))).resolves.toBe(4);
    } finally {
      await client.close();
      await proxy.close();
      await running.close();
    }
  });
});

describe('timeouts and cancellation reach the server', () => {
  let running: RunningServer;
  let client: ErpsClient;

  beforeAll(async () => {
    running = await startFeaturesServer();
    client = await clientFor(running);
  });

  afterAll(async () => {
    await client.close();
    await running.close();
  });

  it('a call past timeoutMs fails with ErpsTimeoutError and the server tears the handler down', async () => {
    const torndown = running.probe.torndown;
    const err = await firstValueFrom(client.send('stall', {}, { timeoutMs: 50 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ErpsTimeoutError);
    expect((err as ErpsTimeoutError).code).toBe('ERPS_TIMEOUT');
    await waitFor(() => running.probe.torndown === torndown + 1);
    expect(running.probe.active).toBe(0);
    expect(running.server.stats().inFlight).toBe(0);
  });

  it('unsubscribing from an interval stream stops the server producing', async () => {
    const torndown = running.probe.torndown;
    const seen: number[] = [];
    const subscription = client.send<number>('ticks', {}).subscribe((n) => seen.push(n));
    await waitFor(() => seen.length >= 3);
    subscription.unsubscribe();
    await waitFor(() => running.probe.torndown === torndown + 1);
    const produced = running.probe.produced;
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(running.probe.produced).toBe(produced);
    expect(running.server.stats().inFlight).toBe(0);
  });

  it('a client that disconnects mid-stream leaves no handler subscription behind', async () => {
    const other = await clientFor(running, {}, 'bob');
    const torndown = running.probe.torndown;
    const seen: number[] = [];
    const subscriptions: Subscription[] = [other.send<number>('ticks', {}).subscribe({ next: (n) => seen.push(n), error: () => undefined })];
    subscriptions.push(other.send('stall', {}, { timeoutMs: 0 }).subscribe({ error: () => undefined }));
    await waitFor(() => seen.length >= 2 && running.probe.active === 1);
    await other.close();
    await waitFor(() => running.probe.torndown === torndown + 2);
    expect(running.probe.active).toBe(0);
    expect(running.server.connections().map((c) => c.peer?.cn)).toEqual(['alice']);
    const produced = running.probe.produced;
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(running.probe.produced).toBe(produced);
  });
});

describe('waitForReady', () => {
  it('queues calls made before the server exists and completes them once it starts', async () => {
    const port = await freePort();
    const client = await calcClient(port, { waitForReady: true, reconnect: fastReconnect, timeoutMs: 5000 });
    let running: RunningServer | undefined;
    try {
      const calls = Promise.all([1, 2, 3].map((n) => firstValueFrom(client.send('sum', [n, n]))));
      await waitFor(() => client.stats().queued === 3);
      running = await startCalcServer({ port });
      await expect(calls).resolves.toEqual([2, 4, 6]);
    } finally {
      await client.close();
      await running?.close();
    }
  });

  it('fails fast without it, and overflowing maxQueued with it is a typed error', async () => {
    const port = await freePort();
    const client = await calcClient(port, { reconnect: fastReconnect, maxQueued: 2, timeoutMs: 200 });
    try {
      await expect(client.connect()).rejects.toMatchObject({ code: 'ERPS_DISCONNECTED' });
      await expect(firstValueFrom(client.send('sum', [1]))).rejects.toMatchObject({ code: 'ERPS_DISCONNECTED' });
      const queued = [1, 2].map(() => firstValueFrom(client.send('sum', [1], { waitForReady: true })).catch((e: unknown) => e));
      await expect(firstValueFrom(client.send('sum', [1], { waitForReady: true }))).rejects.toBeInstanceOf(ErpsQueueFullError);
      for (const err of await Promise.all(queued)) expect(err).toBeInstanceOf(ErpsTimeoutError);
    } finally {
      await client.close();
    }
  });
});

describe('graceful drain', () => {
  it('close() during 200 slow calls answers all of them; later calls go to a new server on the same port', async () => {
    const first = await startCalcServer();
    const port = first.port;
    const client = await calcClient(port, { reconnect: fastReconnect, waitForReady: true });
    let second: RunningServer | undefined;
    try {
      const calls = Promise.all(Array.from({ length: 200 }, () => firstValueFrom(client.send('slow', 150))));
      await waitFor(() => first.server.stats().inFlight === 200);
      const closing = first.close();
      await expect(calls).resolves.toEqual(Array(200).fill('done'));
      await closing;
      second = await startCalcServer({ port });
      await expect(firstValueFrom(client.send('sum', [5, 5]))).resolves.toBe(10);
      expect(second.probe.calls).toEqual(['sum']);
      expect(first.probe.calls).toHaveLength(0);
    } finally {
      await client.close();
      await second?.close();
    }
  });
});
