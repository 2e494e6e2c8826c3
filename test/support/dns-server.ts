import { isIPv4, isIPv6 } from 'node:net';
import { Packet, TCPServer, UDPServer } from 'dns2';

/**
 * A real DNS server on loopback for tests (dns2's UDP and TCP servers, both on one port from the OS), with
 * records a test changes while it runs. Node's resolver finds it with
 * `new dns.promises.Resolver(); resolver.setServers([dns.address])` (address is `127.0.0.1:PORT`).
 *
 *   const dns = await TestDnsServer.start();
 *   dns.setA('calc.test', ['127.0.0.2', '127.0.0.3']);
 *   dns.setSrv('_erps._tcp.calc.test', [{ target: 'a.calc.test', port: 4000 }]);
 *   dns.setA('a.calc.test', ['127.0.0.2']);   // SRV answers carry their targets' A/AAAA records as additionals
 *   dns.fail('servfail');                      // every answer SERVFAIL until dns.fail(false)
 *
 * Unknown names answer NXDOMAIN (Node: ENOTFOUND); a known name without records of the asked type answers
 * NOERROR with no answers (Node: ENODATA). Names are case-insensitive, a trailing dot is ignored.
 */

export interface SrvRecord {
  target: string;
  port: number;
  /** Default 10. */
  priority?: number;
  /** Default 10. */
  weight?: number;
}

/** How the server misbehaves: 'servfail' answers SERVFAIL, 'refused' REFUSED, 'drop' never answers (a timeout). */
export type DnsFailure = 'servfail' | 'refused' | 'drop';

export interface DnsQuery {
  name: string;
  /** 'A', 'AAAA', 'SRV', or the numeric type of anything else. */
  type: string;
  transport: 'udp' | 'tcp';
  at: number;
}

interface Zone {
  a: string[];
  aaaa: string[];
  srv: SrvRecord[];
}

const RCODE = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 } as const;
const { TYPE, CLASS } = Packet;
const TYPE_NAMES: Record<number, string> = { [TYPE.A]: 'A', [TYPE.AAAA]: 'AAAA', [TYPE.SRV]: 'SRV' };

const normalize = (name: string): string => name.toLowerCase().replace(/\.$/, '');

export class TestDnsServer {
  /** `127.0.0.1:PORT`, the form `resolver.setServers()` and the client's `discovery.servers` take. */
  readonly address: string;
  /** Every query received, oldest first (for "the client asked again" checks). */
  readonly queries: DnsQuery[] = [];
  private readonly zones = new Map<string, Zone>();
  private failure: DnsFailure | false = false;

  private constructor(
    private readonly udp: UDPServer,
    private readonly tcp: TCPServer | undefined,
    readonly host: string,
    readonly port: number,
    /** TTL of every record (seconds). */
    readonly ttl: number,
  ) {
    this.address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  }

