import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { firstValueFrom } from 'rxjs';
import { ErpsClient, ErpsConfigError, ErpsServer, ErpsTlsError } from 'nestjs-erps';
import { CertificateAuthority, createCertificateAuthority, createCrl, issueCertificate, Issued } from 'nestjs-erps/testing';
import { calcClient, RunningServer } from '../support/apps';
import { startFeaturesServer } from '../support/features-app';
import { waitFor } from '../support/wait';

const DAY = 24 * 60 * 60 * 1000;

/** A throw-away PKI on disk: every test gets its own certificates. */
class Pki {
  readonly dir = mkdtempSync(join(tmpdir(), 'erps-pki-'));
  write(name: string, pem: string): string {
    const file = join(this.dir, name);
    writeFileSync(file, pem);
    return file;
  }
  files(prefix: string, ca: CertificateAuthority, issued: Issued): { caFile: string; certFile: string; keyFile: string } {
    return { caFile: this.write(`${prefix}-ca.crt`, ca.cert), certFile: this.write(`${prefix}.crt`, issued.cert), keyFile: this.write(`${prefix}.key`, issued.key) };
  }
}

async function serverCert(ca: CertificateAuthority): Promise<Issued> {
  return issueCertificate(ca, { cn: 'localhost', kind: 'server', dns: ['localhost'], ips: ['127.0.0.1', '::1'] });
}

