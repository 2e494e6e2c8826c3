import { webcrypto } from 'node:crypto';

type CryptoKey = webcrypto.CryptoKey;
import { mkdir, readFile, writeFile, access } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type * as X509 from '@peculiar/x509';
import { ErpsConfigError } from '../errors/classes.js';
import { isMissingModule } from '../optional-peer.js';

/**
 * Development and test PKI built with @peculiar/x509 (ECDSA P-256, SHA-256). Never for production:
 * keys are written unencrypted.
 *
 * @peculiar/x509 is an optional peer dependency: it is loaded on the first call that needs it, so the package
 * installs without it and `nestjs-erps` itself never loads it.
 */
const MISSING_X509 = 'nestjs-erps/testing needs @peculiar/x509: npm install -D @peculiar/x509';

let x509Module: typeof X509 | undefined;

/** @peculiar/x509, loaded and set up on first use; an ErpsConfigError naming the package when it is not installed. */
function loadX509(): typeof X509 {
  if (x509Module) return x509Module;
  let loaded: typeof X509;
  try {
    require('reflect-metadata'); // @peculiar/x509 (through tsyringe) needs the Reflect polyfill loaded first
    loaded = require('@peculiar/x509') as typeof X509;
  } catch (error) {
    if (isMissingModule(error, '@peculiar/x509')) throw new ErpsConfigError(MISSING_X509, error);
    throw error;
  }
  loaded.cryptoProvider.set(webcrypto as never);
  x509Module = loaded;
  return loaded;
}

