import { Duplex } from 'node:stream';
import { ErpsConnection } from '../../src/connection/connection';
import { FrameType } from '../../src/protocol/frame';

/** A socket that records each chunk written to it. */
function recordingSocket(): { socket: Duplex; writes: Buffer[] } {
  const writes: Buffer[] = [];
  const socket = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      writes.push(chunk);
      callback();
    },
  });
  return { socket, writes };
}

const payload = Buffer.alloc(40, 1);
const nextTick = (): Promise<void> => new Promise((resolve) => process.nextTick(resolve));
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('ErpsConnection: bursts of frames', () => {
  it('writes a burst early every 24 frames by default, the rest at the end of the tick', async () => {
    const { socket, writes } = recordingSocket();
    const connection = new ErpsConnection(socket, { onFrame: () => undefined, onClose: () => undefined }, { keepaliveMs: 0 });
    for (let id = 1; id <= 100; id++) connection.sendFrame(FrameType.CALL, 0, id, Buffer.alloc(0), payload);
    expect(writes).toHaveLength(4);
    await nextTick();
    expect(writes).toHaveLength(5);
    connection.close(new Error('done'));
  });

  it('writes a burst in one piece up to earlyFlushFrames frames, at the end of the turn (what a client link sets)', async () => {
    const { socket, writes } = recordingSocket();
    const connection = new ErpsConnection(socket, { onFrame: () => undefined, onClose: () => undefined }, { keepaliveMs: 0 });
    connection.earlyFlushFrames = 256;
    connection.flushAtEndOfTurn = true;
    for (let id = 1; id <= 100; id++) connection.sendFrame(FrameType.CALL, 0, id, Buffer.alloc(0), payload);
    expect(writes).toHaveLength(0);
    await nextTurn();
    expect(writes).toHaveLength(1);
    for (let id = 101; id <= 400; id++) connection.sendFrame(FrameType.CAST, 0, 0, Buffer.alloc(0), payload);
    expect(writes).toHaveLength(2);
    await nextTurn();
    expect(writes).toHaveLength(3);
    connection.close(new Error('done'));
  });

  it('with flushAtEndOfTurn, writes what several ticks of one turn queued together (a read can hold several TLS records)', async () => {
    const { socket, writes } = recordingSocket();
    const connection = new ErpsConnection(socket, { onFrame: () => undefined, onClose: () => undefined }, { keepaliveMs: 0 });
    connection.flushAtEndOfTurn = true;
    connection.sendFrame(FrameType.CALL, 0, 1, Buffer.alloc(0), payload);
    await nextTick();
    connection.sendFrame(FrameType.CALL, 0, 2, Buffer.alloc(0), payload);
    await nextTick();
    connection.sendFrame(FrameType.CALL, 0, 3, Buffer.alloc(0), payload);
    expect(writes).toHaveLength(0);
    await nextTurn();
    expect(writes).toHaveLength(1);
    expect(writes[0]!.length).toBe(3 * (10 + payload.length));
    connection.close(new Error('done'));
  });
});