describe('certificate rotation, revocation and validity', () => {
  let pki: Pki;
  let ca: CertificateAuthority;
  const open: Array<ErpsClient | RunningServer> = [];

  beforeEach(async () => {
    pki = new Pki();
    ca = await createCertificateAuthority('rotation CA');
  });

  afterEach(async () => {
    for (const thing of open.splice(0).reverse()) await thing.close();
  });

  async function client(port: number, issued: Issued, options = {}): Promise<ErpsClient> {
    const c = await calcClient(port, { reconnect: false, ...options }, pki.files(`client-${issued.serialNumber}`, ca, issued));
    open.push(c);
    return c;
  }

  it('server.reloadTls(): new connections get the new certificate and CA; established ones stay', async () => {
    const serverFiles = pki.files('server', ca, await serverCert(ca));
    const running = await startFeaturesServer({ tls: serverFiles });
    open.push(running);
    const alice = await issueCertificate(ca, { cn: 'alice' });
    const before = await client(running.port, alice);
    await expect(firstValueFrom(before.send('sum', [1]))).resolves.toBe(1);
    const oldSerial = before.unwrap<TLSSocket>().getPeerCertificate().serialNumber;

    // Rotate: a new CA signs a new server certificate; clients of the old CA are no longer trusted.
    const ca2 = await createCertificateAuthority('rotation CA 2');
    const server2 = await serverCert(ca2);
    writeFileSync(serverFiles.certFile, server2.cert);
    writeFileSync(serverFiles.keyFile, server2.key);
    writeFileSync(serverFiles.caFile, ca2.cert);
    running.server.reloadTls();

    await expect(firstValueFrom(before.send('sum', [2]))).resolves.toBe(2); // the old connection is kept
    const bob2 = await issueCertificate(ca2, { cn: 'bob' });
    const after = await calcClient(
      running.port,
      { reconnect: false },
      { caFile: pki.write('ca2.crt', ca2.cert), certFile: pki.write('bob2.crt', bob2.cert), keyFile: pki.write('bob2.key', bob2.key) },
    );
    open.push(after);
    await expect(firstValueFrom(after.send('whoami', {}))).resolves.toMatchObject({ cn: 'bob' });
    expect(after.unwrap<TLSSocket>().getPeerCertificate().serialNumber).not.toBe(oldSerial);
    const stale = await client(running.port, await issueCertificate(ca, { cn: 'carol' }));
    await expect(stale.connect()).rejects.toBeInstanceOf(ErpsTlsError); // old CA, new connection: refused
    expect(running.probe.peers).toEqual(['bob']);
  });

  it('tls.watch reloads by itself when the files change', async () => {
    const serverFiles = pki.files('server', ca, await serverCert(ca));
    const running = await startFeaturesServer({ tls: { ...serverFiles, watch: { intervalMs: 20 } } });
    open.push(running);
    let reloads = 0;
    running.server.on('tlsReloaded', () => reloads++);
    const alice = await issueCertificate(ca, { cn: 'alice' });
    const first = await client(running.port, alice);
    await first.connect();
    const firstSerial = first.unwrap<TLSSocket>().getPeerCertificate().serialNumber;
    const server2 = await serverCert(ca);
    writeFileSync(serverFiles.keyFile, server2.key);
    writeFileSync(serverFiles.certFile, server2.cert + '\n');
    await waitFor(() => reloads > 0, 3000);
    const second = await client(running.port, alice);
    await second.connect();
    expect(second.unwrap<TLSSocket>().getPeerCertificate().serialNumber).not.toBe(firstSerial);
    expect(second.unwrap<TLSSocket>().getPeerCertificate().serialNumber.toLowerCase()).toBe(server2.serialNumber.toLowerCase());
  });

  it('client.reloadTls(): the next connection presents the new client certificate', async () => {
    const running = await startFeaturesServer({ tls: pki.files('server', ca, await serverCert(ca)) });
    open.push(running);
    const files = pki.files('rotating-client', ca, await issueCertificate(ca, { cn: 'alice' }));
    const rotating = await calcClient(running.port, { reconnect: { minDelayMs: 5, maxDelayMs: 10 } }, files);
    open.push(rotating);
    await expect(firstValueFrom(rotating.send('whoami', {}))).resolves.toMatchObject({ cn: 'alice' });
    const renewed = await issueCertificate(ca, { cn: 'alice-renewed' });
    writeFileSync(files.certFile, renewed.cert);
    writeFileSync(files.keyFile, renewed.key);
    rotating.reloadTls();
    await expect(firstValueFrom(rotating.send('whoami', {}))).resolves.toMatchObject({ cn: 'alice' }); // same connection
    rotating.unwrap<TLSSocket>().destroy();
    await waitFor(() => rotating.currentStatus === 'connected' && running.server.connections().some((c) => c.peer?.cn === 'alice-renewed'), 3000);
    await expect(firstValueFrom(rotating.send('whoami', {}))).resolves.toMatchObject({ cn: 'alice-renewed' });
  });

  it('a CRL (tls.crlFile) makes a revoked client certificate fail the handshake; others are served', async () => {
    const alice = await issueCertificate(ca, { cn: 'alice' });
    const revoked = await issueCertificate(ca, { cn: 'revoked-bob' });
    const crlFile = pki.write('ca.crl', await createCrl(ca, [revoked.serialNumber]));
    const running = await startFeaturesServer({ tls: { ...pki.files('server', ca, await serverCert(ca)), crlFile } });
    open.push(running);
    const good = await client(running.port, alice);
    const bad = await client(running.port, revoked);
    const calls = Promise.all(Array.from({ length: 20 }, (_, i) => firstValueFrom(good.send('sum', [i]))));
    await expect(bad.connect()).rejects.toBeInstanceOf(ErpsTlsError);
    await expect(calls).resolves.toHaveLength(20);
    expect(running.probe.calls).toEqual(Array(20).fill('sum'));
  });

  it('an unusable certificate, key or CRL is an ErpsConfigError at construction', async () => {
    const files = pki.files('server', ca, await serverCert(ca));
    const otherKey = pki.write('other.key', (await serverCert(ca)).key);
    expect(() => new ErpsServer({ tls: { ...files, keyFile: otherKey } })).toThrow(ErpsConfigError);
    expect(() => new ErpsServer({ tls: { ...files, crl: '-----BEGIN X509 CRL-----\nnope\n-----END X509 CRL-----\n' } })).toThrow(/cannot be used/);
    expect(() => new ErpsClient({ port: 1, tls: { ...files, cert: 'garbage' } })).toThrow(ErpsConfigError);
  });

  it('expired and not-yet-valid client certificates are refused', async () => {
    const running = await startFeaturesServer({ tls: pki.files('server', ca, await serverCert(ca)) });
    open.push(running);
    const expired = await issueCertificate(ca, { cn: 'expired', notBefore: new Date(Date.now() - 30 * DAY), notAfter: new Date(Date.now() - DAY) });
    const future = await issueCertificate(ca, { cn: 'future', notBefore: new Date(Date.now() + DAY), notAfter: new Date(Date.now() + 30 * DAY) });
    const good = await client(running.port, await issueCertificate(ca, { cn: 'alice' }));
    for (const issued of [expired, future]) {
      const c = await client(running.port, issued);
      await expect(c.connect()).rejects.toBeInstanceOf(ErpsTlsError);
    }
    await expect(firstValueFrom(good.send('sum', [3]))).resolves.toBe(3);
    expect(running.probe.calls).toEqual(['sum']);
  });
});
