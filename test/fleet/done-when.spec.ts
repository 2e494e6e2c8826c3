import { ErpsClient, ErpsConnectionLostError } from 'nestjs-erps';
import { TestDnsServer } from '../support/dns-server';
import { fleetCertificates, FLEET_DNS_NAME } from '../support/fleet/certs';
import { Fleet, journaledBy, startFleet, stopAllDaemons } from '../support/fleet/fleet';
import { startLoad, loadClock } from '../support/fleet/load';
import { waitFor } from '../support/wait';
import { endpointKeys, fleetClient } from './fleet-contract';

/**
 * Issue 13's "done when", in one run: a client given `discovery: { dns }` over three daemons keeps serving through the
 * death of one, the addition of a fourth and the drain of another, with every call accounted for.
 */
describe('a DNS-discovered fleet through a death, an addition and a drain', () => {
  let dns: TestDnsServer;
  let fleet: Fleet | undefined;
  let client: ErpsClient | undefined;

  afterAll(async () => {
    await client?.close();
    await fleet?.close();
    await dns?.close();
    await stopAllDaemons();
  });

  it('every call succeeds or fails with ErpsConnectionLostError on the daemon that died; none runs twice; the survivors serve', async () => {
    dns = await TestDnsServer.start();
    const certs = await fleetCertificates();
    fleet = await startFleet(4, certs.dir, { hosts: ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'], samePort: true, ids: ['two', 'three', 'four', 'five'], journal: true });
    const port = fleet.daemons[0]!.port;
    dns.setA(FLEET_DNS_NAME, ['127.0.0.2', '127.0.0.3', '127.0.0.4']);
    client = fleetClient(certs, { discovery: { dns: FLEET_DNS_NAME, port, servers: [dns.address], refreshMs: 200 }, timeoutMs: 10_000 });
    await client.connect();
    await waitFor(() => endpointKeys(client!, 'ready').length === 3, 5000);
    const load = startLoad(client, { inflight: 20, pattern: 'slow', data: 5 });
    await waitFor(() => ['two', 'three', 'four'].every((id) => (load.okBy()[id] ?? 0) >= 10), 10_000);

    // One dies (still in DNS for a while, as with a crashed pod).
    await fleet.byId('two').kill();
    const diedAt = loadClock();
    await waitFor(() => load.okSince(diedAt) >= 50, 10_000);
    // A fourth appears in DNS, and the dead one leaves it.
    dns.setA(FLEET_DNS_NAME, ['127.0.0.3', '127.0.0.4', '127.0.0.5']);
    await waitFor(() => (load.okBy().five ?? 0) >= 10, 10_000);
    // Another drains (a rolling restart): GOAWAY, its calls finish, the load moves.
    const drainedAt = loadClock();
    await fleet.byId('three').drain();
    const drained = loadClock();
    await waitFor(() => load.okSince(drained) >= 100, 10_000);
    const outcomes = await load.stop();

    expect(outcomes).toHaveLength(load.started);
    const failed = outcomes.filter((o) => !o.ok);
    for (const o of failed) expect(o.error).toBeInstanceOf(ErpsConnectionLostError);
    // Only the death may cost calls: everything started after it settled succeeded, the drain included.
    expect(failed.filter((o) => o.startedAt > diedAt + 1000)).toEqual([]);
    const ranOn = journaledBy(fleet.daemons, 'slow');
    for (const [token, ids] of ranOn) expect({ token, ids }).toEqual({ token, ids: [ids[0]] }); // nothing ran twice
    for (const o of failed) expect(['two', undefined]).toContain(ranOn.get(o.token)?.[0]);
    for (const o of outcomes.filter((x) => x.ok)) expect(ranOn.get(o.token)).toEqual([o.answeredBy]);
    expect(failed.filter((o) => o.startedAt >= drainedAt)).toEqual([]);
    expect(new Set(outcomes.filter((o) => o.startedAt >= drained).map((o) => o.answeredBy))).toEqual(new Set(['four', 'five']));
  });
});
