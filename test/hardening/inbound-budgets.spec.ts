import { Packr } from 'msgpackr';
import { firstValueFrom } from 'rxjs';
import { ErpsClient, ErpsCodecError, ErpsFrameTooLargeError, ErpsOverloadedError, ErpsProtocolError } from 'nestjs-erps';
import { createCodec } from '../../src/protocol/codec';
import { encodeFrame, FrameType } from '../../src/protocol/frame';
import { clientFor, RunningServer } from '../support/apps';
import { startFeaturesServer } from '../support/features-app';
import { rawFrames, rawPeer } from '../support/raw-peer';
import { waitFor } from '../support/wait';

async function withServer(options: Parameters<typeof startFeaturesServer>[0], body: (running: RunningServer, good: ErpsClient, reasons: Error[]) => Promise<void>): Promise<void> {
  const running = await startFeaturesServer(options);
  const reasons: Error[] = [];
  running.server.on('disconnect', (_info: unknown, reason: Error | undefined) => reason && reasons.push(reason));
  const good = await clientFor(running, {}, 'bob');
  await good.connect();
  try {
    await body(running, good, reasons);
    // Whatever the abuse, the good client's connection goes on.
    await expect(firstValueFrom(good.send('sum', [40, 2]))).resolves.toBe(42);
    expect(good.currentStatus).toBe('connected');
  } finally {
    await good.close();
    await running.close();
  }
}

describe('decode budgets', () => {
  it('maxElements: a payload with more values fails that one call with ERPS_CODEC; the connection goes on', async () => {
    await withServer({ maxElements: 1000 }, async (running, good) => {
      const calls = running.probe.calls.length;
      await expect(firstValueFrom(good.send('sum', Array(2000).fill(1)))).rejects.toMatchObject({ code: 'ERPS_CODEC', message: expect.stringContaining('maxElements (1000)') });
      await expect(firstValueFrom(good.send('sum', Array(999).fill(1)))).resolves.toBe(999);
      expect(running.probe.calls.length - calls).toBe(1);
    });
  });

  it('client maxElements: a reply past the client budget fails that call with ErpsCodecError', async () => {
    await withServer({}, async (running) => {
      const client = await clientFor(running, { maxElements: 100 });
      try {
        await expect(firstValueFrom(client.send('echo', Array(500).fill(0)))).rejects.toBeInstanceOf(ErpsCodecError);
        await expect(firstValueFrom(client.send('echo', [1, 2, 3]))).resolves.toEqual([1, 2, 3]);
      } finally {
        await client.close();
      }
    });
  });

  it('structured-clone references, shared-reference bombs and records never reach a handler (ERPS_CODEC)', async () => {
    await withServer({}, async (running) => {
      const cyclic: unknown[] = [];
      cyclic.push(cyclic);
      let laughs: unknown = [1];
      for (let level = 0; level < 28; level++) laughs = [laughs, laughs];
      const payloads = [
        new Packr({ structuredClone: true }).pack(cyclic),
        new Packr({ structuredClone: true }).pack(laughs),
        new Packr({ useRecords: true }).pack([
          { a: 1, b: 2 },
          { a: 3, b: 4 },
        ]),
      ];
      const peer = await rawPeer(running.port);
      peer.write(rawFrames.hello());
      payloads.forEach((payload, i) => peer.write(rawFrames.call(i + 1, 'echo', payload)));
      await waitFor(() => peer.frames.filter((f) => f.type === FrameType.ERROR).length === payloads.length);
      const codec = createCodec('msgpack');
      for (const frame of peer.frames.filter((f) => f.type === FrameType.ERROR)) {
        expect(codec.decode(frame.body)).toMatchObject({ code: 'ERPS_CODEC', message: expect.stringMatching(/extension type 0x(69|70|72)/) });
      }
      expect(peer.frames.some((f) => f.type === FrameType.REPLY)).toBe(false);
      peer.socket.destroy();
    });
  });
});

describe('inbound buffer budgets', () => {
  it('before the handshake, a frame larger than a HELLO can be is refused at its header', async () => {
    await withServer({}, async (running, _good, reasons) => {
      const peer = await rawPeer(running.port);
      peer.write(rawFrames.header(FrameType.HELLO, 64 * 1024 * 1024));
      peer.write(Buffer.alloc(1000));
      await peer.closed;
      await waitFor(() => reasons.length > 0);
      expect(reasons[0]).toBeInstanceOf(ErpsFrameTooLargeError);
      expect(reasons[0]!.message).toMatch(/exceeds maxFrameBytes \(1024\)/);
      expect(running.server.stats().partialFrameBytes).toBe(0);
    });
  });

  it('CANCEL before the handshake is a protocol error, like CALL and CAST', async () => {
    await withServer({}, async (running, _good, reasons) => {
      const peer = await rawPeer(running.port);
      peer.write(encodeFrame(FrameType.CANCEL, 0, 1));
      await peer.closed;
      await waitFor(() => reasons.length > 0);
      expect(reasons[0]).toBeInstanceOf(ErpsProtocolError);
      expect(reasons[0]!.message).toMatch(/CANCEL before the handshake/);
    });
  });

  it('frameTimeoutMs: a frame that does not complete in time closes its connection', async () => {
    await withServer({ frameTimeoutMs: 200 }, async (running, _good, reasons) => {
      const peer = await rawPeer(running.port);
      peer.write(rawFrames.hello());
      await waitFor(() => peer.frames.some((f) => f.type === FrameType.WELCOME));
      peer.write(rawFrames.header(FrameType.CALL, 1000, 1));
      peer.write(Buffer.alloc(10));
      await peer.closed;
      await waitFor(() => reasons.length > 0);
      expect(reasons[0]!.message).toMatch(/frame incomplete after \d+ ms \(frameTimeoutMs 200/);
      expect(running.server.stats().partialFrameBytes).toBe(0);
    });
  });

  it('maxPartialFrameBytes: trickling peers together never hold more than the budget; those past it are closed (ERPS_OVERLOADED)', async () => {
    const budget = 256 * 1024;
    await withServer({ maxPartialFrameBytes: budget, maxFrameBytes: 1024 * 1024 }, async (running, _good, reasons) => {
      const peers = await Promise.all(Array.from({ length: 6 }, () => rawPeer(running.port)));
      let peak = 0;
      const sampler = setInterval(() => (peak = Math.max(peak, running.server.stats().partialFrameBytes)), 2);
      try {
        for (const [i, peer] of peers.entries()) {
          peer.write(rawFrames.hello());
          await waitFor(() => peer.frames.some((f) => f.type === FrameType.WELCOME));
          peer.write(rawFrames.header(FrameType.CALL, 900 * 1024, i + 1));
          peer.write(Buffer.alloc(100 * 1024));
        }
        await waitFor(() => reasons.some((r) => r instanceof ErpsOverloadedError));
        peak = Math.max(peak, running.server.stats().partialFrameBytes);
      } finally {
        clearInterval(sampler);
      }
      expect(peak).toBeGreaterThan(0);
      expect(peak).toBeLessThanOrEqual(budget);
      expect(reasons.find((r) => r instanceof ErpsOverloadedError)).toMatchObject({ code: 'ERPS_OVERLOADED' });
      peers.forEach((peer) => peer.socket.destroy());
      await waitFor(() => running.server.stats().partialFrameBytes === 0);
    });
  });
});
