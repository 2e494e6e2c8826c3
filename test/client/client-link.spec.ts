import { ErpsConnectionLostError, ErpsTimeoutError } from 'nestjs-erps';
import { ClientLink, CallObserver, LinkEvents } from '../../src/client/client-link';
import { ErpsConnection } from '../../src/connection/connection';
import { createDuplexPair } from '../../src/connection/duplex-pair';
import { createCodec } from '../../src/protocol/codec';
import { encodeFrame, Frame, FrameDecoder, FrameFlags, FrameType } from '../../src/protocol/frame';
import { wirePattern } from '../../src/protocol/message';
import { OutgoingCall } from '../../src/client/outgoing-call';

const codec = createCodec('msgpack');
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function link(): { link: ClientLink; server: { frames: Frame[]; write(bytes: Buffer): void; destroy(): void }; events: string[] } {
  const [near, far] = createDuplexPair();
  const connection = new ErpsConnection(near, { onFrame: () => undefined, onClose: () => undefined });
  connection.handshakeDone();
  const events: string[] = [];
  const linkEvents: LinkEvents = {
    goaway: () => events.push('goaway'),
    closed: () => events.push('closed'),
    push: (pattern) => events.push(`push ${pattern}`),
    resend: (_call, _from, _err, written) => (events.push(`resend ${written ? 'written' : 'unsent'}`), false),
    callFailed: () => events.push('failed'),
  };
  const frames: Frame[] = [];
  const decoder = new FrameDecoder((frame) => frames.push(Frame.of(frame.type, frame.flags, frame.id, Buffer.from(frame.body))));
  far.on('data', (chunk: Buffer) => decoder.push(chunk));
  return { link: new ClientLink(connection, codec, 1024 * 1024, linkEvents), server: { frames, write: (bytes) => far.write(bytes), destroy: () => far.destroy() }, events };
}

function observer(): CallObserver & { values: unknown[]; error?: unknown; done: boolean } {
  const seen = { values: [] as unknown[], error: undefined as unknown, done: false };
  return Object.assign(seen, {
    next: (value: unknown) => seen.values.push(value),
    error: (err: unknown) => (seen.error = err),
    complete: () => (seen.done = true),
  });
}

describe('ClientLink (in memory)', () => {
  it('a CALL gets its stream of REPLYs, in order, and completes on the last', async () => {
    const { link: l, server } = link();
    const seen = observer();
    l.call(new OutgoingCall(wirePattern('count'), null, 3, seen, 0, false));
    await tick();
    const id = server.frames[0]!.id;
    expect(server.frames[0]!.type).toBe(FrameType.CALL);
    server.write(Buffer.concat([encodeFrame(FrameType.REPLY, FrameFlags.MORE, id, codec.encode(1)), encodeFrame(FrameType.REPLY, 0, id, codec.encode(2))]));
    await tick();
    expect(seen).toMatchObject({ values: [1, 2], done: true });
    expect(l.inFlight).toBe(0);
  });

  it('a call with no reply within timeoutMs fails with ErpsTimeoutError and sends CANCEL', async () => {
    const { link: l, server } = link();
    const seen = observer();
    l.call(new OutgoingCall(wirePattern('stall'), null, null, seen, 30, false));
    await new Promise((resolve) => setTimeout(resolve, 80));
    await tick();
    expect(seen.error).toBeInstanceOf(ErpsTimeoutError);
    expect(server.frames.map((f) => f.type)).toEqual([FrameType.CALL, FrameType.CANCEL]);
    expect(server.frames[1]!.id).toBe(server.frames[0]!.id);
  });

  it('GOAWAY: no new calls on this link; a lost connection fails what is pending with ErpsConnectionLostError', async () => {
    const { link: l, server, events } = link();
    const seen = observer();
    l.call(new OutgoingCall(wirePattern('sum'), null, [1], seen, 0, false));
    server.write(encodeFrame(FrameType.GOAWAY, 0, 0));
    await tick();
    expect(l.usable).toBe(false);
    expect(events).toEqual(['goaway']);
    server.destroy();
    await tick();
    expect(seen.error).toBeInstanceOf(ErpsConnectionLostError);
    expect(events).toEqual(['goaway', 'closed', 'failed']);
  });
});

describe('ClientLink latency (for the least-in-flight balancer)', () => {
  it('measures reply latency only while timed, from the armed deadline; a slower reply raises it at once', async () => {
    const { link: l, server } = link();
    const answer = (): void => server.write(encodeFrame(FrameType.REPLY, 0, server.frames[server.frames.length - 1]!.id, codec.encode(1)));
    l.call(new OutgoingCall(wirePattern('sum'), null, [1], observer(), 1000, false));
    await new Promise((resolve) => setTimeout(resolve, 30));
    answer();
    await tick();
    expect(l.latencyMs).toBe(1); // not timed: nothing measured
    l.timed = true;
    l.call(new OutgoingCall(wirePattern('sum'), null, [1], observer(), 1000, false));
    await new Promise((resolve) => setTimeout(resolve, 30));
    answer();
    await tick();
    expect(l.latencyMs).toBeGreaterThanOrEqual(25);
    const peak = l.latencyMs;
    l.call(new OutgoingCall(wirePattern('sum'), null, [1], observer(), 1000, false));
    await tick();
    answer();
    await tick();
    expect(l.latencyMs).toBeLessThan(peak); // a fast reply pulls it down, gradually
    expect(l.latencyMs).toBeGreaterThan(peak / 2);
  });
});
