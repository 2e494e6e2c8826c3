import { FrameQueue } from '../../src/connection/frame-queue';
import { Frame, FrameDecoder, FrameFlags, FrameType, HEADER_BYTES } from '../../src/protocol/frame';

interface Sent {
  type: number;
  flags: number;
  id: number;
  prefix: Buffer;
  payload: Buffer;
}

function decodeAll(chunks: Buffer[]): Frame[] {
  const out: Frame[] = [];
  const decoder = new FrameDecoder((f) => out.push({ ...f, body: Buffer.from(f.body) }));
  for (const chunk of chunks) decoder.push(chunk);
  expect(decoder.bufferedBytes).toBe(0);
  return out;
}

function expectFrames(decoded: Frame[], sent: Sent[]): void {
  expect(decoded.map((f) => ({ type: f.type, flags: f.flags, id: f.id, body: f.body }))).toEqual(
    sent.map((s) => ({ type: s.type, flags: s.flags, id: s.id, body: Buffer.concat([s.prefix, s.payload]) })),
  );
}

describe('FrameQueue', () => {
  it('lays small frames out in one buffer that decodes to the same frames', () => {
    const queue = new FrameQueue();
    const sent: Sent[] = [
      { type: FrameType.CALL, flags: 0, id: 1, prefix: Buffer.from('\x00\x04echo\x00\x00\x00\x00', 'latin1'), payload: Buffer.from('payload one') },
      { type: FrameType.REPLY, flags: FrameFlags.RAW, id: 0xffffffff, prefix: Buffer.alloc(0), payload: Buffer.alloc(300, 7) },
      { type: FrameType.PING, flags: 0, id: 0, prefix: Buffer.alloc(0), payload: Buffer.alloc(0) },
    ];
    for (const s of sent) queue.push(s.type, s.flags, s.id, s.prefix, s.payload);
    expect(queue.frames).toBe(3);
    expect(queue.bytes).toBe(sent.reduce((n, s) => n + HEADER_BYTES + s.prefix.length + s.payload.length, 0));
    const chunks = queue.take();
    expect(chunks).toHaveLength(1);
    expect(chunks[0]!.length).toBe(sent.reduce((n, s) => n + HEADER_BYTES + s.prefix.length + s.payload.length, 0));
    expectFrames(decodeAll(chunks), sent);
    expect(queue.frames).toBe(0);
    expect(queue.bytes).toBe(0);
  });

  it('leaves large payloads uncopied, between the parts of the joined buffer, in order', () => {
    const queue = new FrameQueue();
    const big = Buffer.alloc(100_000, 0xab);
    const sent: Sent[] = [
      { type: FrameType.CALL, flags: 0, id: 1, prefix: Buffer.from('p1'), payload: Buffer.from('small before') },
      { type: FrameType.CALL, flags: FrameFlags.RAW, id: 2, prefix: Buffer.from('p2'), payload: big },
      { type: FrameType.CAST, flags: 0, id: 0, prefix: Buffer.from('p3'), payload: Buffer.from('small after') },
    ];
    for (const s of sent) queue.push(s.type, s.flags, s.id, s.prefix, s.payload);
    const chunks = queue.take();
    expect(chunks).toHaveLength(3);
    expect(chunks[1]).toBe(big);
    expectFrames(decodeAll(chunks), sent);
  });

  it('a large payload last ends the chunks (no empty trailing chunk)', () => {
    const queue = new FrameQueue();
    const big = Buffer.alloc(20_000, 1);
    queue.push(FrameType.REPLY, FrameFlags.RAW, 9, Buffer.alloc(0), big);
    const chunks = queue.take();
    expect(chunks.map((c) => c.length)).toEqual([HEADER_BYTES, big.length]);
    expect(chunks[1]).toBe(big);
  });

  it('keeps working after take() and clear(), and drops what it held', () => {
    const queue = new FrameQueue();
    queue.push(FrameType.CALL, 0, 1, Buffer.alloc(0), Buffer.from('one'));
    queue.push(FrameType.CALL, 0, 2, Buffer.alloc(0), Buffer.from('two'));
    queue.clear();
    expect(queue.frames).toBe(0);
    const parts = (queue as unknown as { parts: Buffer[] }).parts;
    expect(parts.every((p) => p.length === 0)).toBe(true);
    const sent: Sent = { type: FrameType.CALL, flags: 0, id: 3, prefix: Buffer.alloc(0), payload: Buffer.from('three') };
    queue.push(sent.type, sent.flags, sent.id, sent.prefix, sent.payload);
    expectFrames(decodeAll(queue.take()), [sent]);
    expect(parts.every((p) => p.length === 0)).toBe(true);
  });
});
