import { of, Subject } from 'rxjs';
import { CallReply } from '../../src/server/call-reply';
import { createCodec } from '../../src/protocol/codec';
import { FrameFlags, FrameType } from '../../src/protocol/frame';
import type { ErpsConnection } from '../../src/connection/connection';

interface Sent {
  type: number;
  flags: number;
  id: number;
  value: unknown;
}

/** A connection that records frames instead of writing them. */
function recordingConnection(): { connection: ErpsConnection; sent: Sent[] } {
  const codec = createCodec('msgpack');
  const sent: Sent[] = [];
  const record = (type: number, flags: number, id: number, body: Buffer): void => {
    sent.push({ type, flags, id, value: (flags & FrameFlags.NO_VALUE) !== 0 || body.length === 0 ? undefined : codec.decode(body) });
  };
  const connection = {
    send: (type: number, flags: number, id: number, body: Buffer = Buffer.alloc(0)) => record(type, flags, id, body),
  } as unknown as ErpsConnection;
  return { connection, sent };
}

const tick = (): Promise<void> => new Promise((resolve) => process.nextTick(resolve));

describe('CallReply', () => {
  const codec = createCodec('msgpack');

  it('a single value is one REPLY with no flags, and the reply is done', () => {
    const { connection, sent } = recordingConnection();
    const finished: number[] = [];
    const reply = new CallReply(connection, codec, 7, (r) => finished.push(r.id));
    reply.single({ sum: 3 });
    expect(sent).toEqual([{ type: FrameType.REPLY, flags: 0, id: 7, value: { sum: 3 } }]);
    expect(finished).toEqual([7]);
    expect(reply.done).toBe(true);
  });

  it('values emitted in one tick leave together; the last value of a completed stream carries the end', () => {
    const { connection, sent } = recordingConnection();
    new CallReply(connection, codec, 1, () => undefined).follow(of('a', 'b', 'c'));
    expect(sent.map((frame) => [frame.flags & FrameFlags.MORE, frame.value])).toEqual([
      [FrameFlags.MORE, 'a'],
      [FrameFlags.MORE, 'b'],
      [0, 'c'],
    ]);
  });

  it('a stream that completes after its last value was sent ends with a NO_VALUE REPLY', async () => {
    const { connection, sent } = recordingConnection();
    const values = new Subject<number>();
    new CallReply(connection, codec, 2, () => undefined).follow(values);
    values.next(1);
    await tick();
    values.complete();
    expect(sent).toEqual([
      { type: FrameType.REPLY, flags: FrameFlags.MORE, id: 2, value: 1 },
      { type: FrameType.REPLY, flags: FrameFlags.NO_VALUE, id: 2, value: undefined },
    ]);
  });

  it('a stream error sends the values before it, then ERROR, and tells onError', () => {
    const { connection, sent } = recordingConnection();
    const values = new Subject<number>();
    const errors: unknown[] = [];
    new CallReply(connection, codec, 3, () => undefined).follow(values, (err) => errors.push(err));
    values.next(1);
    values.error({ status: 'error', message: 'no' });
    expect(sent.map((frame) => frame.type)).toEqual([FrameType.REPLY, FrameType.ERROR]);
    expect(sent[1]!.value).toEqual({ status: 'error', message: 'no' });
    expect(errors).toEqual([{ status: 'error', message: 'no' }]);
  });

  it('cancel() unsubscribes the handler stream and sends nothing more', () => {
    const { connection, sent } = recordingConnection();
    const values = new Subject<number>();
    const reply = new CallReply(connection, codec, 4, () => undefined);
    reply.follow(values);
    reply.cancel();
    expect(values.observed).toBe(false);
    values.next(1);
    expect(sent).toEqual([]);
  });

  it('a value the codec cannot encode becomes an ERPS_CODEC error reply', () => {
    const { connection, sent } = recordingConnection();
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    new CallReply(connection, codec, 5, () => undefined).single(cyclic);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.type).toBe(FrameType.ERROR);
    expect(sent[0]!.value).toMatchObject({ status: 'error', code: 'ERPS_CODEC' });
  });
});
