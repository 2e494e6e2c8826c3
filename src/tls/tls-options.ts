import { readFileSync } from 'node:fs';
import type { ConnectionOptions, TlsOptions } from 'node:tls';
import { ErpsConfigError, describeError } from '../errors.js';

type Pem = string | Buffer | Array<string | Buffer>;

/**
 * Certificates as PEM (`ca`, `cert`, `key`) or as file paths (`caFile`, `certFile`, `keyFile`).
 * Any other Node TLS option passes through unchanged (ciphers, minVersion, passphrase, ...).
 */
export interface ErpsTlsOptions extends Omit<TlsOptions & ConnectionOptions, 'ca' | 'cert' | 'key'> {
  ca?: Pem;
  cert?: Pem;
  key?: Pem;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
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
  rest: Omit<ErpsTlsOptions, 'ca' | 'cert' | 'key' | 'caFile' | 'certFile' | 'keyFile' | 'serverName'>;
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
  const { ca, cert, key, caFile, certFile, keyFile, serverName: _serverName, ...rest } = options ?? {};
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
        `Run "npm run certs" for development certificates, or set transport: 'tcp' for plain TCP in development.`,
    );
  }
  return { ca: material.ca!, cert: material.cert!, key: material.key!, rest };
}
