import type { Duplex } from 'node:stream';
import type { Connector } from '../../src/client/connector';
import type { DialOptions, Dialled } from '../../src/client/dial';
import { ErpsConnection } from '../../src/connection/connection';
import { createDuplexPair } from '../../src/connection/duplex-pair';
import { Frame, FrameDecoder, FrameType } from '../../src/protocol/frame';
import { WIRE_VERSION } from '../../src/protocol/handshake';

/** The far end of a connection a fake connector handed out: what the client sent, and a way to answer. */
export interface FakeServerEnd {
  socket: Duplex;
  frames: Frame[];
  write(bytes: Buffer): void;
}

/**
 * A connector that dials nothing: each attempt waits for the test to `accept()` it (an in-memory connection, as if the
 * server sent WELCOME) or `refuse(err)` it. Connection logic can then be driven step by step, with fake timers.
 */
export class FakeConnector {
  readonly attempts: Array<{ options: DialOptions; accept(): FakeServerEnd; refuse(err: Error): void }> = [];

  readonly connect: Connector = (options) =>
    new Promise<Dialled>((resolve, reject) => {
      this.attempts.push({
        options,
        refuse: reject,
        accept: () => {
          const [near, far] = createDuplexPair();
          const connection = new ErpsConnection(near, { onFrame: () => undefined, onClose: () => undefined }, options.connection);
          connection.handshakeDone();
          connection.hold();
          const frames: Frame[] = [];
          const decoder = new FrameDecoder((frame) => frames.push(Frame.of(frame.type, frame.flags, frame.id, Buffer.from(frame.body))));
          far.on('data', (chunk: Buffer) => decoder.push(chunk));
          resolve({ connection, welcome: { wireVersion: WIRE_VERSION, features: 0, keepaliveMs: 0, maxFrameBytes: 1024 * 1024 } });
          return { socket: far, frames, write: (bytes) => far.write(bytes) };
        },
      });
    });

  /** The latest attempt (throws if there is none yet). */
  get last(): FakeConnector['attempts'][number] {
    const attempt = this.attempts[this.attempts.length - 1];
    if (attempt === undefined) throw new Error('no connection attempt yet');
    return attempt;
  }
}

export const PING = FrameType.PING;
