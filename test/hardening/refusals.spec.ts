import { mkdtempSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErpsClient, ErpsConfigError, ErpsHandshakeError, ErpsRefusal, ErpsServer, ErpsTlsError } from 'nestjs-erps';
import { CertificateAuthority, createCertificateAuthority, createCrl, issueCertificate, Issued } from 'nestjs-erps/testing';
import { RefusalLog } from '../../src/server/refusal-log';
import { describeTlsFailure, stripOpenSslNoise } from '../../src/tls/tls-failure';
import { RunningServer } from '../support/apps';
import { startFeaturesServer } from '../support/features-app';
import { waitFor } from '../support/wait';

const DAY = 24 * 60 * 60 * 1000;

describe('refused connections say why, on the client and in the server log', () => {
  const dir = mkdtempSync(join(tmpdir(), 'erps-refusals-'));
  const write = (name: string, pem: string): string => {
    const file = join(dir, name);
    writeFileSync(file, pem);
    return file;
  };
  let ca: CertificateAuthority;
  let revoked: Issued;
  let running: RunningServer;
  const logged: string[] = [];
  const refusals: ErpsRefusal[] = [];

  beforeAll(async () => {
    ca = await createCertificateAuthority('refusals CA');
    revoked = await issueCertificate(ca, { cn: 'revoked' });
    const server = await issueCertificate(ca, { cn: 'localhost', kind: 'server', dns: ['localhost'], ips: ['127.0.0.1'] });
    running = await startFeaturesServer({
      tls: {
        caFile: write('ca.crt', ca.cert),
        certFile: write('server.crt', server.cert),
        keyFile: write('server.key', server.key),
        crlFile: write('ca.crl', await createCrl(ca, [revoked.serialNumber])),
      },
    });
    // The server logs through Nest's Logger (silenced in tests): listen where it writes.
    const logger = (running.server as unknown as { logger: { warn(message: string): void } }).logger;
    jest.spyOn(logger, 'warn').mockImplementation((message: string) => void logged.push(message));
    running.server.on('tlsClientError', (_err: Error, refusal: ErpsRefusal) => refusals.push(refusal));
    running.server.on('handshakeRejected', (_info: unknown, _reason: string, refusal: ErpsRefusal) => refusals.push(refusal));
  });

  afterAll(async () => {
    await running.close();
  });

  beforeEach(() => {
    logged.length = 0;
    refusals.length = 0;
  });

  async function connectWith(issued: Issued, options: { identifier?: string } = {}): Promise<Error> {
    const client = new ErpsClient({
      host: '127.0.0.1',
      port: running.port,
      tls: { ca: ca.cert, cert: issued.cert, key: issued.key },
      identifier: options.identifier ?? 'calc',
      version: '1.2.0',
      reconnect: false,
    });
    try {
      return await client.connect().then(
        () => new Error('connected'),
        (err: Error) => err,
      );
    } finally {
      await client.close();
    }
  }

  it.each([
    [
      'an expired client certificate',
      () => issueCertificate(ca, { cn: 'old', notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) }),
      'expired',
      /certificate has expired/,
    ],
    ['a client certificate from an unknown CA', async () => issueCertificate(await createCertificateAuthority('stranger CA'), { cn: 'mallory' }), 'unknown-ca', /unknown CA/],
    ['a revoked client certificate', async () => revoked, 'revoked', /certificate is revoked/],
    ['a certificate for servers used by a client', () => issueCertificate(ca, { cn: 'server-only', kind: 'server', dns: ['x'] }), 'wrong-purpose', /wrong purpose/],
  ] as const)('%s', async (_name, issue, kind, words) => {
    const err = await connectWith(await issue());
    expect(err).toBeInstanceOf(ErpsTlsError);
    expect(err.message).toMatch(words);
    expect(err.message).not.toMatch(/closed the connection before WELCOME/);
    await waitFor(() => refusals.length > 0 && logged.length > 0);
    expect(refusals[0]).toMatchObject({ kind, remoteAddress: expect.stringMatching(/127\.0\.0\.1/), remotePort: expect.any(Number) });
    expect(logged[0]).toMatch(/^Refused connection from .*127\.0\.0\.1:\d+: /);
    expect(logged[0]).toMatch(words);
  });

  it('plain TCP on the TLS port: classified, and no OpenSSL source-file noise', async () => {
    const socket = net.connect(running.port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => refusals.length > 0);
    socket.destroy();
    expect(refusals[0]!.kind).toBe('plain-tcp');
    expect(refusals[0]!.message).toMatch(/does not speak TLS/);
    expect(logged[0]).not.toMatch(/deps\/openssl|:error:/);
  });

  it('a handshake REJECT is logged with the peer and the reason, and the event carries it classified', async () => {
    const err = await connectWith(await issueCertificate(ca, { cn: 'alice' }), { identifier: 'other' });
    expect(err).toBeInstanceOf(ErpsHandshakeError);
    await waitFor(() => refusals.length > 0);
    expect(refusals[0]).toMatchObject({ kind: 'handshake-reject', code: 'reject:3', message: expect.stringMatching(/peer "alice".*identifier mismatch/) });
    expect(logged[0]).toMatch(/identifier mismatch/);
  });
});

describe('refusal log and TLS failure words', () => {
  it('logs at most its limit per window, then says how many it left out', () => {
    const lines: string[] = [];
    const now = jest.spyOn(Date, 'now');
    try {
      now.mockReturnValue(1_000_000);
      const log = new RefusalLog((line) => lines.push(line), 3, 10_000);
      for (let i = 0; i < 10; i++) log.refused(`refusal ${i}`);
      expect(lines).toEqual(['refusal 0', 'refusal 1', 'refusal 2']);
      now.mockReturnValue(1_010_001);
      log.refused('later');
      expect(lines.slice(3)).toEqual(['7 more refused connections were not logged in the last 10 s', 'later']);
    } finally {
      now.mockRestore();
    }
  });

  it("strips OpenSSL's error-queue prefix and source file", () => {
    expect(stripOpenSslNoise('804C0CF7167F0000:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:../deps/openssl/openssl/ssl/record/ssl3_record.c:350:')).toBe(
      'wrong version number',
    );
    expect(stripOpenSslNoise('socket hang up')).toBe('socket hang up');
    expect(describeTlsFailure('CERT_HAS_EXPIRED')).toEqual({ kind: 'expired', code: 'CERT_HAS_EXPIRED', message: 'the certificate has expired (CERT_HAS_EXPIRED)' });
  });
});

describe('tls.ca must hold a CA certificate', () => {
  it('garbage, a private key, or a leaf certificate in tls.ca is an ErpsConfigError at construction', async () => {
    const ca = await createCertificateAuthority('config CA');
    const leaf = await issueCertificate(ca, { cn: 'localhost', kind: 'server', dns: ['localhost'] });
    const base = { cert: leaf.cert, key: leaf.key };
    expect(() => new ErpsServer({ tls: { ...base, ca: 'not a certificate at all' } })).toThrow(/holds no readable certificate/);
    expect(() => new ErpsServer({ tls: { ...base, ca: leaf.key } })).toThrow(ErpsConfigError);
    expect(() => new ErpsServer({ tls: { ...base, ca: leaf.cert } })).toThrow(/holds no CA certificate/);
    expect(() => new ErpsClient({ port: 1, tls: { ...base, ca: 'garbage' } })).toThrow(/holds no readable certificate/);
    expect(() => new ErpsServer({ tls: { ...base, ca: ca.cert } })).not.toThrow();
  });
});
