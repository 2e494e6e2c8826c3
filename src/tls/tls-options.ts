import { X509Certificate } from 'node:crypto';
import { readFileSync, type Stats, unwatchFile, watchFile } from 'node:fs';
import { createSecureContext, type ConnectionOptions, type TlsOptions } from 'node:tls';
import { ErpsConfigError, describeError } from '../errors/index.js';

type Pem = string | Buffer | Array<string | Buffer>;

/**
 * Certificates as PEM (`ca`, `cert`, `key`) or as file paths (`caFile`, `certFile`, `keyFile`).
 * Any other Node TLS option passes through unchanged (ciphers, minVersion, passphrase, ...), except that
 * `ciphers` defaults to ERPS_DEFAULT_CIPHERS and `secureOptions` always gains SSL_OP_NO_RENEGOTIATION.
 */
export interface ErpsTlsOptions extends Omit<TlsOptions & ConnectionOptions, 'ca' | 'cert' | 'key' | 'crl'> {
  ca?: Pem;
  cert?: Pem;
  key?: Pem;
  /** Certificate revocation list(s) (PEM): a revoked peer certificate fails the handshake. */
  crl?: Pem;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  crlFile?: string;
  /**
   * Re-read the files when they change (`reloadTls()` on each change), polling every `intervalMs`
   * (default 1000). Established connections are kept; new ones use the new certificates.
   */
  watch?: boolean | { intervalMs?: number };
  /**
   * Client only: the name the server certificate must carry (checked instead of `host`), and sent as SNI.
   * Use it when you dial an address the certificate does not name.
   */
  serverName?: string;
}

export interface TlsMaterial {
  ca: Pem;
  cert: Pem;
  key: Pem;
  /** The pass-through Node TLS options, without our own keys. */
  crl: Pem | undefined;
  rest: Omit<ErpsTlsOptions, 'ca' | 'cert' | 'key' | 'crl' | 'caFile' | 'certFile' | 'keyFile' | 'crlFile' | 'serverName' | 'watch'>;
}

function readPem(path: string, what: string, owner: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ErpsConfigError(`${owner}: cannot read tls.${what}File "${path}": ${describeError(err)}`);
  }
}

/**
 * Loads CA, certificate and key for mutual TLS, from PEM or from files. Throws a clear ErpsConfigError
 * naming whatever is missing: mutual TLS needs all three on both sides.
 */
export function loadTlsMaterial(options: ErpsTlsOptions | undefined, owner: string): TlsMaterial {
  const { ca, cert, key, crl, caFile, certFile, keyFile, crlFile, serverName: _serverName, watch: _watch, ...rest } = options ?? {};
  const material = {
    ca: ca ?? (caFile !== undefined ? readPem(caFile, 'ca', owner) : undefined),
    cert: cert ?? (certFile !== undefined ? readPem(certFile, 'cert', owner) : undefined),
    key: key ?? (keyFile !== undefined ? readPem(keyFile, 'key', owner) : undefined),
  };
  const missing = (['ca', 'cert', 'key'] as const).filter((name) => material[name] === undefined);
  if (missing.length > 0) {
    throw new ErpsConfigError(
      `${owner}: transport 'tls' (mutual TLS, the default) needs tls.ca, tls.cert and tls.key ` +
        `(or caFile/certFile/keyFile); missing: ${missing.join(', ')}. ` +
        `For development certificates run \`npx erps certs ./certs\` (or call generateDevCertificates({ dir: 'certs' }) ` +
        `from "nestjs-erps/testing"): it writes ca.crt, server.crt/.key and client certificates. Or set transport: 'tcp' ` +
        `for plain TCP in development.`,
    );
  }
  const revoked = crl ?? (crlFile !== undefined ? readPem(crlFile, 'crl', owner) : undefined);
  return { ca: material.ca!, cert: material.cert!, key: material.key!, crl: revoked, rest };
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * `tls.ca` must hold at least one CA certificate: OpenSSL accepts garbage, or a private key, there without a word,
 * and every peer is then refused with an unhelpful "unknown CA".
 */
function assertCaCertificates(ca: Pem, owner: string): void {
  const text = (Array.isArray(ca) ? ca : [ca]).map((part) => part.toString()).join('\n');
  const certificates: X509Certificate[] = [];
  for (const pem of text.match(PEM_CERTIFICATE) ?? []) {
    try {
      certificates.push(new X509Certificate(pem));
    } catch {
      // an unreadable block: judged below with the rest
    }
  }
  if (certificates.length === 0) {
    throw new ErpsConfigError(`${owner}: tls.ca (or caFile) holds no readable certificate; it must contain the PEM "BEGIN CERTIFICATE" of the CA that signs the peer's certificate`);
  }
  if (!certificates.some((certificate) => certificate.ca)) {
    throw new ErpsConfigError(
      `${owner}: tls.ca (or caFile) holds no CA certificate (${certificates.map((c) => c.subject.replace(/\n/g, ', ')).join('; ')} ${certificates.length === 1 ? 'is' : 'are'} not CA:TRUE); give the CA that signs the peer's certificate`,
    );
  }
}

/**
 * Builds a secure context once so that a bad certificate, key or CRL is an ErpsConfigError at construction, and
 * checks that `ca` holds a CA certificate.
 */
export function assertUsable(material: TlsMaterial, owner: string): void {
  assertCaCertificates(material.ca, owner);
  try {
    createSecureContext({ ...material.rest, ...secureOptions(material) });
  } catch (err) {
    throw new ErpsConfigError(`${owner}: the TLS certificate, key, CA or CRL cannot be used: ${describeError(err)}`);
  }
}

/** Node TLS options from loaded material (`crl` only when there is one). */
export function secureOptions(material: TlsMaterial): { ca: Pem; cert: Pem; key: Pem; crl?: Pem } {
  return material.crl === undefined ? { ca: material.ca, cert: material.cert, key: material.key } : { ca: material.ca, cert: material.cert, key: material.key, crl: material.crl };
}

/**
 * Polls the certificate files named in `options` and calls `onChange` when one changes (tls.watch).
 * Returns the function that stops watching. Nothing to watch without files or without `watch`.
 */
export function watchTlsFiles(options: ErpsTlsOptions | undefined, onChange: () => void): () => void {
  if (!options?.watch) return () => undefined;
  const intervalMs = typeof options.watch === 'object' ? (options.watch.intervalMs ?? 1000) : 1000;
  const files = [options.caFile, options.certFile, options.keyFile, options.crlFile].filter((file): file is string => file !== undefined);
  let pending: NodeJS.Timeout | undefined;
  const changed = (current: Stats, previous: Stats): void => {
    if (current.mtimeMs === previous.mtimeMs && current.size === previous.size) return;
    // Files of a rotation usually change together: one reload for the batch.
    clearTimeout(pending);
    pending = setTimeout(onChange, 50);
    pending.unref();
  };
  for (const file of files) watchFile(file, { interval: intervalMs, persistent: false }, changed);
  return () => {
    clearTimeout(pending);
    for (const file of files) unwatchFile(file, changed);
  };
}
