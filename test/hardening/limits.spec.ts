import * as net from 'node:net';
import { firstValueFrom } from 'rxjs';
import { ErpsFrameTooLargeError, ErpsHandshakeError } from 'nestjs-erps';
import { clientFor } from '../support/apps';
import { testCertificates } from '../support/certs';
import { startFeaturesServer } from '../support/features-app';
import { waitFor } from '../support/wait';
import { rawTlsSocket } from '../support/raw-tls';

describe('resource limits', () => {
  it('maxInFlightPerConnection: excess calls get ERPS_BUSY, the connection stays up', async () => {
    const running = await startFeaturesServer({ maxInFlightPerConnection: 5 });
    const client = await clientFor(running);
    try {
      const results = await Promise.all(
        Array.from({ length: 8 }, () =>
          firstValueFrom(client.send('slow', 100)).then(
            (v) => v,
            (e: { code?: string }) => e.code,
          ),
        ),
      );
      expect(results.filter((r) => r === 'done')).toHaveLength(5);
      expect(results.filter((r) => r === 'ERPS_BUSY')).toHaveLength(3);
      expect(client.currentStatus).toBe('connected');
      await expect(firstValueFrom(client.send('sum', [1, 2]))).resolves.toBe(3);
    } finally {
      await client.close();
      await running.close();
    }
  });

  it('maxConnections: one more is refused with a reason (and retried later), others go on', async () => {
    const running = await startFeaturesServer({ maxConnections: 2 });
    const alice = await clientFor(running, {}, 'alice');
    const bob = await clientFor(running, {}, 'bob');
    const third = await clientFor(running, { reconnect: { minDelayMs: 10, maxDelayMs: 20 } }, 'alice');
    const rejected: string[] = [];
    running.server.on('handshakeRejected', (_info: unknown, reason: string) => rejected.push(reason));
    try {
      await Promise.all([alice.connect(), bob.connect()]);
      const err = await third.connect().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ErpsHandshakeError);
      expect((err as Error).message).toMatch(/server full \(maxConnections 2\)/);
      expect(third.currentStatus).not.toBe('failed'); // "full" is temporary: it keeps retrying
      expect(running.probe.calls).toEqual([]);
      await expect(firstValueFrom(alice.send('sum', [1]))).resolves.toBe(1);
      await bob.close();
      await waitFor(() => third.currentStatus === 'connected', 3000);
      await expect(firstValueFrom(third.send('sum', [2]))).resolves.toBe(2);
      expect(rejected.length).toBeGreaterThan(0);
    } finally {
      await Promise.all([alice.close(), bob.close(), third.close()]);
      await running.close();
    }
  });

  it('handshakeTimeoutMs: a slow-loris (TCP only, or TLS without HELLO) is closed', async () => {
    const running = await startFeaturesServer({ handshakeTimeoutMs: 150 });
    const good = await clientFor(running);
    const certs = await testCertificates();
    try {
      const closedWithin = (socket: net.Socket): Promise<number> =>
        new Promise((resolve) => {
          const start = Date.now();
          socket.on('error', () => undefined);
          socket.resume();
          socket.on('close', () => resolve(Date.now() - start));
        });
      const raw = net.connect({ host: '127.0.0.1', port: running.port }); // never starts TLS
      const silent = rawTlsSocket(running.port, certs.clients.alice); // TLS, then never a HELLO
      const calls = Promise.all(Array.from({ length: 20 }, (_, i) => firstValueFrom(good.send('sum', [i]))));
      const [rawMs, silentMs] = await Promise.all([closedWithin(raw), closedWithin(silent)]);
      expect(rawMs).toBeLessThan(1500);
      expect(silentMs).toBeLessThan(1500);
      expect(rawMs).toBeGreaterThanOrEqual(100);
      await expect(calls).resolves.toEqual(Array.from({ length: 20 }, (_, i) => i));
      expect(running.probe.calls).toHaveLength(20);
    } finally {
      await good.close();
      await running.close();
    }
  });

  it('idleTimeoutMs: a connection that carries nothing is closed; a busy one is not', async () => {
    const running = await startFeaturesServer({ idleTimeoutMs: 150 });
    const idle = await clientFor(running, { reconnect: false }, 'bob');
    const busy = await clientFor(running, {}, 'alice');
    const reasons: unknown[] = [];
    running.server.on('disconnect', (_info: unknown, reason: unknown) => reasons.push(reason));
    try {
      await Promise.all([idle.connect(), busy.connect()]);
      await expect(firstValueFrom(busy.send('slow', 300))).resolves.toBe('done'); // longer than the idle timeout
      await waitFor(() => idle.currentStatus === 'disconnected', 2000);
      expect(String(reasons[0])).toMatch(/idle for 150 ms/);
      expect(busy.currentStatus).toBe('connected');
    } finally {
      await Promise.all([idle.close(), busy.close()]);
      await running.close();
    }
  });

  it("a message above the server's maxFrameBytes fails alone on the client; the connection and other calls go on", async () => {
    const running = await startFeaturesServer({ maxFrameBytes: 1024 * 1024 });
    const client = await clientFor(running);
    try {
      const slow = firstValueFrom(client.send('slow', 100));
      const big = Buffer.alloc(2 * 1024 * 1024);
      await expect(firstValueFrom(client.send('echo', big))).rejects.toBeInstanceOf(ErpsFrameTooLargeError);
      await expect(firstValueFrom(client.emit('audit', big))).rejects.toMatchObject({ code: 'ERPS_FRAME_TOO_LARGE' });
      await expect(slow).resolves.toBe('done');
      const fits = Buffer.alloc(512 * 1024, 1);
      await expect(firstValueFrom(client.send('echo', fits))).resolves.toEqual(fits);
      expect(client.stats().connections).toBe(1);
      expect(running.server.connections()).toHaveLength(1);
    } finally {
      await client.close();
      await running.close();
    }
  });

  it('maxDepth: a deeply nested payload is refused with a codec error, the connection goes on', async () => {
    const running = await startFeaturesServer({ maxDepth: 16 });
    const client = await clientFor(running);
    try {
      let deep: unknown = 1;
      for (let i = 0; i < 40; i++) deep = [deep];
      await expect(firstValueFrom(client.send('echo', deep))).rejects.toMatchObject({ code: 'ERPS_CODEC', message: expect.stringContaining('maxDepth (16)') });
      await expect(firstValueFrom(client.send('echo', [[[1]]]))).resolves.toEqual([[[1]]]);
    } finally {
      await client.close();
      await running.close();
    }
  });
});
