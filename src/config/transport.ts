import { checkServerIdentity, type ConnectionOptions as TlsClientOptions, type TlsOptions as TlsServerOptions } from 'node:tls';
import { ErpsConfigError, describeError } from '../errors/index.js';
import { hardenedTlsOptions } from '../tls/hardening.js';
import { assertUsable, ErpsTlsOptions, loadTlsMaterial, secureOptions, watchTlsFiles } from '../tls/tls-options.js';

/** 'tls' = mutual TLS; 'tcp' = plain TCP (development); 'local' = in-process, no socket (Erps `transport: false`). */
export type ErpsTransportKind = 'tls' | 'tcp' | 'local';

export function assertTransport(owner: string, transport: unknown): asserts transport is ErpsTransportKind {
  if (transport !== 'tls' && transport !== 'tcp' && transport !== 'local') {
    throw new ErpsConfigError(`${owner}: unknown transport "${String(transport)}" (expected 'tls', 'tcp' or 'local')`);
  }
}

export interface ServerTls {
  /** Options for tls.createServer (client certificates requested; verified by the daemon itself after TLS). */
  context: TlsServerOptions;
  /** Whether client certificates must verify (requestCert and rejectUnauthorized, both on by default). */
  verifyClients: boolean;
}

/** The server's TLS options from `tls` (PEM or files): validated now, so a bad certificate fails at construction. */
export function resolveServerTls(tls: ErpsTlsOptions | undefined, handshakeTimeoutMs: number): ServerTls {
  const material = loadTlsMaterial(tls, 'ErpsServer');
  assertUsable(material, 'ErpsServer');
  const requestCert = material.rest.requestCert ?? true;
  return {
    context: {
      minVersion: 'TLSv1.2',
      handshakeTimeout: handshakeTimeoutMs,
      ...material.rest,
      ...hardenedTlsOptions(material.rest),
      ...secureOptions(material),
      requestCert,
      // Verified after TLS instead: Node's own refusal closes without a word, ours tells the client and the log why.
      rejectUnauthorized: false,
    },
    verifyClients: requestCert && (material.rest.rejectUnauthorized ?? true),
  };
}

/** The client's TLS options from `tls`; `serverName` is checked instead of the dialled host, and sent as SNI. */
export function resolveClientTls(tls: ErpsTlsOptions | undefined): TlsClientOptions {
  const material = loadTlsMaterial(tls, 'ErpsClient');
  assertUsable(material, 'ErpsClient');
  const serverName = tls?.serverName;
  return {
    minVersion: 'TLSv1.2',
    ...material.rest,
    ...hardenedTlsOptions(material.rest),
    ...secureOptions(material),
    ...(serverName !== undefined ? { servername: serverName, checkServerIdentity: (_host: string, cert) => checkServerIdentity(serverName, cert) } : {}),
  };
}

/**
 * Certificate rotation, the same on both ends: `reload()` re-reads the files (or PEM options) and hands the new
 * secure options to `install`; `watch()` does it when the files change (tls.watch) and reports failures to `failed`.
 */
export class TlsReloader {
  constructor(
    private readonly owner: string,
    private readonly tls: ErpsTlsOptions | undefined,
    private readonly install: (secure: ReturnType<typeof secureOptions>) => void,
  ) {}

  /** Throws ErpsConfigError (and installs nothing) if the files cannot be read or used. */
  reload(): void {
    const material = loadTlsMaterial(this.tls, this.owner);
    try {
      this.install(secureOptions(material));
    } catch (err) {
      throw err instanceof ErpsConfigError ? err : new ErpsConfigError(`${this.owner}.reloadTls(): ${describeError(err)}`);
    }
  }

  /** Starts watching (when `tls.watch` asks for it); returns the function that stops. */
  watch(reloaded: () => void, failed: (err: unknown) => void): () => void {
    return watchTlsFiles(this.tls, () => {
      try {
        this.reload();
        reloaded();
      } catch (err) {
        failed(err);
      }
    });
  }
}
