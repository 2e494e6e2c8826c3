import { firstValueFrom } from 'rxjs';
import { ErpsClient, ErpsClientOptions } from 'nestjs-erps';
import { CertificateAuthority, createCertificateAuthority, issueCertificate, IssueOptions } from 'nestjs-erps/testing';
import type { RunningServer } from '../support/apps';
import { startDelayingProxy } from '../support/delaying-proxy';
import { startFeaturesServer } from '../support/features-app';
import { tlsHandshake, TlsIdentity } from '../support/tls-probe';
import { waitFor } from '../support/wait';


/** One CA for both ends: the server certificate (or a deliberately bad one) and a good client identity. */
class TestPki {
  private constructor(
    readonly ca: CertificateAuthority,
    readonly client: TlsIdentity,
  ) {}

  static async create(): Promise<TestPki> {
    const ca = await createCertificateAuthority('tls hardening CA');
    const alice = await issueCertificate(ca, { cn: 'alice' });
    return new TestPki(ca, { ca: ca.cert, cert: alice.cert, key: alice.key });
  }

  /** Server TLS options with a certificate issued by `issuer` (this CA unless told otherwise). */
  async server(options: Partial<IssueOptions> = {}, issuer: CertificateAuthority = this.ca): Promise<TlsIdentity> {
    const issued = await issueCertificate(issuer, { cn: 'localhost', kind: 'server', dns: ['localhost'], ips: ['127.0.0.1'], ...options });
    return { ca: this.ca.cert, cert: issued.cert, key: issued.key };
  }
}

describe('TLS hardening', () => {
  let pki: TestPki;
  const open: Array<{ close(): Promise<void> }> = [];

  beforeAll(async () => {
    pki = await TestPki.create();
  });

  afterEach(async () => {
    for (const thing of open.splice(0).reverse()) await thing.close();
  });

  async function server(options: Parameters<typeof startFeaturesServer>[0] = {}): Promise<RunningServer> {
    const running = await startFeaturesServer({ tls: await pki.server(), ...options });
    open.push(running);
    return running;
  }

  function client(port: number, options: Partial<ErpsClientOptions> = {}): ErpsClient {
    const c = new ErpsClient({ host: '127.0.0.1', port, tls: pki.client, identifier: 'calc', version: '1.2.0', reconnect: false, ...options });
    open.push(c);
    return c;
  }

  describe('handshakeTimeoutMs is one deadline from the TCP accept to WELCOME', () => {
    const timeoutMs = 800;

    /** A client behind a proxy that delays each of its chunks: it finishes TLS (if it can) and never sends HELLO. */
    async function dribblingClient(port: number, delayMs: number): Promise<number> {
      const proxy = await startDelayingProxy(port, delayMs);
      open.push(proxy);
      void tlsHandshake(proxy.port, pki.client);
      await waitFor(() => proxy.lifetimes.length === 1);
      return proxy.lifetimes[0]!;
    }

    it('TLS finished late (its records delayed), then no HELLO: closed at the deadline, not a HELLO timeout later', async () => {
      const running = await server({ handshakeTimeoutMs: timeoutMs });
      const tlsErrors: Error[] = [];
      running.server.on('tlsClientError', (err: Error) => tlsErrors.push(err));
      const good = client(running.port);
      await good.connect();
      // The server has the client's last TLS record after two delays (about 500 ms): TLS completes, HELLO never comes.
      const lifetimeMs = await dribblingClient(running.port, 250);
      expect(tlsErrors).toEqual([]); // TLS did complete: the HELLO part of the deadline is what closed it
      expect(lifetimeMs).toBeGreaterThanOrEqual(timeoutMs - 50);
      expect(lifetimeMs).toBeLessThan(timeoutMs + 300);
      // The good client outlived the deadline: its handshake timer stopped at its WELCOME.
      await expect(firstValueFrom(good.send('sum', [2, 3]))).resolves.toBe(5);
    });

    it('TLS records delayed past the deadline: closed at the deadline during the TLS handshake', async () => {
      const running = await server({ handshakeTimeoutMs: timeoutMs });
      const tlsErrors: Array<Error & { code?: string }> = [];
      running.server.on('tlsClientError', (err: Error) => tlsErrors.push(err));
      const lifetimeMs = await dribblingClient(running.port, 500);
      expect(lifetimeMs).toBeGreaterThanOrEqual(timeoutMs - 50);
      expect(lifetimeMs).toBeLessThan(timeoutMs + 300);
      await waitFor(() => tlsErrors.length > 0);
      expect(tlsErrors[0]!.code).toBe('ERR_TLS_HANDSHAKE_TIMEOUT');
      const good = client(running.port);
      await expect(firstValueFrom(good.send('sum', [1, 1]))).resolves.toBe(2);
    });
  });
});
