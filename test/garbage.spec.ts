import { firstValueFrom } from 'rxjs';
import { ErpsClient, ErpsFrameTooLargeError, ErpsProtocolError } from 'nestjs-erps';
import { encodeFrame, FrameType, HEADER_BYTES } from '../src/protocol/frame';
import { encodeHello, WIRE_VERSION } from '../src/protocol/handshake';
import { calcClient, RunningServer, startCalcServer } from './support/apps';
import { testCertificates } from './support/certs';
import { waitFor } from './support/wait';
import { rawTlsSocket } from './support/raw-tls';
import { seededBytes } from './support/seeded-bytes';

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

  /** Noise whose first header is set by hand, so the reason it is refused for is certain. */
  function noiseWithHeader(seed: number, bodyLength: number, type: number): Buffer {
    const bytes = seededBytes(seed, 4096);
    bytes.writeUInt32BE(bodyLength, 0);
    bytes[4] = type;
    bytes[5] = 0; // no flags: a COMPRESSED flag would be refused first
    return bytes;
  }

  // Every reason a server may give for noise before the handshake, whatever the header happens to say.
  const ANY_NOISE_REASON = /unknown frame type|unexpected frame|malformed HELLO|exceeds|before the handshake|compression was not negotiated/i;

  it.each([
    ['noise with an unknown type byte', noiseWithHeader(1, 16, 0xee), false, ErpsProtocolError, /unknown frame type 0xee/],
    ['noise with a known type byte and a huge length', noiseWithHeader(2, 0xfff0_0000, FrameType.CALL), false, ErpsProtocolError, /exceeds|before the handshake/],
    ['noise headed as a short HELLO', noiseWithHeader(3, 32, FrameType.HELLO), false, ErpsProtocolError, /malformed HELLO/],
    ...[11, 12, 13, 14].map((seed) => [`seeded noise #${seed}`, seededBytes(seed, 4096), false, ErpsProtocolError, ANY_NOISE_REASON] as const),
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
