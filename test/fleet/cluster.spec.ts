import { ErpsClient } from 'nestjs-erps';
import { fleetCertificates } from '../support/fleet/certs';
import { FleetDaemon, startCluster, stopAllDaemons } from '../support/fleet/fleet';
import { waitFor } from '../support/wait';
import { describeFleet, endpointOf, fleetClient, spread } from './fleet-contract';

describeFleet('fleet client over node:cluster workers (issue 13: connectionsPerEndpoint)', () => {
  let cluster: FleetDaemon | undefined;
  let client: ErpsClient | undefined;

  afterEach(async () => {
    await client?.close();
    await cluster?.kill();
    client = undefined;
    cluster = undefined;
  });
  afterAll(stopAllDaemons);

  it('with connectionsPerEndpoint: 2, one client is answered by both workers sharing the port', async () => {
    const certs = await fleetCertificates();
    cluster = await startCluster(certs.dir, { workers: 2 });
    client = fleetClient(certs, { endpoints: [cluster.endpoint], connectionsPerEndpoint: 2 });
    await client.connect();
    await waitFor(() => endpointOf(client!, cluster!.endpoint)?.connections === 2, 5000);
    // The primary handed one connection to each worker.
    const perWorker = (await cluster.handled()).map((s) => s.connections);
    expect(perWorker).toEqual([1, 1]);

    // 40 calls, 20 at a time: spread over both connections, so over both workers.
    expect(await spread(client, 40, 20)).toEqual({ [cluster.id]: 40 });
    const workers = new Set<number>();
    for (const stats of await cluster.handled()) {
      if ((stats.calls.whoami ?? 0) > 0) workers.add(stats.worker!);
    }
    expect([...workers].sort()).toEqual(cluster.workers.map((w) => w.worker).sort());
  });
});
