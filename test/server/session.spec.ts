import { ErpsProtocolError } from '../../src/errors/index';
import { ByteBudget } from '../../src/connection/byte-budget';
import { resolveConnectionOptions } from '../../src/connection/connection';
import { createDuplexPair } from '../../src/connection/duplex-pair';
import { createCodec } from '../../src/protocol/codec';
import { encodeFrame, Frame, FrameDecoder, FrameType } from '../../src/protocol/frame';
import { decodeReject, encodeHello, Reject, RejectCode, WIRE_VERSION } from '../../src/protocol/handshake';
import { encodeMessagePrefix } from '../../src/protocol/message';
import type { CallReply } from '../../src/server/call-reply';
import { CallTarget, InboundMessage, ServerSession, SessionHost } from '../../src/server/session';

const codec = createCodec('msgpack');
const hello = encodeFrame(FrameType.HELLO, 0, 0, encodeHello({ wireVersion: WIRE_VERSION, codec: 'msgpack', features: 0, identifier: 'calc', version: '1.0.0' }));
const call = (id: number, pattern: string, value: unknown): Buffer =>
  encodeFrame(FrameType.CALL, 0, id, Buffer.concat([encodeMessagePrefix(Buffer.from(pattern), null), codec.encode(value)]));

/** A host that records what the session asks of it; `sum` is the only call handler. */
class FakeHost implements SessionHost {
  readonly policy = { identifier: 'calc', versions: '^1.0.0', codec: 'msgpack' as const };
  readonly connectionOptions = resolveConnectionOptions({ keepaliveMs: 0 });
  readonly handshakeTimeoutMs = 1000;
  readonly compressionThreshold = undefined;
  readonly limits = { maxInFlightPerConnection: 2, idleTimeoutMs: 0, maxDepth: 8, maxElements: 100 };
  readonly partialFrames = new ByteBudget(1024 * 1024);
  admission: Reject | null = null;
  readonly calls: Array<{ message: InboundMessage; reply: CallReply }> = [];
  readonly casts: InboundMessage[] = [];
  readonly closed: Array<Error | undefined> = [];
  opened = 0;
  admit(): Reject | null {
    return this.admission;
  }
  findCallHandler(pattern: string): CallTarget | null {
    return pattern === 'sum' ? {} : null;
  }
  invokeCall(_target: CallTarget, message: InboundMessage, reply: CallReply): void {
    this.calls.push({ message, reply });
  }
  invokeEvent(message: InboundMessage): void {
    this.casts.push(message);
  }
  castDropped(): void {}
  sessionOpened(): void {
    this.opened++;
  }
  sessionClosed(_session: ServerSession, reason: Error | undefined): void {
    this.closed.push(reason);
  }
  handshakeRejected(): void {}
  /** '' and 'calc' are known; the session asks, the host answers. */
  serving: Record<string, 'SERVING' | 'NOT_SERVING'> = { '': 'SERVING', calc: 'SERVING' };
  servingStatus(service: string): 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN' {
    return this.serving[service] ?? 'SERVICE_UNKNOWN';
  }
}

function open(host = new FakeHost()): { host: FakeHost; session: ServerSession; frames: Frame[]; send(bytes: Buffer): void; tick(): Promise<void> } {
  const [near, far] = createDuplexPair();
  const session = new ServerSession({ socket: near, remoteAddress: '127.0.0.1', remotePort: 1, peer: undefined, remote: true }, host);
  const frames: Frame[] = [];
  const decoder = new FrameDecoder((frame) => frames.push(Frame.of(frame.type, frame.flags, frame.id, Buffer.from(frame.body))));
  far.on('data', (chunk: Buffer) => decoder.push(chunk));
  return { host, session, frames, send: (bytes) => far.write(bytes), tick: () => new Promise((resolve) => setImmediate(resolve)) };
}

