import * as tls from 'node:tls';

export interface TlsIdentity {
  ca: string | Buffer;
  cert: string | Buffer;
  key: string | Buffer;
}

export interface HandshakeOutcome {
  socket: tls.TLSSocket;
  /** Negotiated cipher and protocol when the handshake succeeded. */
  cipher?: string;
  protocol?: string | null;
  /** The error code (or message) when it failed. */
  error?: string;
}

/** A bare TLS client (no Erps handshake) with extra Node options (maxVersion, ciphers, ...); resolves once TLS is done or has failed. */
export function tlsHandshake(port: number, identity: TlsIdentity, options: tls.ConnectionOptions = {}): Promise<HandshakeOutcome> {
  const socket = tls.connect({ host: '127.0.0.1', port, ...identity, ...options });
  return new Promise((resolve) => {
    socket.once('secureConnect', () => resolve({ socket, cipher: socket.getCipher().name, protocol: socket.getProtocol() }));
    socket.once('error', (err: NodeJS.ErrnoException) => resolve({ socket, error: err.code ?? err.message }));
    socket.once('close', () => resolve({ socket, error: 'closed' }));
  });
}
