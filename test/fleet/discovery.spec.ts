import { ErpsClient } from 'nestjs-erps';
import { TestDnsServer } from '../support/dns-server';
import { fleetCertificates, FLEET_DNS_NAME } from '../support/fleet/certs';
import { Fleet, startFleet, stopAllDaemons } from '../support/fleet/fleet';
import { startLoad, loadClock } from '../support/fleet/load';
import { pollUntil } from '../support/fleet/poll';
import { waitFor } from '../support/wait';
import { describeFleet, endpointKeys, fleetClient, keyOf, spread } from './fleet-contract';

const SRV_NAME = `_erps._tcp.${FLEET_DNS_NAME}`;
const REFRESH_MS = 200;

/**
 * Discovery over a real DNS server on loopback. A DNS A-record fleet is one port on several addresses: daemons
 * listen on 127.0.0.2, .3, .4... with the same port (Linux answers on all of 127.0.0.0/8), and the fleet
 * certificate covers those addresses and calc.test.
 */
describeFleet('fleet discovery (issue 13: dns, srv, resolve; refreshMs; a failing resolver keeps the last list)', () => {
  let dns: TestDnsServer;
  let fleet: Fleet | undefined;
  let client: ErpsClient | undefined;

  beforeEach(async () => {
    dns = await TestDnsServer.start();
  });
  afterEach(async () => {
    await client?.close();
    await fleet?.close();
    await dns.close();
    client = undefined;
    fleet = undefined;
  });
  afterAll(stopAllDaemons);

  async function dnsFleet(): Promise<Fleet> {
    const certs = await fleetCertificates();
    return startFleet(3, certs.dir, { hosts: ['127.0.0.2', '127.0.0.3', '127.0.0.4'], samePort: true, ids: ['two', 'three', 'four'] });
  }

  it('{ dns, port }: every A record is an endpoint; an address added and one removed mid-run are followed within refreshMs, with no failed call', async () => {
    const certs = await fleetCertificates();
    fleet = await dnsFleet();
    const port = fleet.daemons[0]!.port;
    dns.setA(FLEET_DNS_NAME, ['127.0.0.2', '127.0.0.3']);
    client = fleetClient(certs, { discovery: { dns: FLEET_DNS_NAME, port, servers: [dns.address], refreshMs: REFRESH_MS }, balancing: 'round-robin' });
    await client.connect();
    await waitFor(() => endpointKeys(client!, 'ready').length === 2, 5000);
    expect(endpointKeys(client)).toEqual([`127.0.0.2:${port}`, `127.0.0.3:${port}`]);
    const load = startLoad(client, { inflight: 10 });
    await waitFor(() => (load.okBy().two ?? 0) > 5 && (load.okBy().three ?? 0) > 5, 5000);

    // A fourth address appears: dialled, then given calls.
    dns.setA(FLEET_DNS_NAME, ['127.0.0.2', '127.0.0.3', '127.0.0.4']);
    await waitFor(() => endpointKeys(client!, 'ready').includes(`127.0.0.4:${port}`), 5000);
    await waitFor(() => (load.okBy().four ?? 0) > 5, 5000);

    // One disappears: drained (its calls finish), then gone; it gets no calls after that.
    dns.setA(FLEET_DNS_NAME, ['127.0.0.3', '127.0.0.4']);
    await waitFor(() => !endpointKeys(client!).includes(`127.0.0.2:${port}`), 5000);
    const removedAt = loadClock();
    await waitFor(() => load.okSince(removedAt) >= 100, 10_000);
    const outcomes = await load.stop();
    expect(outcomes.filter((o) => !o.ok)).toEqual([]);
    // Calls already running on two when it went finished there; none started later went to it.
    expect(new Set(outcomes.filter((o) => o.startedAt >= removedAt).map((o) => o.answeredBy))).toEqual(new Set(['three', 'four']));
  });

  it('{ srv }: SRV records give host and port; a target added and one removed are followed', async () => {
    const certs = await fleetCertificates();
    // SRV fleets may use any ports: three daemons on 127.0.0.1, each its own port.
    fleet = await startFleet(3, certs.dir, { ids: ['s1', 's2', 's3'] });
    const [s1, s2, s3] = fleet.daemons;
    dns.setA(`a.${FLEET_DNS_NAME}`, ['127.0.0.1']).setA(`b.${FLEET_DNS_NAME}`, ['127.0.0.1']);
    dns.setSrv(SRV_NAME, [
      { target: `a.${FLEET_DNS_NAME}`, port: s1!.port },
      { target: `b.${FLEET_DNS_NAME}`, port: s2!.port },
    ]);
    client = fleetClient(certs, { discovery: { srv: SRV_NAME, servers: [dns.address], refreshMs: REFRESH_MS }, balancing: 'round-robin' });
    await client.connect();
    await waitFor(() => endpointKeys(client!, 'ready').length === 2, 5000);
    expect(Object.keys(await spread(client, 20)).sort()).toEqual(['s1', 's2']);

    dns.setSrv(SRV_NAME, [
      { target: `b.${FLEET_DNS_NAME}`, port: s2!.port },
      { target: `b.${FLEET_DNS_NAME}`, port: s3!.port },
    ]);
    await waitFor(() => endpointKeys(client!, 'ready').length === 2 && endpointKeys(client!).every((k) => !k.endsWith(`:${s1!.port}`)), 5000);
    expect(Object.keys(await spread(client, 20)).sort()).toEqual(['s2', 's3']);
  });

  it('a failing resolver (SERVFAIL, no answer, NXDOMAIN) keeps the last good list; recovery is followed again', async () => {
    const certs = await fleetCertificates();
    fleet = await dnsFleet();
    const port = fleet.daemons[0]!.port;
    dns.setA(FLEET_DNS_NAME, ['127.0.0.2', '127.0.0.3']);
    client = fleetClient(certs, { discovery: { dns: FLEET_DNS_NAME, port, servers: [dns.address], refreshMs: REFRESH_MS }, balancing: 'round-robin' });
    await client.connect();
    await waitFor(() => endpointKeys(client!, 'ready').length === 2, 5000);
    const good = endpointKeys(client);

    for (const failure of ['servfail', 'drop', 'nxdomain'] as const) {
      if (failure === 'nxdomain') dns.fail(false).remove(FLEET_DNS_NAME);
      else dns.fail(failure);
      const since = Date.now();
      // At least two refreshes went to the failing server...
      await pollUntil(
        async () => dns.queryCount(FLEET_DNS_NAME, { since }),
        (n) => n >= 2,
        10_000,
      );
      // ...and the fleet is what it was, serving.
      expect(endpointKeys(client)).toEqual(good);
      expect(Object.keys(await spread(client, 10)).sort()).toEqual(['three', 'two']);
    }

    dns.setA(FLEET_DNS_NAME, ['127.0.0.4']);
    await waitFor(() => endpointKeys(client!).join() === `127.0.0.4:${port}`, 5000);
    await waitFor(() => endpointKeys(client!, 'ready').length === 1, 5000);
    expect(await spread(client, 10)).toEqual({ four: 10 });
  });

  it('re-resolves at once when an endpoint fails, long before refreshMs', async () => {
    const certs = await fleetCertificates();
    fleet = await dnsFleet();
    const port = fleet.daemons[0]!.port;
    dns.setA(FLEET_DNS_NAME, ['127.0.0.2', '127.0.0.3']);
    client = fleetClient(certs, { discovery: { dns: FLEET_DNS_NAME, port, servers: [dns.address], refreshMs: 60_000 } });
    await client.connect();
    await waitFor(() => endpointKeys(client!, 'ready').length === 2, 5000);
    const before = dns.queryCount(FLEET_DNS_NAME);
    await fleet.byId('two').kill();
    await pollUntil(
      async () => dns.queryCount(FLEET_DNS_NAME),
      (n) => n > before,
      10_000,
    );
  });

  it('{ resolve }: any registry; its list is followed, and a resolve() that throws keeps the last list', async () => {
    const certs = await fleetCertificates();
    fleet = await startFleet(3, certs.dir, { ids: ['r1', 'r2', 'r3'] });
    const [r1, r2, r3] = fleet.daemons;
    let list: Array<{ host: string; port: number }> = [r1!.endpoint, r2!.endpoint];
    let failing = false;
    let calls = 0;
    const resolve = async (): Promise<Array<{ host: string; port: number }>> => {
      calls++;
      if (failing) throw new Error('registry down');
      return list;
    };
    client = fleetClient(certs, { discovery: { resolve, refreshMs: REFRESH_MS }, balancing: 'round-robin' });
    await client.connect();
    await waitFor(() => endpointKeys(client!, 'ready').length === 2, 5000);
    expect(Object.keys(await spread(client, 20)).sort()).toEqual(['r1', 'r2']);

    list = [r2!.endpoint, r3!.endpoint];
    await waitFor(() => endpointKeys(client!, 'ready').join() === [keyOf(r2!.endpoint), keyOf(r3!.endpoint)].sort().join(), 5000);
    expect(Object.keys(await spread(client, 20)).sort()).toEqual(['r2', 'r3']);

    failing = true;
    const since = calls;
    await waitFor(() => calls >= since + 2, 5000);
    expect(endpointKeys(client)).toEqual([keyOf(r2!.endpoint), keyOf(r3!.endpoint)].sort());
    expect(Object.keys(await spread(client, 20)).sort()).toEqual(['r2', 'r3']);
  });
});