const ALG: webcrypto.EcKeyGenParams & webcrypto.EcdsaParams = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
const RSA_KEY: webcrypto.RsaHashedKeyGenParams = { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' };
const DAY = 24 * 60 * 60 * 1000;

export interface Issued {
  /** PEM certificate. */
  cert: string;
  /** PEM PKCS#8 private key. */
  key: string;
  /** Hex serial number. */
  serialNumber: string;
}

export interface CertificateAuthority extends Issued {
  readonly name: string;
  /** @internal */ readonly signingKey: CryptoKey;
}

export interface IssueOptions {
  cn: string;
  /** 'server' adds serverAuth, 'client' clientAuth. Default 'client'. */
  kind?: 'server' | 'client';
  /** DNS names and IP addresses for the subject alternative name. */
  dns?: string[];
  ips?: string[];
  notBefore?: Date;
  notAfter?: Date;
  /** The leaf's key: 'ecdsa' (P-256, default) or 'rsa' (2048 bits). The CA signs with ECDSA either way. */
  keyType?: 'ecdsa' | 'rsa';
}

let serialCounter = 0;
function nextSerial(): string {
  serialCounter += 1;
  const random = Buffer.from(webcrypto.getRandomValues(new Uint8Array(8))).toString('hex');
  return `01${random}${serialCounter.toString(16).padStart(4, '0')}`;
}

async function keyPem(key: CryptoKey): Promise<string> {
  const x509 = loadX509();
  const der = await webcrypto.subtle.exportKey('pkcs8', key as never);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

/** A self-signed certificate authority. */
export async function createCertificateAuthority(cn: string, options: { notBefore?: Date; notAfter?: Date } = {}): Promise<CertificateAuthority> {
  const x509 = loadX509();
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const serialNumber = nextSerial();
  const name = `CN=${cn}`;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber,
    name,
    notBefore: options.notBefore ?? new Date(Date.now() - DAY),
    notAfter: options.notAfter ?? new Date(Date.now() + 3650 * DAY),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { name, cert: cert.toString('pem'), key: await keyPem(keys.privateKey), serialNumber, signingKey: keys.privateKey };
}

/** A leaf certificate signed by `ca`. */
export async function issueCertificate(ca: CertificateAuthority, options: IssueOptions): Promise<Issued> {
  const x509 = loadX509();
  const keys = await webcrypto.subtle.generateKey(options.keyType === 'rsa' ? RSA_KEY : ALG, true, ['sign', 'verify']);
  const serialNumber = nextSerial();
  const kind = options.kind ?? 'client';
  const names: X509.JsonGeneralName[] = [
    ...(options.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(options.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const caCert = new x509.X509Certificate(ca.cert);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber,
    subject: `CN=${options.cn}`,
    issuer: caCert.subject,
    notBefore: options.notBefore ?? new Date(Date.now() - DAY),
    notAfter: options.notAfter ?? new Date(Date.now() + 825 * DAY),
    publicKey: keys.publicKey,
    signingKey: ca.signingKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([kind === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth]),
      ...(names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : []),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  return { cert: cert.toString('pem'), key: await keyPem(keys.privateKey), serialNumber };
}

/** A CRL signed by `ca` that revokes the given certificates (by their hex serial numbers). */
export async function createCrl(ca: CertificateAuthority, revokedSerials: string[], options: { nextUpdate?: Date } = {}): Promise<string> {
  const x509 = loadX509();
  const crl = await x509.X509CrlGenerator.create({
    issuer: new x509.X509Certificate(ca.cert).subject,
    thisUpdate: new Date(Date.now() - 60_000),
    nextUpdate: options.nextUpdate ?? new Date(Date.now() + 30 * DAY),
    signingKey: ca.signingKey,
    signingAlgorithm: ALG,
    entries: revokedSerials.map((serialNumber) => ({ serialNumber, revocationDate: new Date(Date.now() - 60_000) })),
  });
  // OpenSSL (and so Node) reads CRLs under the "X509 CRL" PEM label.
  return x509.PemConverter.encode(crl.rawData, 'X509 CRL');
}

/** File paths shaped for `tls: { caFile, certFile, keyFile }`. */
export interface TlsFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
}

export interface DevCertificates {
  dir: string;
  /** The dev CA's certificate file (trust anchor for both sides). */
  caFile: string;
  /** For ErpsServer: SANs localhost, 127.0.0.1, ::1. */
  server: TlsFiles;
  /** Two client identities with distinct CNs ("alice", "bob"), and those asked for with `clients`, signed by the dev CA. */
  clients: { alice: TlsFiles; bob: TlsFiles } & Record<string, TlsFiles>;
  /** A client certificate from a second CA the server does not trust (for negative tests). */
  untrustedClient: TlsFiles;
}

export interface GenerateDevCertificatesOptions {
  /** Output folder. Default: `certs/` under the current working directory. */
  dir?: string;
  /** Regenerate even if the files exist. Default false. */
  force?: boolean;
  /**
   * More client identities: `NAME.crt`/`NAME.key` with CN=NAME, signed by the dev CA (alice and bob are always
   * issued). In a folder that has its certificates already (and no `force`), the missing ones are issued with its
   * `ca.key`. Names: letters, digits, `.`, `_`, `-` (at most 64), not `ca`, `server` or `untrusted-*`.
   */
  clients?: string[];
}

const FILES = ['ca.crt', 'server.crt', 'server.key', 'alice.crt', 'alice.key', 'bob.crt', 'bob.key', 'untrusted-ca.crt', 'untrusted-client.crt', 'untrusted-client.key'];

function layout(dir: string, extraClients: string[]): DevCertificates {
  const caFile = join(dir, 'ca.crt');
  const files = (name: string): TlsFiles => ({ caFile, certFile: join(dir, `${name}.crt`), keyFile: join(dir, `${name}.key`) });
  const clients = { alice: files('alice'), bob: files('bob') } as DevCertificates['clients'];
  for (const name of extraClients) clients[name] = files(name);
  return { dir, caFile, server: files('server'), clients, untrustedClient: files('untrusted-client') };
}

const CLIENT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const RESERVED_NAMES = new Set(['ca', 'server', 'untrusted-ca', 'untrusted-client']);

/** The extra client names, checked (they become file names) and without alice, bob and repeats. */
function extraClientNames(names: string[]): string[] {
  for (const name of names) {
    if (!CLIENT_NAME.test(name) || RESERVED_NAMES.has(name.toLowerCase())) {
      throw new ErpsConfigError(
        `client name "${name}" cannot be used: use letters, digits, ".", "_" or "-" (at most 64, starting with a letter or digit), not ca, server or untrusted-*`,
      );
    }
  }
  return [...new Set(names)].filter((name) => name !== 'alice' && name !== 'bob');
}

/** The dev CA of a folder written before, from its ca.crt and ca.key, to issue more certificates with. */
async function readCertificateAuthority(dir: string): Promise<CertificateAuthority> {
  const x509 = loadX509();
  let certPem: string;
  let keyPem: string;
  try {
    [certPem, keyPem] = await Promise.all([readFile(join(dir, 'ca.crt'), 'utf8'), readFile(join(dir, 'ca.key'), 'utf8')]);
  } catch (error) {
    throw new ErpsConfigError(`cannot issue more client certificates in ${dir} without its ca.crt and ca.key: regenerate the folder with force`, error);
  }
  const signingKey = await webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decode(keyPem)[0]!, ALG, false, ['sign']);
  const cert = new x509.X509Certificate(certPem);
  return { name: cert.subject, cert: certPem, key: keyPem, serialNumber: cert.serialNumber, signingKey };
}

async function filesExist(dir: string, files: string[]): Promise<boolean> {
  try {
    await Promise.all(files.map((file) => access(join(dir, file))));
    return true;
  } catch {
    return false;
  }
}

const writePem = (dir: string, name: string, pem: string, secret = false): Promise<void> => writeFile(join(dir, name), pem, { mode: secret ? 0o600 : 0o644 });

/** Issues client certificates `names` with `ca` into `dir`. */
async function writeClients(dir: string, ca: CertificateAuthority, names: string[]): Promise<void> {
  await Promise.all(
    names.map(async (name) => {
      const issued = await issueCertificate(ca, { cn: name });
      await Promise.all([writePem(dir, `${name}.crt`, issued.cert), writePem(dir, `${name}.key`, issued.key, true)]);
    }),
  );
}

/**
 * Writes a dev CA, a server certificate (localhost, 127.0.0.1, ::1), two client certificates (CN alice and
 * bob) and an untrusted CA with its own client certificate, plus the client certificates named in `clients`. Keeps
 * existing files unless `force` (and then issues only the missing `clients`, with the folder's ca.key).
 */
export async function generateDevCertificates(options: GenerateDevCertificatesOptions = {}): Promise<DevCertificates> {
  const dir = resolve(options.dir ?? 'certs');
  const extra = extraClientNames(options.clients ?? []);
  const paths = layout(dir, extra);
  if (!options.force && (await filesExist(dir, FILES))) {
    const missing: string[] = [];
    for (const name of extra) if (!(await filesExist(dir, [`${name}.crt`, `${name}.key`]))) missing.push(name);
    if (missing.length > 0) await writeClients(dir, await readCertificateAuthority(dir), missing);
    return paths;
  }
  loadX509(); // before writing anything: fails here when @peculiar/x509 is not installed
  await mkdir(dir, { recursive: true });
  const ca = await createCertificateAuthority('nestjs-erps dev CA');
  const untrustedCa = await createCertificateAuthority('nestjs-erps untrusted CA');
  const [server, alice, bob, untrusted] = await Promise.all([
    issueCertificate(ca, { cn: 'localhost', kind: 'server', dns: ['localhost'], ips: ['127.0.0.1', '::1'] }),
    issueCertificate(ca, { cn: 'alice' }),
    issueCertificate(ca, { cn: 'bob' }),
    issueCertificate(untrustedCa, { cn: 'mallory' }),
  ]);
  const write = (name: string, pem: string, secret = false): Promise<void> => writePem(dir, name, pem, secret);
  await Promise.all([
    write('ca.crt', ca.cert),
    write('ca.key', ca.key, true),
    write('server.crt', server.cert),
    write('server.key', server.key, true),
    write('alice.crt', alice.cert),
    write('alice.key', alice.key, true),
    write('bob.crt', bob.cert),
    write('bob.key', bob.key, true),
    write('untrusted-ca.crt', untrustedCa.cert),
    write('untrusted-client.crt', untrusted.cert),
    write('untrusted-client.key', untrusted.key, true),
    writeClients(dir, ca, extra),
  ]);
  return paths;
}

/** Reads a TlsFiles triple into PEM strings (`{ ca, cert, key }`). */
export async function readTlsFiles(files: TlsFiles): Promise<{ ca: string; cert: string; key: string }> {
  const [ca, cert, key] = await Promise.all([files.caFile, files.certFile, files.keyFile].map((file) => readFile(file, 'utf8')));
  return { ca: ca!, cert: cert!, key: key! };
}
