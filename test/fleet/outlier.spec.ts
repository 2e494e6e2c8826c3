import { firstValueFrom } from 'rxjs';
import { ErpsClient, ErpsError } from 'nestjs-erps';
import { fleetCertificates } from '../support/fleet/certs';
import { Fleet, startFleet, stopAllDaemons } from '../support/fleet/fleet';
import { waitFor } from '../support/wait';
import { describeFleet, endpointKeys, endpointOf, fleetClient, fleetView, spread } from './fleet-contract';

/** Calls `whoami` one at a time until `done()` or `max` calls; returns how each ended. */
async function callUntil(client: ErpsClient, done: () => boolean, max: number): Promise<Array<{ id?: string; error?: unknown }>> {
  const results: Array<{ id?: string; error?: unknown }> = [];
  while (!done() && results.length < max) {
    try {
      results.push({ id: (await firstValueFrom(client.send<{ id: string }>('whoami', null))).id });
    } catch (error) {
      results.push({ error });
    }
  }
  return results;
}

describeFleet('fleet outlier ejection (issue 13: consecutive failures, growing ejection, maxEjectedPercent)', () => {
  let fleet: Fleet | undefined;
  let client: ErpsClient | undefined;

  afterEach(async () => {
    await client?.close();
    await fleet?.close();
    client = undefined;
    fleet = undefined;
  });
  afterAll(stopAllDaemons);

  it('a daemon whose calls time out N times in a row is ejected, gets no calls, and comes back once healthy', async () => {
    const certs = await fleetCertificates();
    // 'stuck' answers 10 s late: every call there times out (timeoutMs 200).
    fleet = await startFleet(3, certs.dir, { ids: ['a', 'b', 'stuck'], delays: [0, 0, 10_000] });
    client = fleetClient(certs, {
      endpoints: fleet.endpoints(),
      balancing: 'round-robin',
      timeoutMs: 200,
      outlierDetection: { consecutiveFailures: 3, baseEjectionMs: 500, maxEjectedPercent: 50 },
    });
    await client.connect();
    await waitFor(() => endpointKeys(client!, 'ready').length === 3, 5000);
    const stuck = fleet.byId('stuck');
    const events: string[] = [];
    fleetView(client).on('endpoint', (info) => {
      if (info.port === stuck.port) events.push(info.state);
    });

    const results = await callUntil(client, () => endpointOf(client!, stuck.endpoint)?.state === 'ejected', 30);
    expect(endpointOf(client, stuck.endpoint)?.state).toBe('ejected');
    expect(events).toContain('ejected');
    const failures = results.filter((r) => r.error !== undefined);
    expect(failures.length).toBeGreaterThanOrEqual(3);
    for (const f of failures) expect(f.error).toBeInstanceOf(ErpsError);

    // While ejected: no calls for it, none fail.
    const counts = await spread(client, 30, 3);
    expect(Object.keys(counts).sort()).toEqual(['a', 'b']);

    // Healthy again: after its ejection it is tried, succeeds, and takes calls.
    await stuck.setDelay(0);
    await waitFor(() => endpointOf(client!, stuck.endpoint)?.state === 'ready', 10_000);
    const later = await callUntil(client, () => false, 30);
    expect(later.filter((r) => r.error !== undefined)).toEqual([]);
    expect(later.some((r) => r.id === 'stuck')).toBe(true);
  });

  it('never ejects more than maxEjectedPercent of the fleet, however many endpoints fail', async () => {
    const certs = await fleetCertificates();
    // Three of four time out; at most 50 % (two) may be ejected, so one failing endpoint stays in.
    fleet = await startFleet(4, certs.dir, { ids: ['ok', 'stuck1', 'stuck2', 'stuck3'], delays: [0, 10_000, 10_000, 10_000] });
    client = fleetClient(certs, {
      endpoints: fleet.endpoints(),
      balancing: 'round-robin',
      timeoutMs: 150,
      outlierDetection: { consecutiveFailures: 2, baseEjectionMs: 30_000, maxEjectedPercent: 50 },
    });
    await client.connect();
    await waitFor(() => endpointKeys(client!, 'ready').length === 4, 5000);
    const ejectedCount = (): number => endpointKeys(client!, 'ejected').length;
    let most = 0;
    const results = await callUntil(
      client,
      () => {
        most = Math.max(most, ejectedCount());
        return false;
      },
      40,
    );
    most = Math.max(most, ejectedCount());
    expect(most).toBe(2);
    expect(endpointOf(client, fleet.byId('ok').endpoint)?.state).toBe('ready');
    // The one failing endpoint left in keeps failing calls: the cap is a cap, not a cure.
    expect(results.slice(-8).some((r) => r.error !== undefined)).toBe(true);
    expect(results.some((r) => r.id === 'ok')).toBe(true);
  });
});
