import { firstValueFrom } from 'rxjs';
import { ErpsClient, ErpsConfigError, ErpsHandshakeError, ErpsServer } from 'nestjs-erps';
import { calcClient, RunningServer, startCalcServer } from './support/apps';
import { waitFor } from './support/wait';

describe('Erps handshake: identifier, version range, codec', () => {
  let running: RunningServer;
  const rejected: string[] = [];

  beforeAll(async () => {
    running = await startCalcServer();
    running.server.on('handshakeRejected', (_info: unknown, reason: string) => rejected.push(reason));
  });

  afterAll(() => running.close());

  async function expectRejected(options: Parameters<typeof calcClient>[1], reason: RegExp): Promise<void> {
    const client = await calcClient(running.port, { reconnect: { minDelayMs: 1, maxDelayMs: 5 }, ...options });
    const before = rejected.length;
    try {
      const err = (await client.connect().then(
        () => undefined,
        (e: unknown) => e,
      )) as ErpsHandshakeError;
      expect(err).toBeInstanceOf(ErpsHandshakeError);
      expect(err.code).toBe('ERPS_HANDSHAKE');
      expect(err.message).toMatch(reason);
      expect(client.currentStatus).toBe('failed');
      await expect(firstValueFrom(client.send('sum', [1]))).rejects.toBeInstanceOf(ErpsHandshakeError);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(rejected.length - before).toBe(1); // no retry of a HELLO that would be refused again
    } finally {
      await client.close();
    }
  }

  it('rejects a wrong identifier with the server reason', async () => {
    await expectRejected({ identifier: 'not-calc' }, /identifier mismatch.*"calc".*"not-calc"/);
  });

  it('rejects a version outside the range with the server reason', async () => {
    await expectRejected({ version: '2.0.0' }, /2\.0\.0 is outside the server's accepted range "\^1\.0\.0"/);
  });

  it('rejects a codec mismatch', async () => {
    await expectRejected({ codec: 'json' }, /codec mismatch/);
  });

  it('ran no handler for rejected clients, and serves a matching one', async () => {
    expect(running.probe.calls).toEqual([]);
    const client = await calcClient(running.port);
    try {
      await expect(firstValueFrom(client.send('sum', [1, 1]))).resolves.toBe(2);
      await waitFor(() => running.probe.calls.length === 1);
    } finally {
      await client.close();
    }
  });

  it('refuses bad options at construction', () => {
    expect(() => new ErpsServer({ transport: 'tcp', versions: 'not a range!' })).toThrow(ErpsConfigError);
    expect(() => new ErpsServer({ transport: 'tcp', identifier: 'x'.repeat(65) })).toThrow(ErpsConfigError);
    expect(() => new ErpsClient({ port: 1, transport: 'tcp', version: 'v-one' })).toThrow(ErpsConfigError);
    expect(() => new ErpsClient({ port: 1, transport: 'tcp', identifier: '' })).toThrow(ErpsConfigError);
  });
});
