import { firstValueFrom } from 'rxjs';
import { ErpsClient } from 'nestjs-erps';
import { freePort } from '../faults/fixtures/processes';
import { fleetCertificates } from '../support/fleet/certs';
import { Fleet, startFleet, stopAllDaemons } from '../support/fleet/fleet';
import { pollUntil } from '../support/fleet/poll';
import { waitFor } from '../support/wait';
import { Balancing, describeFleet, endpointKeys, endpointOf, fleetClient, spread } from './fleet-contract';

/** Counts, never timings: a shared 2-core machine makes latencies noisy, shares are stable. */
describeFleet('fleet balancing (issue 13: least-in-flight, round-robin, pick-first; ready endpoints only)', () => {
  let fleet: Fleet | undefined;
  const clients: ErpsClient[] = [];

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await fleet?.close();
    fleet = undefined;
  });
  afterAll(stopAllDaemons);

  async function clientFor(balancing: Balancing | undefined, endpoints = fleet!.endpoints()): Promise<ErpsClient> {
    const certs = await fleetCertificates();
    const client = fleetClient(certs, { endpoints, ...(balancing ? { balancing } : {}), timeoutMs: 10_000 });
    clients.push(client);
    await client.connect();
    await waitFor(() => endpointKeys(client, 'ready').length === endpoints.length, 5000);
    return client;
  }

  it('a slow endpoint gets fewer calls under least-in-flight than under round-robin', async () => {
    const certs = await fleetCertificates();
    // 'slow' answers 20 ms later than the others on every call.
    fleet = await startFleet(3, certs.dir, { ids: ['fast1', 'fast2', 'slow'], delays: [0, 0, 20] });
    const share = async (balancing: Balancing): Promise<number> => {
      const client = await clientFor(balancing);
      const counts = await spread(client, 600, 30);
      return (counts.slow ?? 0) / 600;
    };
    const roundRobin = await share('round-robin');
    const leastInFlight = await share('least-in-flight');
    // Round-robin gives each endpoint its turn, slow or not; least-in-flight sees slow's calls pile up.
    expect(roundRobin).toBeGreaterThan(0.3);
    expect(leastInFlight).toBeLessThan(roundRobin);
    expect(leastInFlight).toBeLessThan(0.25);
  });

  it('least-in-flight is the default', async () => {
    const certs = await fleetCertificates();
    fleet = await startFleet(2, certs.dir, { ids: ['fast', 'slow'], delays: [0, 50] });
    const counts = await spread(await clientFor(undefined), 300, 20);
    expect(counts.fast ?? 0).toBeGreaterThan(2 * (counts.slow ?? 0));
  });

  it('round-robin takes the endpoints in turn', async () => {
    const certs = await fleetCertificates();
    fleet = await startFleet(3, certs.dir, { ids: ['a', 'b', 'c'] });
    const counts = await spread(await clientFor('round-robin'), 300, 1);
    expect(Object.keys(counts).sort()).toEqual(['a', 'b', 'c']);
    const values = Object.values(counts);
    expect(Math.max(...values) - Math.min(...values)).toBeLessThanOrEqual(3);
  });

  it('pick-first sends everything to the first ready endpoint, and moves on when it dies', async () => {
    const certs = await fleetCertificates();
    fleet = await startFleet(3, certs.dir, { ids: ['first', 'second', 'third'] });
    const client = await clientFor('pick-first');
    expect(await spread(client, 50)).toEqual({ first: 50 });
    await fleet.byId('first').kill();
    await waitFor(() => endpointOf(client, fleet!.byId('first').endpoint)?.state !== 'ready', 5000);
    const after = await spread(client, 50);
    expect(Object.keys(after)).toHaveLength(1);
    expect(['second', 'third']).toContain(Object.keys(after)[0]);
  });

  it('calls and casts go to ready endpoints only', async () => {
    const certs = await fleetCertificates();
    fleet = await startFleet(2, certs.dir, { ids: ['a', 'b'] });
    const down = { host: '127.0.0.1', port: await freePort() };
    const client = fleetClient(certs, { endpoints: [down, ...fleet.endpoints()], balancing: 'round-robin', timeoutMs: 5000 });
    clients.push(client);
    await client.connect();
    await waitFor(() => endpointKeys(client, 'ready').length === 2, 5000);
    const counts = await spread(client, 60, 6);
    expect(Object.keys(counts).sort()).toEqual(['a', 'b']);
    expect((counts.a ?? 0) + (counts.b ?? 0)).toBe(60);
    for (let i = 0; i < 40; i++) client.emit('tick', i);
    await pollUntil(
      async () => (await fleet!.byId('a').totals()).casts + (await fleet!.byId('b').totals()).casts,
      (n) => n === 40,
    );
    expect((await fleet.byId('a').totals()).casts).toBeGreaterThan(0);
    expect((await fleet.byId('b').totals()).casts).toBeGreaterThan(0);
    await expect(firstValueFrom(client.send('sum', [1, 2]))).resolves.toBe(3);
  });
});
