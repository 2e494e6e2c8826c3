import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { firstValueFrom } from 'rxjs';
import { ErpsClient, ErpsConfigError, ErpsError, ErpsTlsError } from 'nestjs-erps';
import { encodeFrame, Frame, FrameDecoder, FrameType } from '../src/protocol/frame';
import { decodeReject, encodeHello, RejectCode, WIRE_VERSION } from '../src/protocol/handshake';
import { encodeMessagePrefix } from '../src/protocol/message';
import { createCodec } from '../src/protocol/codec';
import { calcClient, RunningServer, startCalcServer } from './support/apps';
import { testCertificates } from './support/certs';

const hello = encodeFrame(FrameType.HELLO, 0, 0, encodeHello({ wireVersion: WIRE_VERSION, codec: 'msgpack', features: 0, identifier: 'calc', version: '1.2.0' }));
const sumCall = Buffer.concat([encodeFrame(FrameType.CALL, 0, 1, Buffer.concat([encodeMessagePrefix(Buffer.from('sum'), null), createCodec('msgpack').encode([1, 2])]))]);

/** Resolves with what happened to a raw socket: closed without a reply, or got bytes back. */
function outcome(socket: net.Socket): Promise<{ received: number; error?: string }> {
  return new Promise((resolve) => {
    let received = 0;
    let error: string | undefined;
    socket.on('data', (chunk: Buffer) => (received += chunk.length));
    socket.on('error', (err: NodeJS.ErrnoException) => (error = err.code ?? err.message));
    socket.on('close', () => resolve({ received, error }));
    setTimeout(() => socket.destroy(), 3000).unref();
  });
}

describe('mutual TLS refuses bad peers while serving good ones', () => {
  let running: RunningServer;
  let good: ErpsClient;

  beforeAll(async () => {
    running = await startCalcServer();
    good = await calcClient(running.port);
    await good.connect();
  });

  afterAll(async () => {
    await good.close();
    await running.close();
  });

  /** Runs `attack` while the good client makes 50 concurrent calls; asserts all good calls succeed and no handler ran for the attacker. */
  async function underAttack(attack: () => Promise<void>): Promise<void> {
    const before = running.probe.calls.length;
    const calls = Promise.all(Array.from({ length: 50 }, (_, i) => firstValueFrom(good.send('sum', [i, 1]))));
    await attack();
    const results = await calls;
    results.forEach((result, i) => expect(result).toBe(i + 1));
    expect(running.probe.calls.length - before).toBe(50); // exactly the good client's calls: no handler ran for the attacker
  }

  it('refuses a client without a certificate', async () => {
    const certs = await testCertificates();
    await underAttack(async () => {
      const socket = tls.connect({ host: '127.0.0.1', port: running.port, ca: readFileSync(certs.caFile) });
      const frames: Frame[] = [];
      const decoder = new FrameDecoder((frame) => frames.push(Frame.of(frame.type, frame.flags, frame.id, Buffer.from(frame.body))));
      socket.on('data', (chunk: Buffer) => decoder.push(chunk));
      socket.on('secureConnect', () => socket.write(Buffer.concat([hello, sumCall])));
      await outcome(socket);
      // The only thing it gets is a REJECT saying why; the CALL never runs (underAttack counts handler runs).
      expect(frames.map((frame) => frame.type)).toEqual([FrameType.REJECT]);
      expect(decodeReject(frames[0]!.body)).toEqual({ code: RejectCode.CERTIFICATE, reason: expect.stringMatching(/no client certificate/) });
    });
  });

  it('refuses at construction an ErpsClient with no certificate or key', () => {
    expect(() => new ErpsClient({ port: running.port, tls: { caFile: 'x' } })).toThrow(ErpsConfigError);
    expect(() => new ErpsClient({ port: running.port })).toThrow(/missing: ca, cert, key/);
    // The hint works in any app, not only in this repository.
    expect(() => new ErpsClient({ port: running.port })).toThrow(/For development certificates run `npx erps certs \.\/certs`/);
  });

  it('refuses a client certificate from an untrusted CA, with a typed error', async () => {
    const certs = await testCertificates();
    await underAttack(async () => {
      const mallory = await calcClient(running.port, { reconnect: false }, certs.untrustedClient);
      try {
        const err = await mallory.connect().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(ErpsError);
        expect(err).toBeInstanceOf(ErpsTlsError);
        await expect(firstValueFrom(mallory.send('sum', [1]))).rejects.toBeInstanceOf(ErpsError);
      } finally {
        await mallory.close();
      }
    });
  });

  it('refuses a plain TCP client on the TLS port', async () => {
    await underAttack(async () => {
      const socket = net.connect({ host: '127.0.0.1', port: running.port });
      socket.on('connect', () => socket.write(Buffer.concat([hello, sumCall])));
      const result = await outcome(socket);
      // Whatever comes back is a TLS alert, never an Erps frame.
      expect(result.received).toBeLessThan(64);
    });
  });

  it('verifies the server certificate: untrusted CA and wrong server name fail, serverName pins the name', async () => {
    const certs = await testCertificates();
    const wrongCa = await calcClient(running.port, { reconnect: false, tls: { ...certs.clients.alice, caFile: certs.untrustedClient.caFile.replace('ca.crt', 'untrusted-ca.crt') } });
    const wrongName = await calcClient(running.port, { reconnect: false, tls: { ...certs.clients.alice, serverName: 'wrong.example' } });
    const pinned = await calcClient(running.port, { tls: { ...certs.clients.alice, serverName: 'localhost' } });
    try {
      await expect(wrongCa.connect()).rejects.toBeInstanceOf(ErpsTlsError);
      await expect(wrongName.connect()).rejects.toBeInstanceOf(ErpsTlsError);
      await expect(firstValueFrom(pinned.send('sum', [20, 22]))).resolves.toBe(42);
    } finally {
      await Promise.all([wrongCa.close(), wrongName.close(), pinned.close()]);
    }
  });
});
