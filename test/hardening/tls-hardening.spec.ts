import { once } from 'node:events';
import { constants } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { firstValueFrom } from 'rxjs';
import { ErpsClient, ErpsClientOptions, ErpsDisconnectedError, ErpsTlsError } from 'nestjs-erps';
import { CertificateAuthority, createCertificateAuthority, issueCertificate, IssueOptions } from 'nestjs-erps/testing';
import { classifyDialError } from '../../src/client/classify-dial-error';
import { encodeFrame, FrameType } from '../../src/protocol/frame';
import { encodeHello, WIRE_VERSION } from '../../src/protocol/handshake';
import type { RunningServer } from '../support/apps';
import { startDelayingProxy } from '../support/delaying-proxy';
import { startFeaturesServer } from '../support/features-app';
import { canCountFileDescriptors, openFileDescriptors } from '../support/open-fds';
import { tlsHandshake, TlsIdentity } from '../support/tls-probe';
import { waitFor } from '../support/wait';

const DAY = 24 * 60 * 60 * 1000;
const HELLO = encodeFrame(FrameType.HELLO, 0, 0, encodeHello({ wireVersion: WIRE_VERSION, codec: 'msgpack', features: 0, identifier: 'calc', version: '1.2.0' }));

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

  describe('client-initiated renegotiation is refused and the socket is destroyed', () => {
    /** A TLS 1.2 peer that completes the Erps handshake, then asks to renegotiate and waits for whatever happens. */
    async function renegotiatingPeer(port: number): Promise<'renegotiated' | 'closed by server'> {
      const { socket, error } = await tlsHandshake(port, pki.client, { maxVersion: 'TLSv1.2' });
      expect(error).toBeUndefined();
      socket.on('error', () => undefined); // the attacker ignores errors: only the server may close this socket
      socket.write(HELLO);
      await once(socket, 'data'); // WELCOME
      const outcome = new Promise<'renegotiated' | 'closed by server'>((resolve) => {
        socket.once('close', () => resolve('closed by server'));
        socket.renegotiate({}, (err) => err === null && resolve('renegotiated'));
      });
      let timer: NodeJS.Timeout | undefined;
      const result = await Promise.race([outcome, new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), 2000)))]);
      clearTimeout(timer);
      socket.destroy();
      if (result === 'hung') throw new Error('the server neither refused the renegotiation nor closed the socket');
      return result;
    }

    (canCountFileDescriptors ? it : it.skip)('many attempts: every one refused and closed, no descriptor leaks, a good client keeps working', async () => {
      const running = await server();
      const good = client(running.port);
      await expect(firstValueFrom(good.send('sum', [1]))).resolves.toBe(1);
      await renegotiatingPeer(running.port); // warm-up: lazily opened descriptors do not count as a leak
      await waitFor(() => running.server.stats().connections === 1);
      const before = openFileDescriptors();
      for (let batch = 0; batch < 5; batch++) {
        const outcomes = await Promise.all(Array.from({ length: 10 }, () => renegotiatingPeer(running.port)));
        expect(outcomes).toEqual(Array(10).fill('closed by server'));
      }
      await waitFor(() => running.server.stats().connections === 1);
      await waitFor(() => openFileDescriptors() <= before + 2, 3000);
      await expect(firstValueFrom(good.send('sum', [2, 3]))).resolves.toBe(5);
    });

    it('still refused when the user sets their own secureOptions', async () => {
      const running = await server({ tls: { ...(await pki.server()), secureOptions: constants.SSL_OP_NO_TICKET } });
      await expect(renegotiatingPeer(running.port)).resolves.toBe('closed by server');
    });
  });

  describe('default cipher suites: ECDHE with AES-GCM or ChaCha20-Poly1305 under TLS 1.2', () => {
    it.each(['ECDHE-ECDSA-AES128-SHA256', 'ECDHE-ECDSA-AES256-SHA', 'ECDHE-ECDSA-AES128-CCM8', 'ECDHE-ECDSA-AES128-CCM', 'ECDHE-ECDSA-ARIA128-GCM-SHA256'])(
      'the server refuses a TLS 1.2 client offering only %s',
      async (suite) => {
        const running = await server();
        const outcome = await tlsHandshake(running.port, pki.client, { maxVersion: 'TLSv1.2', ciphers: suite });
        outcome.socket.destroy();
        expect(outcome.cipher).toBeUndefined();
        expect(outcome.error).toBeDefined();
      },
    );

    it.each(['ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305'])('the server accepts TLS 1.2 with %s', async (suite) => {
      const running = await server();
      const outcome = await tlsHandshake(running.port, pki.client, { maxVersion: 'TLSv1.2', ciphers: suite });
      outcome.socket.destroy();
      expect(outcome).toMatchObject({ cipher: suite, protocol: 'TLSv1.2' });
    });

    it('with an RSA server certificate: ECDHE-RSA with GCM is accepted, ECDHE-RSA with CBC refused', async () => {
      const running = await server({ tls: await pki.server({ keyType: 'rsa' }) });
      const gcm = await tlsHandshake(running.port, pki.client, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' });
      const cbc = await tlsHandshake(running.port, pki.client, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-SHA256' });
      gcm.socket.destroy();
      cbc.socket.destroy();
      expect(gcm).toMatchObject({ cipher: 'ECDHE-RSA-AES128-GCM-SHA256' });
      expect(cbc.cipher).toBeUndefined();
    });

    it('ErpsClient and ErpsServer speak TLS 1.3 by default', async () => {
      const running = await server();
      const c = client(running.port);
      await expect(firstValueFrom(c.send('sum', [4, 5]))).resolves.toBe(9);
      expect(c.unwrap<TLSSocket>().getProtocol()).toBe('TLSv1.3');
      expect(c.unwrap<TLSSocket>().getCipher().name).toMatch(/^TLS_(AES_(128|256)_GCM|CHACHA20_POLY1305)_SHA(256|384)$/);
    });

    it('the ErpsClient refuses a server that only offers CBC; tls.ciphers on both ends overrides the default', async () => {
      const cbcOnly = { maxVersion: 'TLSv1.2' as const, ciphers: 'ECDHE-ECDSA-AES128-SHA256' };
      const running = await server({ tls: { ...(await pki.server()), ...cbcOnly } });
      await expect(client(running.port).connect()).rejects.toBeInstanceOf(ErpsTlsError);
      const overridden = client(running.port, { tls: { ...pki.client, ciphers: cbcOnly.ciphers } });
      await expect(firstValueFrom(overridden.send('sum', [1, 2]))).resolves.toBe(3);
      expect(overridden.unwrap<TLSSocket>().getCipher().name).toBe('ECDHE-ECDSA-AES128-SHA256');
    });
  });

  describe('every server-certificate failure is an ErpsTlsError on the client, with the cause kept', () => {
    /** The error connect() fails with against a server presenting `serverTls`; a typed error keeps its cause. */
    async function connectError(serverTls: TlsIdentity): Promise<{ error: unknown; causeCode: unknown }> {
      const running = await server({ tls: serverTls });
      const error = await client(running.port)
        .connect()
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(running.probe.calls).toEqual([]);
      expect(running.server.stats().connections).toBe(0);
      return { error, causeCode: ((error as Error | undefined)?.cause as { code?: unknown } | undefined)?.code };
    }

    it('wrong purpose: a client-only certificate used as the server certificate', async () => {
      const { error, causeCode } = await connectError(await pki.server({ kind: 'client' }));
      expect(error).toBeInstanceOf(ErpsTlsError);
      expect(causeCode).toBe('INVALID_PURPOSE');
    });

    it('expired server certificate', async () => {
      const { error, causeCode } = await connectError(await pki.server({ notBefore: new Date(Date.now() - 30 * DAY), notAfter: new Date(Date.now() - DAY) }));
      expect(error).toBeInstanceOf(ErpsTlsError);
      expect(causeCode).toBe('CERT_HAS_EXPIRED');
    });

    it('hostname mismatch', async () => {
      const { error, causeCode } = await connectError(await pki.server({ dns: ['elsewhere.example'], ips: [] }));
      expect(error).toBeInstanceOf(ErpsTlsError);
      expect(causeCode).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    });

    it('unknown CA', async () => {
      const { error, causeCode } = await connectError(await pki.server({}, await createCertificateAuthority('someone else')));
      expect(error).toBeInstanceOf(ErpsTlsError);
      expect(causeCode).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    });
  });

  describe('classifying connect failures', () => {
    const withCode = (code: string, extra: object = {}): Error => Object.assign(new Error(`failure ${code}`), { code, ...extra });

    it.each([
      'UNABLE_TO_GET_ISSUER_CERT',
      'UNABLE_TO_GET_CRL',
      'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
      'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
      'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
      'CERT_SIGNATURE_FAILURE',
      'CRL_SIGNATURE_FAILURE',
      'CERT_NOT_YET_VALID',
      'CERT_HAS_EXPIRED',
      'CRL_NOT_YET_VALID',
      'CRL_HAS_EXPIRED',
      'ERROR_IN_CERT_NOT_BEFORE_FIELD',
      'ERROR_IN_CERT_NOT_AFTER_FIELD',
      'ERROR_IN_CRL_LAST_UPDATE_FIELD',
      'ERROR_IN_CRL_NEXT_UPDATE_FIELD',
      'OUT_OF_MEM',
      'DEPTH_ZERO_SELF_SIGNED_CERT',
      'SELF_SIGNED_CERT_IN_CHAIN',
      'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      'CERT_CHAIN_TOO_LONG',
      'CERT_REVOKED',
      'INVALID_CA',
      'PATH_LENGTH_EXCEEDED',
      'INVALID_PURPOSE',
      'CERT_UNTRUSTED',
      'CERT_REJECTED',
      'HOSTNAME_MISMATCH',
      'UNSPECIFIED',
      'ERR_TLS_CERT_ALTNAME_INVALID',
      'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
      'ERR_OSSL_EVP_BAD_DECRYPT',
    ])('verification or OpenSSL code %s: ErpsTlsError, original error as cause', (code) => {
      const original = withCode(code);
      const classified = classifyDialError(original, 'here:1');
      expect(classified).toBeInstanceOf(ErpsTlsError);
      expect(classified.cause).toBe(original);
    });

    it('an error raised inside OpenSSL is a TLS failure whatever its code', () => {
      const original = withCode('SOMETHING_NEW', { library: 'SSL routines', reason: 'unexpected eof while reading' });
      expect(classifyDialError(original, 'here:1')).toBeInstanceOf(ErpsTlsError);
    });

    it.each(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH'])('network error %s: ErpsDisconnectedError, original error as cause', (code) => {
      const original = withCode(code);
      const classified = classifyDialError(original, 'here:1');
      expect(classified).toBeInstanceOf(ErpsDisconnectedError);
      expect(classified.cause).toBe(original);
    });
  });
});
