import { firstValueFrom } from 'rxjs';
import { ErpsClient } from 'nestjs-erps';
import { fleetCertificates } from '../support/fleet/certs';
import { Fleet, startFleet, stopAllDaemons } from '../support/fleet/fleet';
import { pollUntil } from '../support/fleet/poll';
import { waitFor } from '../support/wait';
import { describeFleet, EndpointInfo, endpointKeys, endpointOf, fleetClient, fleetView, keyOf } from './fleet-contract';

/** What every entry has (lastError only after a failure); an implementation may add more (counters). */
const ENDPOINT_KEYS = ['host', 'port', 'state', 'inFlight', 'connections'];
const STATES = ['idle', 'connecting', 'ready', 'transient-failure', 'ejected'];

describeFleet('fleet visibility (issue 13: endpoints(), on("endpoint"), stats(), currentStatus)', () => {
  let fleet: Fleet | undefined;
  let client: ErpsClient | undefined;

  afterEach(async () => {
    await client?.close();
    await fleet?.close();
    client = undefined;
    fleet = undefined;
  });
  afterAll(stopAllDaemons);

  it('endpoints(): { host, port, state, inFlight, connections, lastError? } per endpoint; inFlight counts running calls', async () => {
    const certs = await fleetCertificates();
    fleet = await startFleet(3, certs.dir, { ids: ['a', 'b', 'c'] });
    client = fleetClient(certs, { endpoints: fleet.endpoints(), balancing: 'round-robin', connectionsPerEndpoint: 2, timeoutMs: 10_000 });
    await client.connect();
    await waitFor(
      () =>
        endpointKeys(client!, 'ready').length === 3 &&
        fleetView(client!)
          .endpoints()
          .every((e) => e.connections === 2),
      5000,
    );
    const endpoints = fleetView(client).endpoints();
    expect(endpoints.map(keyOf).sort()).toEqual(fleet.endpoints().map(keyOf).sort());
    for (const e of endpoints) {
      expect(Object.keys(e)).toEqual(expect.arrayContaining(ENDPOINT_KEYS));
      expect(e).toMatchObject({ host: '127.0.0.1', port: expect.any(Number), state: 'ready', inFlight: 0, connections: 2 });
    }
    // Each daemon sees the two connections.
    for (const daemon of fleet.daemons) expect((await daemon.totals()).connections).toBe(2);

    const running = Array.from({ length: 9 }, () => firstValueFrom(client!.send('slow', 300)));
    // Once all nine run, each endpoint's inFlight is what its daemon is running.
    const perDaemon = await pollUntil(
      async () => Promise.all(fleet!.daemons.map(async (d) => (await d.handled())[0]?.inFlight ?? 0)),
      (counts) => counts.reduce((a, b) => a + b, 0) === 9,
      3000,
    );
    const byKey = new Map(
      fleetView(client)
        .endpoints()
        .map((e) => [keyOf(e), e.inFlight]),
    );
    expect(fleet.daemons.map((d) => byKey.get(keyOf(d.endpoint)))).toEqual(perDaemon);
    await Promise.all(running);
    expect(
      fleetView(client)
        .endpoints()
        .every((e) => e.inFlight === 0),
    ).toBe(true);
  });

  it('on("endpoint") reports each state change; a dead endpoint shows its lastError; currentStatus stays connected while one is ready', async () => {
    const certs = await fleetCertificates();
    fleet = await startFleet(3, certs.dir, { ids: ['a', 'b', 'c'] });
    client = fleetClient(certs, { endpoints: fleet.endpoints() });
    const events: EndpointInfo[] = [];
    fleetView(client).on('endpoint', (info) => events.push({ ...info }));
    await client.connect();
    await waitFor(() => endpointKeys(client!, 'ready').length === 3, 5000);
    for (const daemon of fleet.daemons) {
      expect(events.some((e) => e.host === daemon.host && e.port === daemon.port && e.state === 'ready')).toBe(true);
    }
    for (const e of events) expect(STATES).toContain(e.state);

    const [a, b, c] = fleet.daemons;
    await a!.kill();
    await waitFor(() => endpointOf(client!, a!.endpoint)?.state !== 'ready', 5000);
    expect(events.some((e) => e.port === a!.port && e.state !== 'ready')).toBe(true);
    await waitFor(() => endpointOf(client!, a!.endpoint)?.lastError !== undefined, 5000);
    expect(client.currentStatus).toBe('connected');

    await b!.kill();
    await waitFor(() => endpointOf(client!, b!.endpoint)?.state !== 'ready', 5000);
    expect(client.currentStatus).toBe('connected');
    await expect(firstValueFrom(client.send<{ id: string }>('whoami', null))).resolves.toMatchObject({ id: 'c' });

    await c!.kill();
    await waitFor(() => client!.currentStatus !== 'connected', 5000);
  });

  it('stats() includes per-endpoint counts', async () => {
    const certs = await fleetCertificates();
    fleet = await startFleet(2, certs.dir, { ids: ['a', 'b'] });
    client = fleetClient(certs, { endpoints: fleet.endpoints(), balancing: 'round-robin' });
    await client.connect();
    await waitFor(() => endpointKeys(client!, 'ready').length === 2, 5000);
    const stats = client.stats() as unknown as Record<string, unknown>;
    expect(typeof stats.inFlight).toBe('number');
    // Whatever the field is called, it has one entry per endpoint.
    const perEndpoint = Object.values(stats).filter((v) => typeof v === 'object' && v !== null);
    expect(perEndpoint.some((v) => (Array.isArray(v) ? v.length : Object.keys(v).length) === 2)).toBe(true);
  });

  it('host/port still mean one endpoint', async () => {
    const certs = await fleetCertificates();
    fleet = await startFleet(1, certs.dir, { ids: ['only'] });
    client = fleetClient(certs, { host: '127.0.0.1', port: fleet.daemons[0]!.port });
    await expect(firstValueFrom(client.send<{ id: string }>('whoami', null))).resolves.toMatchObject({ id: 'only' });
    expect(fleetView(client).endpoints()).toEqual([expect.objectContaining({ host: '127.0.0.1', port: fleet.daemons[0]!.port, state: 'ready', connections: 1 })]);
  });
});