describe('ServerSession (in memory, fake host)', () => {
  it('HELLO → WELCOME, then CALLs reach the host decoded, with the session they came over', async () => {
    const { host, session, frames, send, tick } = open();
    send(hello);
    await tick();
    expect(frames.map((f) => f.type)).toEqual([FrameType.WELCOME]);
    expect(host.opened).toBe(1);
    send(call(1, 'sum', [1, 2]));
    await tick();
    expect(host.calls).toHaveLength(1);
    expect(host.calls[0]!.message).toMatchObject({ pattern: 'sum', data: [1, 2], session });
    host.calls[0]!.reply.single(3);
    await tick();
    expect(frames.slice(1).map((f) => [f.type, f.id, codec.decode(f.body)])).toEqual([[FrameType.REPLY, 1, 3]]);
    session.connection.close();
  });

  it('answers without the host: unknown pattern (NO_HANDLER), too many in flight (BUSY), a budget broken (CODEC)', async () => {
    const { host, frames, send, tick, session } = open();
    send(hello);
    send(call(1, 'nope', 0));
    send(call(2, 'sum', Array(200).fill(0)));
    send(call(3, 'sum', 1));
    send(call(4, 'sum', 2));
    send(call(5, 'sum', 3));
    await tick();
    const errors = frames.filter((f) => f.type === FrameType.ERROR).map((f) => [f.id, (codec.decode(f.body) as { code: string }).code]);
    expect(errors).toEqual([
      [1, 'ERPS_NO_HANDLER'],
      [2, 'ERPS_CODEC'],
      [5, 'ERPS_BUSY'],
    ]);
    expect(host.calls.map((c) => c.message.data)).toEqual([1, 2]);
    session.connection.close();
  });

  it('CANCEL tears the reply down; a CALL reusing a running id is a protocol error', async () => {
    const { host, send, tick } = open();
    send(hello);
    send(call(9, 'sum', 1));
    await tick();
    send(encodeFrame(FrameType.CANCEL, 0, 9));
    await tick();
    expect(host.calls[0]!.reply.done).toBe(true);
    send(call(10, 'sum', 1));
    send(call(10, 'sum', 1));
    await tick();
    expect(host.closed[0]).toBeInstanceOf(ErpsProtocolError);
    expect(host.closed[0]!.message).toMatch(/request id 10 reused/);
  });

  it('a refused admission sends REJECT with its code and closes; nothing before HELLO is accepted', async () => {
    const refused = new FakeHost();
    refused.admission = { code: RejectCode.SERVER_FULL, reason: 'full' };
    const { frames, send, tick } = open(refused);
    send(hello);
    await tick();
    expect(frames.map((f) => f.type)).toEqual([FrameType.REJECT]);
    expect(decodeReject(frames[0]!.body)).toEqual({ code: RejectCode.SERVER_FULL, reason: 'full' });

    const early = open();
    early.send(call(1, 'sum', 1));
    await early.tick();
    expect(early.host.closed[0]!.message).toMatch(/CALL before the handshake/);
  });

  it('drain(): GOAWAY, running calls finish, then the connection closes', async () => {
    const { host, session, frames, send, tick } = open();
    send(hello);
    send(call(1, 'sum', 1));
    await tick();
    const drained = session.drain(5000);
    await tick();
    expect(frames.map((f) => f.type)).toContain(FrameType.GOAWAY);
    send(call(2, 'sum', 1));
    await tick();
    expect(frames.filter((f) => f.type === FrameType.ERROR).map((f) => (codec.decode(f.body) as { code: string }).code)).toEqual(['ERPS_GOAWAY']);
    host.calls[0]!.reply.single(1);
    await drained;
    expect(session.connection.closed).toBe(true);
  });

  it('health checks ($erps.health) are answered by the session: never the host, not in flight, answered while draining', async () => {
    const { host, session, frames, send, tick } = open();
    const replies = (): unknown[] => frames.filter((f) => f.type === FrameType.REPLY || f.type === FrameType.ERROR).map((f) => [f.type, f.id, codec.decode(f.body)]);
    send(hello);
    send(call(1, 'sum', 1));
    send(call(2, 'sum', 2)); // maxInFlightPerConnection 2: the connection is full
    send(call(3, '$erps.health', { service: '' }));
    send(call(4, '$erps.health', { service: 'calc' }));
    send(call(5, '$erps.health', { service: 'other' }));
    send(encodeFrame(FrameType.CALL, 0, 6, encodeMessagePrefix(Buffer.from('$erps.health'), null))); // no payload: ''
    send(call(7, '$erps.health', 'not a request'));
    await tick();
    expect(replies()).toEqual([
      [FrameType.REPLY, 3, { status: 'SERVING' }],
      [FrameType.REPLY, 4, { status: 'SERVING' }],
      [FrameType.REPLY, 5, { status: 'SERVICE_UNKNOWN' }],
      [FrameType.REPLY, 6, { status: 'SERVING' }],
      [FrameType.ERROR, 7, expect.objectContaining({ code: 'ERPS_CODEC' })],
    ]);
    expect(host.calls.map((c) => c.message.pattern)).toEqual(['sum', 'sum']);
    expect(session.inFlight).toBe(2);

    const drained = session.drain(5000);
    host.serving = { '': 'NOT_SERVING', calc: 'NOT_SERVING' };
    frames.length = 0;
    send(call(8, 'sum', 3));
    send(call(9, '$erps.health', {}));
    await tick();
    expect(replies()).toEqual([
      [FrameType.ERROR, 8, expect.objectContaining({ code: 'ERPS_GOAWAY' })],
      [FrameType.REPLY, 9, { status: 'NOT_SERVING' }],
    ]);
    for (const { reply } of host.calls) reply.single(0);
    session.connection.close();
    await drained;
  });
});
