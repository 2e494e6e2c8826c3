import { promises as dns } from 'node:dns';
import { TestDnsServer } from '../support/dns-server';

/** The support DNS server answers Node's own resolver, and answers what the test set a moment ago. */
describe('TestDnsServer (a real DNS server on loopback for the fleet tests)', () => {
  let server: TestDnsServer;
  let resolver: dns.Resolver;

  beforeEach(async () => {
    server = await TestDnsServer.start();
    resolver = new dns.Resolver({ timeout: 300, tries: 1 });
    resolver.setServers([server.address]);
  });
  afterEach(() => server.close());

  it('serves A and AAAA records to resolve4 / resolve6, with the TTL it was given', async () => {
    server.setA('calc.test', ['127.0.0.2', '127.0.0.3']).setAAAA('calc.test', ['::1']);
    await expect(resolver.resolve4('calc.test')).resolves.toEqual(['127.0.0.2', '127.0.0.3']);
    await expect(resolver.resolve4('calc.test', { ttl: true })).resolves.toEqual([
      { address: '127.0.0.2', ttl: 1 },
      { address: '127.0.0.3', ttl: 1 },
    ]);
    await expect(resolver.resolve6('CALC.test.')).resolves.toEqual(['::1']);
  });

  it('serves SRV records to resolveSrv', async () => {
    server.setSrv('_erps._tcp.calc.test', [
      { target: 'a.calc.test', port: 4001, priority: 1, weight: 5 },
      { target: 'b.calc.test', port: 4002 },
    ]);
    server.setA('a.calc.test', ['127.0.0.2']).setA('b.calc.test', ['127.0.0.3']);
    await expect(resolver.resolveSrv('_erps._tcp.calc.test')).resolves.toEqual([
      { name: 'a.calc.test', port: 4001, priority: 1, weight: 5 },
      { name: 'b.calc.test', port: 4002, priority: 10, weight: 10 },
    ]);
    await expect(resolver.resolve4('b.calc.test')).resolves.toEqual(['127.0.0.3']);
  });

  it('answers the records as they are now: an address added, one removed, no caching in between', async () => {
    server.setA('calc.test', ['127.0.0.2', '127.0.0.3']);
    await expect(resolver.resolve4('calc.test')).resolves.toEqual(['127.0.0.2', '127.0.0.3']);
    server.setA('calc.test', ['127.0.0.2', '127.0.0.3', '127.0.0.4']);
    await expect(resolver.resolve4('calc.test')).resolves.toEqual(['127.0.0.2', '127.0.0.3', '127.0.0.4']);
    server.setA('calc.test', ['127.0.0.3', '127.0.0.4']);
    await expect(resolver.resolve4('calc.test')).resolves.toEqual(['127.0.0.3', '127.0.0.4']);
    server.setSrv('_erps._tcp.calc.test', [{ target: 'a.calc.test', port: 1 }]);
    await expect(resolver.resolveSrv('_erps._tcp.calc.test')).resolves.toHaveLength(1);
    server.setSrv('_erps._tcp.calc.test', [
      { target: 'a.calc.test', port: 1 },
      { target: 'b.calc.test', port: 2 },
    ]);
    await expect(resolver.resolveSrv('_erps._tcp.calc.test')).resolves.toHaveLength(2);
    expect(server.queryCount('calc.test', { type: 'A' })).toBe(3);
  });

  it('answers NXDOMAIN for unknown names and NODATA for a known name without that type', async () => {
    server.setA('calc.test', ['127.0.0.2']);
    await expect(resolver.resolve4('nothing.test')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    await expect(resolver.resolve6('calc.test')).rejects.toMatchObject({ code: 'ENODATA' });
    server.remove('calc.test');
    await expect(resolver.resolve4('calc.test')).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });

  it('fails on demand (SERVFAIL, REFUSED, no answer at all) and recovers', async () => {
    server.setA('calc.test', ['127.0.0.2']);
    server.fail('servfail');
    await expect(resolver.resolve4('calc.test')).rejects.toMatchObject({ code: 'ESERVFAIL' });
    server.fail('refused');
    await expect(resolver.resolve4('calc.test')).rejects.toMatchObject({ code: 'EREFUSED' });
    server.fail('drop');
    await expect(resolver.resolve4('calc.test')).rejects.toMatchObject({ code: 'ETIMEOUT' });
    server.fail(false);
    await expect(resolver.resolve4('calc.test')).resolves.toEqual(['127.0.0.2']);
  });

  it('answers over TCP on the same port too (what a resolver falls back to for a truncated answer)', async () => {
    // 40 addresses do not fit a 512-byte UDP answer: dns2 sets TC, c-ares asks again over TCP.
    const many = Array.from({ length: 40 }, (_, i) => `127.0.1.${i + 1}`);
    server.setA('big.calc.test', many);
    await expect(resolver.resolve4('big.calc.test')).resolves.toEqual(many);
    expect(server.queries.filter((q) => q.name === 'big.calc.test').map((q) => q.transport)).toEqual(['udp', 'tcp']);
  });
});
