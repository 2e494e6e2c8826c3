import { ErpsConfigError } from 'nestjs-erps';
import { leastInFlight, pickFirst, roundRobin } from '../../src/client/balancer/balancer';
import { resolveClientConfig } from '../../src/config/client-config';

const links = (...inFlight: number[]): Array<{ name: string; inFlight: number; latencyMs: number }> => inFlight.map((n, i) => ({ name: `l${i}`, inFlight: n, latencyMs: 1 }));

describe('balancers', () => {
  it('pick-first takes the first; round-robin takes each in turn, also when the list shrinks', () => {
    const ready = links(0, 0, 0);
    expect(pickFirst.pick(ready).name).toBe('l0');
    const rr = roundRobin();
    expect([1, 2, 3, 4].map(() => rr.pick(ready).name)).toEqual(['l0', 'l1', 'l2', 'l0']);
    expect([1, 2, 3].map(() => rr.pick(ready.slice(0, 2)).name)).toEqual(['l1', 'l0', 'l1']);
  });

  it('least-in-flight compares two distinct random links and takes the less loaded', () => {
    const draws = [0.0, 0.0]; // a = l0, then l0 again → the last one instead: two distinct links
    const p2c = leastInFlight(() => draws.shift()!);
    expect(p2c.pick(links(5, 1, 0)).name).toBe('l2');
    const always = leastInFlight(() => 0.99);
    expect(always.pick(links(0, 3, 7)).name).toBe('l1'); // a = l2, b = l1
  });

  it('least-in-flight weighs calls in flight by reply latency: a link three times slower needs a third of the queue', () => {
    const slow = { name: 'slow', inFlight: 2, latencyMs: 3 };
    const fast = { name: 'fast', inFlight: 4, latencyMs: 1 };
    const p2c = leastInFlight();
    expect(p2c.pick([slow, fast]).name).toBe('fast'); // (2+1)·3 = 9 > (4+1)·1 = 5
    expect(p2c.pick([{ ...slow, inFlight: 0 }, fast]).name).toBe('slow'); // (0+1)·3 = 3 < 5
  });

  it('least-in-flight never sends to a loaded link when a less loaded one is drawn with it', () => {
    const ready = links(100, 0, 0, 0);
    const p2c = leastInFlight();
    let loaded = 0;
    for (let i = 0; i < 1000; i++) if (p2c.pick(ready).name === 'l0') loaded += 1;
    expect(loaded).toBe(0);
  });
});

describe('fleet options', () => {
  const base = { transport: 'tcp' as const, keepaliveMs: 0 };

  it('one of host/port, endpoints, discovery; each checked, with the option named', () => {
    expect(() => resolveClientConfig({ ...base, port: 1, endpoints: [{ host: 'a', port: 2 }] })).toThrow(/one of host\/port, endpoints or discovery/);
    expect(() => resolveClientConfig({ ...base, endpoints: [] })).toThrow(ErpsConfigError);
    expect(() => resolveClientConfig({ ...base, endpoints: [{ host: 'a', port: 70000 }] })).toThrow(/endpoints\[0\]\.port/);
    expect(() => resolveClientConfig({ ...base, discovery: { dns: 'calc.internal' } as never })).toThrow(/discovery\.port/);
    expect(() => resolveClientConfig({ ...base, discovery: {} as never })).toThrow(/dns \(with port\), srv or resolve/);
    expect(() => resolveClientConfig({ ...base, port: 1, balancing: 'random' as never })).toThrow(/balancing/);
    expect(() => resolveClientConfig({ ...base, port: 1, connectionsPerEndpoint: 0 })).toThrow(/connectionsPerEndpoint/);
    expect(() => resolveClientConfig({ ...base, port: 1, outlierDetection: { maxEjectedPercent: 150 } })).toThrow(/maxEjectedPercent/);
  });

  it('defaults: least-in-flight, one connection per endpoint, 2 retries, outlier detection on', () => {
    const config = resolveClientConfig({ ...base, port: 4000 });
    expect(config).toMatchObject({
      endpoints: [{ host: '127.0.0.1', port: 4000 }],
      balancing: 'least-in-flight',
      connectionsPerEndpoint: 1,
      maxRetries: 2,
      outlierDetection: { consecutiveFailures: 5, baseEjectionMs: 30_000, maxEjectionMs: 300_000, maxEjectedPercent: 50 },
    });
    expect(resolveClientConfig({ ...base, discovery: { dns: 'calc.internal', port: 4000 } }).discovery).toMatchObject({ kind: 'dns', serverName: 'calc.internal', refreshMs: 30_000 });
  });
});
