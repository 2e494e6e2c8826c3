import { firstValueFrom } from 'rxjs';
import { ErpsClient, ErpsClientOptions, ErpsConnectionLostError, ErpsRecord, ErpsTimeoutError, ErpsTlsError } from 'nestjs-erps';
import { testCertificates } from '../support/certs';
import { fleetCertificates, FLEET_DNS_NAME } from '../support/fleet/certs';
import { Fleet, FleetDaemon, startDaemon, startFleet, stopAllDaemons } from '../support/fleet/fleet';
import { pollUntil } from '../support/fleet/poll';
import { waitFor } from '../support/wait';

/**
 * The fleet fixture itself, with today's single-endpoint ErpsClient: daemons in child processes that say who they
 * are, count what they ran, slow down, drain and die on demand. These run now; test/fleet/*.spec.ts files that
 * need the fleet client are guarded by FLEET_READY (see fleet-contract.ts).
 */
describe('fleet fixture: daemons in child processes', () => {
  const clients: ErpsClient[] = [];
  let fleet: Fleet | undefined;
  const extra: FleetDaemon[] = [];

  async function clientTo(endpoint: { host: string; port: number }, options: Partial<ErpsClientOptions> = {}): Promise<ErpsClient> {
    const certs = await fleetCertificates();
    const client = new ErpsClient({ ...endpoint, tls: certs.clients.alice, identifier: 'calc', version: '1.2.0', keepaliveMs: 200, ...options });
    clients.push(client);
    return client;
  }
  const call = <T>(client: ErpsClient, pattern: string, data: unknown = null): Promise<T> => firstValueFrom(client.send<T>(pattern, data));

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await fleet?.close();
    await Promise.all(extra.splice(0).map((d) => d.kill()));
    fleet = undefined;
  });
  afterAll(stopAllDaemons);

  it('starts three daemons; each says who it is, sums, sleeps, counts calls and casts per pattern', async () => {
    const certs = await fleetCertificates();
    fleet = await startFleet(3, certs.dir, { ids: ['a', 'b', 'c'] });
    expect(new Set(fleet.daemons.map((d) => d.port)).size).toBe(3);
    for (const daemon of fleet.daemons) {
      const client = await clientTo(daemon.endpoint);
      await expect(call(client, 'whoami')).resolves.toEqual({ id: daemon.id, host: '127.0.0.1', port: daemon.port, pid: daemon.pid });
      await expect(call(client, 'sum', [1, 2, 3])).resolves.toBe(6);
      await expect(call(client, 'slow', 5)).resolves.toEqual({ id: daemon.id, ms: 5 });
      client.emit('tick', 1);
      client.emit('tick', 2);
      // A call after casts on one connection is answered after they were handled.
      const counted = await call<{ id: string; calls: Record<string, number>; casts: number }>(client, 'count');
      expect(counted).toEqual({ id: daemon.id, calls: { whoami: 1, sum: 1, slow: 1 }, casts: 2 });
      const [stats] = await daemon.handled();
      expect(stats).toMatchObject({ id: daemon.id, calls: { whoami: 1, sum: 1, slow: 1 }, casts: 2, connections: 1, inFlight: 0, delayMs: 0 });
    }
    await expect(fleet.handled('whoami')).resolves.toEqual({ a: 1, b: 1, c: 1 });
  });

  it('slows one daemon down at start and through setDelay (a daemon that times out, then recovers)', async () => {
    const certs = await fleetCertificates();
    fleet = await startFleet(2, certs.dir, { ids: ['fast', 'slowed'], delays: [0, 10_000] });
    const slowed = await clientTo(fleet.byId('slowed').endpoint, { timeoutMs: 300 });
    await expect(call(slowed, 'whoami')).rejects.toBeInstanceOf(ErpsTimeoutError);
    await fleet.byId('slowed').setDelay(0);
    await expect(call(slowed, 'whoami')).resolves.toMatchObject({ id: 'slowed' });
    const fast = await clientTo(fleet.byId('fast').endpoint, { timeoutMs: 300 });
    await fleet.byId('fast').setDelay(10_000);
    await expect(call(fast, 'sum', [1])).rejects.toBeInstanceOf(ErpsTimeoutError);
    expect((await fleet.byId('fast').handled())[0]).toMatchObject({ delayMs: 10_000, calls: { sum: 1 } });
  });

  it('kill(): SIGKILL; calls in flight fail with ErpsConnectionLostError; the journal still lists what reached the handler', async () => {
    const certs = await fleetCertificates();
    const daemon = await startDaemon(certs.dir, { journal: true });
    extra.push(daemon);
    const client = await clientTo(daemon.endpoint, { timeoutMs: 30_000 });
    const calls = ['t1', 't2', 't3'].map((token) => call(client, 'slow', new ErpsRecord(60_000, { 'x-call': token })).catch((err: unknown) => err));
    await waitFor(() => daemon.journal().length === 3, 5000);
    await daemon.kill();
    expect(daemon.exited).toBe(true);
    for (const result of await Promise.all(calls)) expect(result).toBeInstanceOf(ErpsConnectionLostError);
    expect(
      daemon
        .journal()
        .map((e) => `${e.pattern} ${e.token}`)
        .sort(),
    ).toEqual(['slow t1', 'slow t2', 'slow t3']);
    await expect(daemon.handled()).resolves.toEqual([]);
  });

  it('drain(): GOAWAY, in-flight calls finish, the client gets no new connection there, the process exits', async () => {
    const certs = await fleetCertificates();
    const daemon = await startDaemon(certs.dir, { drainTimeoutMs: 5000 });
    extra.push(daemon);
    const client = await clientTo(daemon.endpoint, { timeoutMs: 10_000, reconnect: { minDelayMs: 20, maxDelayMs: 50 } });
    await call(client, 'whoami');
    const running = [call(client, 'slow', 300), call(client, 'slow', 300)];
    // Both calls reached the handler (a call still on the wire when the drain starts may be refused or lost).
    await pollUntil(
      () => daemon.handled(),
      ([stats]) => stats?.inFlight === 2,
    );
    const final = await daemon.drain();
    await expect(Promise.all(running)).resolves.toEqual([
      { id: daemon.id, ms: 300 },
      { id: daemon.id, ms: 300 },
    ]);
    expect(final[0]).toMatchObject({ calls: { whoami: 1, slow: 2 } });
    expect(daemon.exited).toBe(true);
    await waitFor(() => client.currentStatus !== 'connected', 2000);
  });

  it('listens on ::1, and on 127.0.0.2 and 127.0.0.3 with one port (a DNS A-record fleet), verified through the fleet certificate', async () => {
    const certs = await fleetCertificates();
    fleet = await startFleet(2, certs.dir, { hosts: ['127.0.0.2', '127.0.0.3'], samePort: true, ids: ['two', 'three'] });
    const [two, three] = fleet.daemons;
    expect(two!.port).toBe(three!.port);
    for (const daemon of fleet.daemons) {
      const client = await clientTo(daemon.endpoint);
      await expect(call(client, 'whoami')).resolves.toMatchObject({ id: daemon.id, host: daemon.host, port: daemon.port });
    }
    // The name a DNS fleet is found by, checked instead of the address dialled (ErpsTlsOptions.serverName).
    const byName = await clientTo(two!.endpoint, { tls: { ...certs.clients.alice, serverName: FLEET_DNS_NAME } });
    await expect(call(byName, 'whoami')).resolves.toMatchObject({ id: 'two' });
    const v6 = await fleet.add({ host: '::1', id: 'six' });
    expect(v6.port).toBe(two!.port);
    await expect(call(await clientTo(v6.endpoint), 'whoami')).resolves.toMatchObject({ id: 'six', host: '::1' });
  });

  it('the dev certificates do not cover 127.0.0.2: a client dialling it refuses them (why fleet tests use fleetCertificates)', async () => {
    const dev = await testCertificates();
    const daemon = await startDaemon(dev.dir, { host: '127.0.0.2' });
    extra.push(daemon);
    const client = await clientTo(daemon.endpoint, { tls: dev.clients.alice, reconnect: false });
    await expect(client.connect()).rejects.toBeInstanceOf(ErpsTlsError);
    const named = await clientTo(daemon.endpoint, { tls: { ...dev.clients.alice, serverName: 'localhost' } });
    await expect(call(named, 'whoami')).resolves.toMatchObject({ host: '127.0.0.2' });
  });
});
