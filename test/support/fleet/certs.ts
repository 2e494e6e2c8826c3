import { mkdtempSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCertificateAuthority, DevCertificates, issueCertificate, TlsFiles } from 'nestjs-erps/testing';

/** The name the fleet's DNS records use (the server certificate covers it, its subdomains too). */
export const FLEET_DNS_NAME = 'calc.test';

/** Loopback addresses the fleet certificate covers: 127.0.0.1 to 127.0.0.16, and ::1. */
export const FLEET_IPS: readonly string[] = [...Array.from({ length: 16 }, (_, i) => `127.0.0.${i + 1}`), '::1'];

/**
 * The server certificate's subject alternative names. The dev certificates (nestjs-erps/testing) cover only
 * localhost, 127.0.0.1 and ::1, so a client that dials 127.0.0.2 (a DNS A-record fleet: one port, several
 * addresses) refuses them (ERR_TLS_CERT_ALTNAME_INVALID). This one covers every address a fleet test dials and
 * every name a client might check instead: the discovered name, an SRV target, localhost.
 */
export const FLEET_SERVER_SANS = { dns: ['localhost', FLEET_DNS_NAME, `*.${FLEET_DNS_NAME}`], ips: FLEET_IPS };

/**
 * Certificates for fleet tests, in the layout of DevCertificates (ca.crt, server.crt/key, alice, bob,
 * untrusted-client), so daemon-process.js and the usual client helpers read them unchanged. Generated once per
 * test file with the generator of nestjs-erps/testing.
 */
let pending: Promise<DevCertificates> | undefined;
export function fleetCertificates(): Promise<DevCertificates> {
  pending ??= generate(mkdtempSync(join(tmpdir(), 'erps-fleet-certs-')));
  return pending;
}

async function generate(dir: string): Promise<DevCertificates> {
  const ca = await createCertificateAuthority('nestjs-erps fleet test CA');
  const untrustedCa = await createCertificateAuthority('nestjs-erps fleet untrusted CA');
  const [server, alice, bob, untrusted] = await Promise.all([
    issueCertificate(ca, { cn: FLEET_DNS_NAME, kind: 'server', dns: FLEET_SERVER_SANS.dns, ips: [...FLEET_SERVER_SANS.ips] }),
    issueCertificate(ca, { cn: 'alice' }),
    issueCertificate(ca, { cn: 'bob' }),
    issueCertificate(untrustedCa, { cn: 'mallory' }),
  ]);
  const write = (name: string, pem: string) => writeFile(join(dir, name), pem, { mode: name.endsWith('.key') ? 0o600 : 0o644 });
  await Promise.all([
    write('ca.crt', ca.cert),
    write('server.crt', server.cert),
    write('server.key', server.key),
    write('alice.crt', alice.cert),
    write('alice.key', alice.key),
    write('bob.crt', bob.cert),
    write('bob.key', bob.key),
    write('untrusted-ca.crt', untrustedCa.cert),
    write('untrusted-client.crt', untrusted.cert),
    write('untrusted-client.key', untrusted.key),
  ]);
  const caFile = join(dir, 'ca.crt');
  const files = (name: string): TlsFiles => ({ caFile, certFile: join(dir, `${name}.crt`), keyFile: join(dir, `${name}.key`) });
  return { dir, caFile, server: files('server'), clients: { alice: files('alice'), bob: files('bob') }, untrustedClient: files('untrusted-client') };
}
