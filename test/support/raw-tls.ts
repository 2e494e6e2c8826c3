import { readFileSync } from 'node:fs';
import * as tls from 'node:tls';
import type { TlsFiles } from 'nestjs-erps/testing';

/** A bare TLS socket with a client certificate, for tests that speak (or abuse) the wire protocol by hand. */
export function rawTlsSocket(port: number, identity: TlsFiles): tls.TLSSocket {
  return tls.connect({
    host: '127.0.0.1',
    port,
    ca: readFileSync(identity.caFile),
    cert: readFileSync(identity.certFile),
    key: readFileSync(identity.keyFile),
  });
}