  /** Starts on `host` (default 127.0.0.1), UDP and (unless `tcp: false`) TCP on the same port from the OS. */
  static async start(options: { host?: string; ttl?: number; tcp?: boolean } = {}): Promise<TestDnsServer> {
    const host = options.host ?? '127.0.0.1';
    const withTcp = options.tcp ?? true;
    for (let attempt = 1; ; attempt++) {
      const udp = new UDPServer({ type: isIPv6(host) ? 'udp6' : 'udp4' });
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind(0, host, () => {
          udp.removeListener('error', reject);
          resolve();
        });
      });
      const port = udp.address().port;
      let tcp: TCPServer | undefined;
      if (withTcp) {
        tcp = new TCPServer({ idleTimeout: 1000 } as never);
        try {
          await new Promise<void>((resolve, reject) => {
            tcp!.once('error', reject);
            tcp!.listen(port, host, () => {
              tcp!.removeListener('error', reject);
              resolve();
            });
          });
        } catch (err) {
          // The UDP port is free but the same TCP port is taken: try another.
          udp.close();
          if (attempt >= 5) throw err;
          continue;
        }
      }
      const server = new TestDnsServer(udp, tcp, host, port, options.ttl ?? 1);
      udp.on('request', (request, send) => server.answer(request, send, 'udp'));
      tcp?.on('request', (request, send) => server.answer(request, send, 'tcp'));
      // A malformed query is the client's problem, not the test's.
      udp.on('requestError', () => undefined);
      tcp?.on('requestError', () => undefined);
      tcp?.on('error', () => undefined);
      return server;
    }
  }

  /** Sets the A records of `name` (replacing them; [] leaves the name known with no A records). */
  setA(name: string, addresses: string[]): this {
    for (const address of addresses) if (!isIPv4(address)) throw new Error(`setA(${name}): ${address} is not an IPv4 address`);
    this.zone(name).a = [...addresses];
    return this;
  }

  /** Sets the AAAA records of `name`. */
  setAAAA(name: string, addresses: string[]): this {
    for (const address of addresses) if (!isIPv6(address)) throw new Error(`setAAAA(${name}): ${address} is not an IPv6 address`);
    this.zone(name).aaaa = [...addresses];
    return this;
  }

  /** Sets the SRV records of `name` (e.g. `_erps._tcp.calc.test`). Set the targets' A/AAAA records too. */
  setSrv(name: string, records: SrvRecord[]): this {
    this.zone(name).srv = records.map((r) => ({ priority: 10, weight: 10, ...r }));
    return this;
  }

  /** Forgets `name`: it answers NXDOMAIN. */
  remove(name: string): this {
    this.zones.delete(normalize(name));
    return this;
  }

  /** Makes every answer fail in the given way, or (false) answer normally again. */
  fail(mode: DnsFailure | false): this {
    this.failure = mode;
    return this;
  }

  /** How many queries for `name` (any type, or the given one) arrived since `since` (a Date.now() value). */
  queryCount(name?: string, options: { type?: string; since?: number } = {}): number {
    const wanted = name === undefined ? undefined : normalize(name);
    return this.queries.filter((q) => (wanted === undefined || q.name === wanted) && (options.type === undefined || q.type === options.type) && q.at >= (options.since ?? 0)).length;
  }

  async close(): Promise<void> {
    await Promise.all([
      new Promise<void>((resolve) => {
        this.udp.once('close', () => resolve());
        try {
          this.udp.close();
        } catch {
          resolve();
        }
      }),
      new Promise<void>((resolve) => (this.tcp ? this.tcp.close(() => resolve()) : resolve())),
    ]);
  }

  private zone(name: string): Zone {
    const key = normalize(name);
    let zone = this.zones.get(key);
    if (zone === undefined) {
      zone = { a: [], aaaa: [], srv: [] };
      this.zones.set(key, zone);
    }
    return zone;
  }

  private answer(request: Packet, send: (response: Packet) => Promise<Buffer>, transport: 'udp' | 'tcp'): void {
    const question = request.questions[0];
    const response = Packet.createResponseFromRequest(request);
    response.header.aa = 1;
    if (question === undefined) {
      response.header.rcode = RCODE.REFUSED;
      void send(response).catch(() => undefined);
      return;
    }
    const name = normalize(question.name);
    this.queries.push({ name, type: TYPE_NAMES[question.type] ?? String(question.type), transport, at: Date.now() });
    if (this.failure === 'drop') return;
    if (this.failure !== false) {
      response.header.rcode = this.failure === 'servfail' ? RCODE.SERVFAIL : RCODE.REFUSED;
      void send(response).catch(() => undefined);
      return;
    }
    const zone = this.zones.get(name);
    if (zone === undefined) {
      response.header.rcode = RCODE.NXDOMAIN;
      void send(response).catch(() => undefined);
      return;
    }
    const ttl = this.ttl;
    const record = (fields: Record<string, unknown>) => new Packet.Resource({ name: question.name, class: CLASS.IN, ttl, ...fields });
    if (question.type === TYPE.A || question.type === TYPE.ANY) for (const address of zone.a) response.answers.push(record({ type: TYPE.A, address }));
    if (question.type === TYPE.AAAA || question.type === TYPE.ANY) for (const address of zone.aaaa) response.answers.push(record({ type: TYPE.AAAA, address }));
    if (question.type === TYPE.SRV || question.type === TYPE.ANY) {
      for (const srv of zone.srv) response.answers.push(record({ type: TYPE.SRV, priority: srv.priority, weight: srv.weight, port: srv.port, target: srv.target }));
      // As a real server does: the targets' addresses ride along (Node's resolveSrv ignores them; others use them).
      for (const target of new Set(zone.srv.map((s) => normalize(s.target)))) {
        const targetZone = this.zones.get(target);
        if (targetZone === undefined) continue;
        for (const address of targetZone.a) response.additionals.push(new Packet.Resource({ name: target, type: TYPE.A, class: CLASS.IN, ttl, address }));
        for (const address of targetZone.aaaa) response.additionals.push(new Packet.Resource({ name: target, type: TYPE.AAAA, class: CLASS.IN, ttl, address }));
      }
    }
    void send(response).catch(() => undefined);
  }
}
