import { lastValueFrom } from 'rxjs';
import { ErpsClient, ErpsClientOptions, ErpsEndpointInfo } from 'nestjs-erps';
import { RunningServer, startCalcServer } from './support/apps';
import { testCertificates } from './support/certs';
import { waitFor } from './support/wait';

/** One client over several in-process daemons (real mutual TLS); test/fleet/ runs them as separate processes. */
describe('a client over a fleet of daemons', () => {
  let servers: RunningServer[] = [];
  let client: ErpsClient | undefined;

  async function fleetClient(options: Partial<ErpsClientOptions>): Promise<ErpsClient> {
    const certs = await testCertificates();
    client = new ErpsClient({
      endpoints: servers.map((server) => ({ host: '127.0.0.1', port: server.port })),
      tls: certs.clients.alice,
      identifier: 'calc',
      version: '1.2.0',
      keepaliveMs: 500,
      reconnect: { minDelayMs: 20, maxDelayMs: 200 },
      ...options,
    });
    await client.connect();
    await waitFor(() => client!.endpoints().every((endpoint) => endpoint.state === 'ready'));
    return client;
  }

  beforeEach(async () => {
    servers = await Promise.all([startCalcServer(), startCalcServer(), startCalcServer()]);
  });

  afterEach(async () => {
    await client?.close();
    client = undefined;
    await Promise.all(servers.map((server) => server.close()));
  });

  it('spreads calls over every endpoint (round-robin) and reports each one', async () => {
    const fleet = await fleetClient({ balancing: 'round-robin' });
    const events: ErpsEndpointInfo[] = [];
    fleet.on('endpoint', (info) => events.push(info));
    const sums = await Promise.all(Array.from({ length: 30 }, (_, i) => lastValueFrom(fleet.send<number>('sum', [i, 1]))));
    expect(sums).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(servers.map((server) => server.probe.calls.filter((call) => call === 'sum').length)).toEqual([10, 10, 10]);
    expect(fleet.currentStatus).toBe('connected');
    const endpoints = fleet.endpoints();
    expect(endpoints).toEqual(servers.map((server) => ({ host: '127.0.0.1', port: server.port, state: 'ready', inFlight: 0, connections: 1, calls: 10 })));
    expect(fleet.stats()).toMatchObject({ connections: 3, inFlight: 0, endpoints });
    expect(events).toEqual([]);
  });

  it('a daemon that drains (GOAWAY) under load moves its calls to the others with zero errors', async () => {
    const fleet = await fleetClient({});
    const drained = servers[1]!;
    let ok = 0;
    const errors: unknown[] = [];
    let running = true;
    const worker = async (): Promise<void> => {
      while (running) {
        try {
          await lastValueFrom(fleet.send('sum.async', [1, 2]));
          ok += 1;
        } catch (err) {
          errors.push(err);
        }
      }
    };
    const workers = Array.from({ length: 50 }, () => worker());
    await waitFor(() => ok > 200, 5000);
    await drained.close();
    const closedAt = drained.probe.calls.length;
    const okAtDrain = ok;
    await waitFor(() => ok > okAtDrain + 300, 10_000);
    running = false;
    await Promise.all(workers);
    expect(errors).toEqual([]);
    expect(drained.probe.calls.length).toBe(closedAt);
    expect(fleet.endpoints()[1]!.state).not.toBe('ready');
    expect(fleet.currentStatus).toBe('connected');
  });

  it('connectionsPerEndpoint opens that many connections to each daemon and uses them all', async () => {
    const fleet = await fleetClient({ connectionsPerEndpoint: 2, balancing: 'round-robin' });
    await waitFor(() => fleet.endpoints().every((endpoint) => endpoint.connections === 2));
    const seen = await Promise.all(Array.from({ length: 12 }, () => lastValueFrom(fleet.send<{ connectionId: number }>('whoami', null))));
    expect(new Set(seen.map((who) => who.connectionId)).size).toBe(6);
    expect(fleet.stats().connections).toBe(6);
  });
});
