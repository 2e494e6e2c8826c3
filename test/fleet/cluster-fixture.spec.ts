import { firstValueFrom } from 'rxjs';
import { ErpsClient } from 'nestjs-erps';
import { fleetCertificates } from '../support/fleet/certs';
import { FleetDaemon, startCluster, stopAllDaemons } from '../support/fleet/fleet';
import { pollUntil } from '../support/fleet/poll';

/**
 * The node:cluster fixture with today's single-endpoint client: a primary and two workers, each an ErpsServer on
 * the same port. One client is one connection, so one worker; several clients spread over both (the primary
 * hands connections out round-robin). The fleet client's `connectionsPerEndpoint` does this from one client
 * (test/fleet/cluster.spec.ts, guarded until it exists).
 */
describe('cluster fixture: ErpsServer in node:cluster workers sharing one port', () => {
  let cluster: FleetDaemon | undefined;
  const clients: ErpsClient[] = [];

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await cluster?.kill();
    cluster = undefined;
  });
  afterAll(stopAllDaemons);

  async function whoamiOverNewClient(port: number): Promise<{ id: string; worker: number; pid: number; port: number }> {
    const certs = await fleetCertificates();
    const client = new ErpsClient({ host: '127.0.0.1', port, tls: certs.clients.alice, identifier: 'calc', version: '1.2.0' });
    clients.push(client);
    return firstValueFrom(client.send('whoami', null));
  }

  it('answers from both workers, on one port, each with its own worker id', async () => {
    const certs = await fleetCertificates();
    cluster = await startCluster(certs.dir, { workers: 2 });
    expect(cluster.workers).toHaveLength(2);
    const seen = new Map<number, number>();
    for (let i = 0; i < 6 && seen.size < 2; i++) {
      const me = await whoamiOverNewClient(cluster.port);
      expect(me).toMatchObject({ id: cluster.id, port: cluster.port });
      seen.set(me.worker, me.pid);
    }
    expect([...seen.keys()].sort()).toEqual(cluster.workers.map((w) => w.worker).sort());
    expect(new Set(seen.values()).size).toBe(2);
    // Stats come per worker: each has the connections the primary gave it.
    const stats = await cluster.handled();
    expect(stats.map((s) => s.worker).sort()).toEqual(cluster.workers.map((w) => w.worker).sort());
    expect(stats.reduce((n, s) => n + s.connections, 0)).toBe(clients.length);
    expect(stats.every((s) => (s.calls.whoami ?? 0) >= 1)).toBe(true);
  });

  it('keeps serving on the other worker when one is killed; setDelay and drain reach every worker', async () => {
    const certs = await fleetCertificates();
    cluster = await startCluster(certs.dir, { workers: 2 });
    const [first, second] = cluster.workers;
    await cluster.killWorker(first!.worker);
    await pollUntil(
      () => cluster!.handled(),
      (stats) => stats.length === 1,
    );
    await expect(whoamiOverNewClient(cluster.port)).resolves.toMatchObject({ worker: second!.worker });
    await cluster.setDelay(1);
    expect((await cluster.handled()).map((s) => s.delayMs)).toEqual([1]);
    const final = await cluster.drain();
    expect(final).toHaveLength(1);
    expect(cluster.exited).toBe(true);
  });
});
