import * as tls from 'node:tls';
import { firstValueFrom } from 'rxjs';
import { ErpsClient, ErpsSlowConsumerError } from 'nestjs-erps';
import { encodeFrame, FrameDecoder, FrameType } from '../../src/protocol/frame';
import { encodeWelcome, WIRE_VERSION } from '../../src/protocol/handshake';
import { calcClient, clientFor, RunningServer } from '../support/apps';
import { testCertificates } from '../support/certs';
import { startFeaturesServer } from '../support/features-app';
import { rawFrames, rawPeer, RawPeer } from '../support/raw-peer';
import { waitFor } from '../support/wait';

const KiB = 1024;

async function openPeer(running: RunningServer): Promise<{ peer: RawPeer; connectionId: number }> {
  const peer = await rawPeer(running.port);
  peer.write(rawFrames.hello());
  await waitFor(() => peer.frames.some((f) => f.type === FrameType.WELCOME));
  const port = peer.socket.localPort;
  await waitFor(() => running.server.connections().some((c) => c.remotePort === port));
  return { peer, connectionId: running.server.connections().find((c) => c.remotePort === port)!.connectionId };
}

describe('outbound flow control (server)', () => {
  let running: RunningServer;
  let good: ErpsClient;
  const reasons: Error[] = [];

  afterEach(async () => {
    await good.close();
    await running.close();
    reasons.length = 0;
  });

  async function start(options: Parameters<typeof startFeaturesServer>[0]): Promise<void> {
    running = await startFeaturesServer(options);
    running.server.on('disconnect', (_info: unknown, reason: Error | undefined) => reason && reasons.push(reason));
    good = await clientFor(running, {}, 'bob');
    await good.connect();
  }

  it('a client that never reads while a handler streams to it is closed as a slow consumer; the buffer stays bounded', async () => {
    const soft = 256 * KiB;
    await start({ maxWriteBufferBytes: soft, slowConsumerTimeoutMs: 300, keepaliveMs: 0 });
    const { peer } = await openPeer(running);
    peer.stopReading();
    peer.write(rawFrames.callValue(1, 'flood', 64 * KiB));
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, running.server.stats().maxWriteBufferedBytes)), 2);
    try {
      await waitFor(() => reasons.length > 0, 10_000);
    } finally {
      clearInterval(sampler);
    }
    expect(reasons[0]).toBeInstanceOf(ErpsSlowConsumerError);
    expect(reasons[0]).toMatchObject({ code: 'ERPS_SLOW_CONSUMER', maxWriteBufferBytes: soft });
    // Four times the soft limit is the hard one; one more stream value may be on its way in.
    expect(peak).toBeLessThanOrEqual(4 * soft + 80 * KiB);
    await expect(firstValueFrom(good.send('sum', [1, 2]))).resolves.toBe(3);
    peer.socket.destroy();
  });

  it('push() and broadcast() skip a connection that does not read, and it is closed after slowConsumerTimeoutMs', async () => {
    const soft = 64 * KiB;
    await start({ maxWriteBufferBytes: soft, slowConsumerTimeoutMs: 200, keepaliveMs: 0 });
    const { peer, connectionId } = await openPeer(running);
    peer.stopReading();
    let accepted = 0;
    while (running.server.push(connectionId, 'blob', Buffer.alloc(16 * KiB)) && accepted < 100_000) accepted++;
    expect(accepted).toBeLessThan(100_000);
    expect(running.server.push(connectionId, 'blob', 'x')).toBe(false);
    const received: unknown[] = [];
    good.pushes('blob').subscribe((push) => received.push(push.data));
    expect(running.server.broadcast('blob', 'to all')).toBe(1); // the good client only
    await waitFor(() => received.includes('to all'));
    // Kernel buffers may still take a little of what waits; a server that keeps pushing keeps it over the limit.
    const pushing = setInterval(() => running.server.push(connectionId, 'blob', Buffer.alloc(16 * KiB)), 2);
    try {
      await waitFor(() => reasons.length > 0);
    } finally {
      clearInterval(pushing);
    }
    expect(reasons[0]).toBeInstanceOf(ErpsSlowConsumerError);
    expect(reasons[0]!.message).toMatch(/slowConsumerTimeoutMs 200/);
    peer.socket.destroy();
  });

  it('a peer that keeps sending but never reads is dropped for missed PONGs within keepaliveMs × maxMissedPings', async () => {
    await start({ keepaliveMs: 100, maxMissedPings: 2 });
    const { peer } = await openPeer(running);
    peer.stopReading();
    let id = 1;
    const sending = setInterval(() => peer.write(rawFrames.callValue(id++, 'sum', [1])), 20);
    try {
      await waitFor(() => reasons.length > 0, 3000);
    } finally {
      clearInterval(sending);
    }
    expect(reasons[0]!.message).toMatch(/answered no PING for \d+ ms/);
    expect(id).toBeGreaterThan(5); // it was sending all along
    peer.socket.destroy();
  });
});

describe('outbound flow control (client)', () => {
  it('a server that stops reading makes new calls fail fast with ErpsSlowConsumerError, never unbounded memory', async () => {
    const certs = await testCertificates();
    const { readFileSync } = await import('node:fs');
    const sockets: tls.TLSSocket[] = [];
    // A daemon that answers the handshake and then never reads again.
    const server = tls.createServer(
      { ca: readFileSync(certs.server.caFile), cert: readFileSync(certs.server.certFile), key: readFileSync(certs.server.keyFile), requestCert: true, rejectUnauthorized: true },
      (socket) => {
        sockets.push(socket);
        socket.on('error', () => undefined);
        const decoder = new FrameDecoder((frame) => {
          if (frame.type !== FrameType.HELLO) return;
          socket.write(encodeFrame(FrameType.WELCOME, 0, 0, encodeWelcome({ wireVersion: WIRE_VERSION, features: 0, keepaliveMs: 0, maxFrameBytes: 4 * 1024 * KiB })));
          socket.pause();
        }, 1024);
        socket.once('data', (chunk: Buffer) => decoder.push(chunk));
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const soft = 256 * KiB;
    const client = await calcClient(port, { maxWriteBufferBytes: soft, keepaliveMs: 0, timeoutMs: 0 });
    try {
      await client.connect();
      const outcomes: Array<Promise<unknown>> = [];
      let refused: unknown;
      for (let i = 0; i < 1000 && refused === undefined; i++) {
        const outcome = firstValueFrom(client.send('echo', Buffer.alloc(256 * KiB))).catch((err: unknown) => err);
        outcomes.push(outcome);
        // Writes settle on the next turn of the event loop.
        await new Promise((resolve) => setImmediate(resolve));
        const settled = await Promise.race([outcome, Promise.resolve('pending')]);
        if (settled instanceof ErpsSlowConsumerError) refused = settled;
      }
      expect(refused).toBeInstanceOf(ErpsSlowConsumerError);
      expect(refused).toMatchObject({ code: 'ERPS_SLOW_CONSUMER', maxWriteBufferBytes: soft });
      expect(outcomes.length).toBeLessThan(1000);
      await expect(firstValueFrom(client.emit('audit', Buffer.alloc(256 * KiB)))).rejects.toBeInstanceOf(ErpsSlowConsumerError);
    } finally {
      await client.close();
      sockets.forEach((socket) => socket.destroy());
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
