/**
 * A loopback TCP proxy that holds back each TLS record the client sends (the slow-handshake attack): record k
 * reaches the daemon `delayMs` after record k−1 did (or after it arrived, if later). The daemon's bytes pass
 * at once. It notes when each upstream connection opened and closed, and who closed it.
 */
import * as net from 'node:net';

/** TLS record header: content type (1), version (2), length (2). */
const RECORD_HEADER = 5;

export interface ProxiedConnection {
  /** When the daemon accepted the TCP connection (upstream connect), and when it went away. */
  upstreamOpenedAt: number;
  upstreamClosedAt: number;
  closedBy: 'daemon' | 'client' | undefined;
  /** Complete TLS records received from the client so far. */
  clientRecords: number;
}

export class DelayProxy {
  delayMs = 0;
  readonly connections: ProxiedConnection[] = [];
  private readonly sockets = new Set<net.Socket>();

  private constructor(private readonly server: net.Server) {}

  static start(targetPort: number): Promise<DelayProxy> {
    return new Promise((resolve, reject) => {
      const server = net.createServer();
      const proxy = new DelayProxy(server);
      server.on('connection', (client) => proxy.accept(client, targetPort));
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve(proxy));
    });
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket, targetPort: number): void {
    const upstream = net.connect({ host: '127.0.0.1', port: targetPort });
    const state: ProxiedConnection = { upstreamOpenedAt: 0, upstreamClosedAt: 0, closedBy: undefined, clientRecords: 0 };
    this.connections.push(state);
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('error', () => undefined);
      s.once('close', () => this.sockets.delete(s));
    }
    upstream.once('connect', () => (state.upstreamOpenedAt = Date.now()));
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    upstream.once('close', () => {
      state.upstreamClosedAt = Date.now();
      state.closedBy ??= 'daemon';
      client.destroy();
    });
    client.once('close', () => {
      state.closedBy ??= 'client';
      upstream.destroy();
    });

    const delayMs = this.delayMs;
    let pending = Buffer.alloc(0);
    let lastForwardAt = 0;
    client.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= RECORD_HEADER) {
        const size = RECORD_HEADER + pending.readUInt16BE(3);
        if (pending.length < size) break;
        const record = pending.subarray(0, size);
        pending = pending.subarray(size);
        state.clientRecords++;
        const at = Math.max(Date.now(), lastForwardAt) + delayMs;
        lastForwardAt = at;
        setTimeout(() => upstream.destroyed || upstream.write(record), at - Date.now());
      }
    });
  }
}
