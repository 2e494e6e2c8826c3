import { randomBytes } from 'node:crypto';
import { firstValueFrom } from 'rxjs';
import { ErpsClient, ErpsFrameTooLargeError, ErpsProtocolError } from 'nestjs-erps';
import { encodeFrame, FrameType, HEADER_BYTES } from '../src/protocol/frame';
import { encodeHello, WIRE_VERSION } from '../src/protocol/handshake';
import { calcClient, RunningServer, startCalcServer } from './support/apps';
import { testCertificates } from './support/certs';
import { waitFor } from './support/wait';
import { rawTlsSocket } from './support/raw-tls';

describe('a peer with a good certificate that sends garbage', () => {
  let running: RunningServer;
  let good: ErpsClient;
  const reasons: unknown[] = [];

  beforeAll(async () => {
    running = await startCalcServer({ maxFrameBytes: 1024 * 1024 });
    running.server.on('disconnect', (_info: unknown, reason: unknown) => reasons.push(reason));
    good = await calcClient(running.port, {}, 'bob');
    await good.connect();
  });

  afterAll(async () => {
    await good.close();
    await running.close();
  });

  async function send(bytes: Buffer, afterHello: boolean): Promise<void> {
    const certs = await testCertificates();
    const socket = rawTlsSocket(running.port, certs.clients.alice);
    socket.on('error', () => undefined);
    socket.resume(); // read (and drop) whatever the server sends, so its close is seen
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.once('secureConnect', () => {
      if (afterHello) socket.write(encodeFrame(FrameType.HELLO, 0, 0, encodeHello({ wireVersion: WIRE_VERSION, codec: 'msgpack', features: 0, identifier: 'calc', version: '1.2.0' })));
      socket.write(bytes);
    });
    await closed; // the server closed this connection
  }

  const oversize = Buffer.alloc(HEADER_BYTES);
  oversize.writeUInt32BE(512 * 1024 * 1024, 0);
  oversize[4] = FrameType.CALL;

  it.each([
    ['random bytes', randomBytes(4096), false, ErpsProtocolError, /unknown frame type|malformed HELLO/],
    ['an unknown frame type', encodeFrame(0x7f as FrameType, 0, 0), true, ErpsProtocolError, /unknown frame type 0x7f/],
    ['an oversize length', oversize, true, ErpsFrameTooLargeError, /exceeds maxFrameBytes/],
    ['a CALL before HELLO', encodeFrame(FrameType.CALL, 0, 1, Buffer.alloc(8)), false, ErpsProtocolError, /before the handshake/],
  ] as const)('%s: closes only that connection, with a clear reason', async (_name, bytes, afterHello, type, message) => {
    const before = reasons.length;
    const calls = running.probe.calls.length;
    await expect(firstValueFrom(good.send('sum', [1, 2]))).resolves.toBe(3);
    await send(bytes, afterHello);
    await waitFor(() => reasons.length > before);
    const reason = reasons[reasons.length - 1] as Error;
    expect(reason).toBeInstanceOf(type);
    expect(reason.message).toMatch(message);
    await expect(firstValueFrom(good.send('sum', [3, 4]))).resolves.toBe(7);
    expect(running.probe.calls.length - calls).toBe(2); // only the good client's calls ran
    expect(good.currentStatus).toBe('connected');
  });
});
