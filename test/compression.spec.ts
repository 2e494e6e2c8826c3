import * as tls from 'node:tls';
import { deflateRawSync } from 'node:zlib';
import { firstValueFrom } from 'rxjs';
import { ErpsClient, ErpsFrameTooLargeError } from 'nestjs-erps';
import { encodeFrame, FrameFlags, FrameType, HEADER_BYTES } from '../src/protocol/frame';
import { encodeHello, WIRE_VERSION } from '../src/protocol/handshake';
import { encodeMessagePrefix } from '../src/protocol/message';
import { clientFor, RunningServer } from './support/apps';
import { testCertificates } from './support/certs';
import { startFeaturesServer } from './support/features-app';
import { waitFor } from './support/wait';
import { rawTlsSocket } from './support/raw-tls';

describe.each(['deflate', 'brotli'] as const)('compression (%s), negotiated in the handshake', (algorithm) => {
  let running: RunningServer;
  let client: ErpsClient;

  beforeAll(async () => {
    running = await startFeaturesServer({ compression: { threshold: 1024 } });
    client = await clientFor(running, { compression: { threshold: 1024, algorithm } });
    await client.connect();
  });

  afterAll(async () => {
    await client.close();
    await running.close();
  });

  it('compresses large frames both ways (few bytes on the wire) and round-trips them intact', async () => {
    const socket = client.unwrap<tls.TLSSocket>();
    const written = socket.bytesWritten;
    const read = socket.bytesRead;
    const payload = Buffer.alloc(3 * 1024 * 1024, 'abcdefgh');
    const echoed = await firstValueFrom(client.send<Buffer>('echo', payload));
    expect(echoed.equals(payload)).toBe(true);
    expect(socket.bytesWritten - written).toBeLessThan(payload.length / 20);
    expect(socket.bytesRead - read).toBeLessThan(payload.length / 20);
    const zeros = await firstValueFrom(client.send<Buffer>('zeros', 2_000_000));
    expect(zeros.length).toBe(2_000_000);
  });

  it('leaves small frames alone and keeps working', async () => {
    await expect(firstValueFrom(client.send('sum', [1, 2]))).resolves.toBe(3);
  });
});

describe('decompression bomb', () => {
  it('is stopped by maxFrameBytes on the inflated size: that connection closes, no handler runs, others go on', async () => {
    const running = await startFeaturesServer({ compression: { threshold: 1024 }, maxFrameBytes: 1024 * 1024 });
    const good = await clientFor(running, { compression: { threshold: 1024 } }, 'bob');
    const reasons: unknown[] = [];
    running.server.on('disconnect', (_info: unknown, reason: unknown) => reasons.push(reason));
    const certs = await testCertificates();
    const socket = rawTlsSocket(running.port, certs.clients.alice);
    const secure = new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    try {
      await firstValueFrom(good.send('sum', [1]));
      await secure;
      socket.write(encodeFrame(FrameType.HELLO, 0, 0, encodeHello({ wireVersion: WIRE_VERSION, codec: 'msgpack', features: 0x01, identifier: 'calc', version: '1.2.0' })));
      const welcome = await new Promise<Buffer>((resolve) => socket.once('data', resolve));
      expect(welcome[4]).toBe(FrameType.WELCOME);
      // 64 MiB of zeros inflate from a few tens of KiB: past the server's 1 MiB limit.
      const inflated = Buffer.concat([encodeMessagePrefix(Buffer.from('sum'), null), Buffer.alloc(64 * 1024 * 1024)]);
      const bomb = deflateRawSync(inflated);
      expect(bomb.length).toBeLessThan(HEADER_BYTES + 128 * 1024);
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.on('error', () => undefined);
      socket.write(encodeFrame(FrameType.CALL, FrameFlags.COMPRESSED, 1, bomb));
      await closed;
      await waitFor(() => reasons.length > 0);
      expect(reasons[0]).toBeInstanceOf(ErpsFrameTooLargeError);
      expect(running.probe.calls).toEqual(['sum']); // only the good client's call: the bomb's 'sum' never ran
      await expect(firstValueFrom(good.send('sum', [2, 3]))).resolves.toBe(5);
    } finally {
      socket.destroy();
      await good.close();
      await running.close();
    }
  });
});
