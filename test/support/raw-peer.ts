import type * as tls from 'node:tls';
import { createCodec } from '../../src/protocol/codec';
import { encodeFrame, Frame, FrameDecoder, FrameType, HEADER_BYTES } from '../../src/protocol/frame';
import { encodeHello, WIRE_VERSION } from '../../src/protocol/handshake';
import { encodeMessagePrefix } from '../../src/protocol/message';
import { testCertificates } from './certs';
import { rawTlsSocket } from './raw-tls';

/** Frames built by hand, the way a hostile peer with a valid certificate would send them. */
export const rawFrames = {
  hello: (identifier = 'calc', version = '1.2.0'): Buffer =>
    encodeFrame(FrameType.HELLO, 0, 0, encodeHello({ wireVersion: WIRE_VERSION, codec: 'msgpack', features: 0, identifier, version })),
  /** A CALL whose payload is `payload` as it is (already msgpack bytes). */
  call: (id: number, pattern: string, payload: Buffer): Buffer => encodeFrame(FrameType.CALL, 0, id, Buffer.concat([encodeMessagePrefix(Buffer.from(pattern), null), payload])),
  callValue: (id: number, pattern: string, value: unknown): Buffer => rawFrames.call(id, pattern, createCodec('msgpack').encode(value)),
  /** A header alone, announcing `bodyLength` bytes. */
  header: (type: number, bodyLength: number, id = 0): Buffer => {
    const header = Buffer.alloc(HEADER_BYTES);
    header.writeUInt32BE(bodyLength, 0);
    header[4] = type;
    header.writeUInt32BE(id, 6);
    return header;
  },
};

export interface RawPeer {
  socket: tls.TLSSocket;
  /** Frames received so far (only while reading). */
  frames: Frame[];
  closed: Promise<void>;
  write(bytes: Buffer): void;
  /** Stops reading: what the server sends piles up. */
  stopReading(): void;
}

/** A raw mutual-TLS connection with a good client certificate; resolves once TLS is up (nothing sent yet). */
export async function rawPeer(port: number, identity: 'alice' | 'bob' = 'alice'): Promise<RawPeer> {
  const certs = await testCertificates();
  const socket = rawTlsSocket(port, certs.clients[identity]);
  socket.on('error', () => undefined);
  const frames: Frame[] = [];
  const decoder = new FrameDecoder((frame) => frames.push(Frame.of(frame.type, frame.flags, frame.id, Buffer.from(frame.body))), 64 * 1024 * 1024);
  socket.on('data', (chunk: Buffer) => decoder.push(chunk));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', () => resolve());
    socket.once('error', reject);
  });
  return {
    socket,
    frames,
    closed,
    write: (bytes) => socket.write(bytes),
    stopReading: () => {
      socket.removeAllListeners('data');
      socket.pause();
    },
  };
}
