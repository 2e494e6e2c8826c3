import * as net from 'node:net';

/** A loopback TCP proxy whose client dribbles: every chunk it sends reaches the server `delayMs` late. */
export interface DelayingProxy {
  port: number;
  /** Per proxied connection: how long the server kept it open (ms from its TCP accept to its close). */
  lifetimes: Array<Promise<number>>;
  close(): Promise<void>;
}

export function startDelayingProxy(targetPort: number, delayMs: number): Promise<DelayingProxy> {
  const lifetimes: Array<Promise<number>> = [];
  const sockets = new Set<net.Socket>();
  const proxy = net.createServer((client) => {
    const upstream = net.connect({ host: '127.0.0.1', port: targetPort });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => sockets.delete(socket));
    }
    lifetimes.push(
      new Promise((resolve) => {
        upstream.once('connect', () => {
          const acceptedAt = Date.now();
          upstream.once('close', () => resolve(Date.now() - acceptedAt));
        });
        upstream.once('error', () => resolve(Number.NaN));
      }),
    );
    client.on('data', (chunk: Buffer) => setTimeout(() => upstream.destroyed || upstream.write(chunk), delayMs));
    upstream.on('data', (chunk: Buffer) => client.destroyed || client.write(chunk));
    upstream.on('close', () => client.destroy());
    client.on('close', () => upstream.destroy());
  });
  return new Promise((resolve) => {
    proxy.listen(0, '127.0.0.1', () => {
      resolve({
        port: (proxy.address() as net.AddressInfo).port,
        lifetimes,
        close: () =>
          new Promise<void>((done) => {
            for (const socket of sockets) socket.destroy();
            proxy.close(() => done());
          }),
      });
    });
  });
}
