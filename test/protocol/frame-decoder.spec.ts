import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ErpsFrameTooLargeError, ErpsOverloadedError, ErpsProtocolError } from '../../src/errors/index';
import { encodeFrame, Frame, FrameDecoder, FrameFlags, FrameType, HANDSHAKE_MAX_FRAME_BYTES, HEADER_BYTES } from '../../src/protocol/frame';

function frames(): Buffer[] {
  return [
    encodeFrame(FrameType.CALL, 0, 1, Buffer.from('first call body')),
    encodeFrame(FrameType.PING, 0, 0),
    encodeFrame(FrameType.REPLY, FrameFlags.MORE, 0xffffffff, Buffer.alloc(300, 7)),
    encodeFrame(FrameType.CAST, 0, 0, Buffer.from([1])),
  ];
}

interface PlainFrame {
  type: number;
  flags: number;
  id: number;
  body: Buffer;
}

function collect(maxFrameBytes?: number): { decoder: FrameDecoder; out: PlainFrame[] } {
  const out: PlainFrame[] = [];
  // Copy bodies: a frame points into its chunk, which is only valid while the chunk is.
  const decoder = new FrameDecoder((f: Frame) => out.push({ type: f.type, flags: f.flags, id: f.id, body: Buffer.from(f.body) }), maxFrameBytes);
  return { decoder, out };
}

const expected = [
  { type: FrameType.CALL, flags: 0, id: 1, body: Buffer.from('first call body') },
  { type: FrameType.PING, flags: 0, id: 0, body: Buffer.alloc(0) },
  { type: FrameType.REPLY, flags: FrameFlags.MORE, id: 0xffffffff, body: Buffer.alloc(300, 7) },
  { type: FrameType.CAST, flags: 0, id: 0, body: Buffer.from([1]) },
];

describe('FrameDecoder', () => {
  const stream = Buffer.concat(frames());

  it('a body inside one chunk is read in place; one split across chunks is copied into its own buffer', () => {
    const frames: Frame[] = [];
    const decoder = new FrameDecoder((f) => frames.push(f));
    const whole = encodeFrame(FrameType.CALL, 0, 1, Buffer.from('in place'));
    const chunk = Buffer.concat([whole, whole.subarray(0, HEADER_BYTES + 3)]);
    decoder.push(chunk);
    decoder.push(whole.subarray(HEADER_BYTES + 3));
    expect(frames).toHaveLength(2);
    expect(frames[0]!.source).toBe(chunk);
    expect([frames[0]!.start, frames[0]!.end]).toEqual([HEADER_BYTES, whole.length]);
    expect(frames[1]!.source).not.toBe(chunk);
    expect(frames.map((f) => f.body.toString())).toEqual(['in place', 'in place']);
  });

  it('decodes many frames from one chunk', () => {
    const { decoder, out } = collect();
    decoder.push(stream);
    expect(out).toEqual(expected);
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('decodes the same frames at every split point', () => {
    for (let at = 0; at <= stream.length; at++) {
      const { decoder, out } = collect();
      decoder.push(stream.subarray(0, at));
      decoder.push(stream.subarray(at));
      expect(out).toEqual(expected);
    }
  });

  it('decodes the same frames fed one byte at a time', () => {
    const { decoder, out } = collect();
    for (let i = 0; i < stream.length; i++) decoder.push(stream.subarray(i, i + 1));
    expect(out).toEqual(expected);
  });

  it('rejects an oversize length from the header, without allocating it', () => {
    const { decoder, out } = collect(1024);
    const header = Buffer.alloc(HEADER_BYTES);
    header.writeUInt32BE(0xffffffff, 0);
    header[4] = FrameType.CALL;
    const allocUnsafe = jest.spyOn(Buffer, 'allocUnsafe');
    const alloc = jest.spyOn(Buffer, 'alloc');
    try {
      expect(() => decoder.push(header)).toThrow(ErpsFrameTooLargeError);
      const sizes = [...allocUnsafe.mock.calls, ...alloc.mock.calls].map((call) => call[0]);
      expect(sizes.filter((size) => size > 1024)).toEqual([]);
    } finally {
      allocUnsafe.mockRestore();
      alloc.mockRestore();
    }
    expect(out).toEqual([]);
    // Once failed, the decoder emits nothing more.
    decoder.push(stream);
    expect(out).toEqual([]);
  });

  it('rejects an oversize length split across chunks too', () => {
    const { decoder } = collect(1024);
    const header = encodeFrame(FrameType.CALL, 0, 1, Buffer.alloc(2048)).subarray(0, HEADER_BYTES);
    decoder.push(header.subarray(0, 3));
    expect(() => decoder.push(header.subarray(3))).toThrow(ErpsFrameTooLargeError);
  });

  it('rejects an unknown frame type as a protocol error', () => {
    const { decoder } = collect();
    const garbage = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(() => decoder.push(garbage)).toThrow(ErpsProtocolError);
  });
});

describe('FrameDecoder: bytes held for split frames', () => {
  class CountingBudget {
    used = 0;
    peak = 0;
    readonly reservations: number[] = [];
    constructor(readonly limit: number) {}
    reserve(bytes: number): boolean {
      if (this.used + bytes > this.limit) return false;
      this.reservations.push(bytes);
      this.used += bytes;
      this.peak = Math.max(this.peak, this.used);
      return true;
    }
    release(bytes: number): void {
      this.used -= bytes;
    }
  }

  function announce(bodyLength: number, type: number = FrameType.CALL): Buffer {
    const header = Buffer.alloc(HEADER_BYTES);
    header.writeUInt32BE(bodyLength, 0);
    header[4] = type;
    return header;
  }

  it('grows a split body as its bytes arrive instead of allocating the length its header announces', () => {
    const budget = new CountingBudget(Infinity);
    const frames: Frame[] = [];
    const decoder = new FrameDecoder((f) => frames.push(f), 8 * 1024 * 1024, budget);
    decoder.push(Buffer.concat([announce(4 * 1024 * 1024), Buffer.alloc(100, 1)]));
    expect(decoder.bufferedBytes).toBeLessThanOrEqual(256 * 1024);
    expect(budget.used).toBe(decoder.bufferedBytes);
    for (let sent = 100; sent < 4 * 1024 * 1024; sent += 16 * 1024) decoder.push(Buffer.alloc(Math.min(16 * 1024, 4 * 1024 * 1024 - sent), 1));
    expect(frames).toHaveLength(1);
    expect(frames[0]!.body.length).toBe(4 * 1024 * 1024);
    expect(frames[0]!.body.every((byte) => byte === 1)).toBe(true);
    expect(budget.used).toBe(0);
    expect(decoder.inFrame).toBe(false);
  });

  it('grows a body just over a power of its growth straight to its length: 1 MiB plus a prefix is copied 256 KiB extra, not 1.25 MiB', () => {
    const budget = new CountingBudget(Infinity);
    const frames: Frame[] = [];
    const decoder = new FrameDecoder((f) => frames.push(f), 8 * 1024 * 1024, budget);
    const length = 1024 * 1024 + 13;
    decoder.push(Buffer.concat([announce(length), Buffer.alloc(16 * 1024 - HEADER_BYTES, 3)]));
    for (let sent = 16 * 1024 - HEADER_BYTES; sent < length; sent += 16 * 1024) decoder.push(Buffer.alloc(Math.min(16 * 1024, length - sent), 3));
    expect(frames).toHaveLength(1);
    expect(frames[0]!.body.length).toBe(length);
    expect(frames[0]!.body.every((byte) => byte === 3)).toBe(true);
    expect(budget.reservations).toEqual([256 * 1024, length - 256 * 1024]);
    expect(budget.used).toBe(0);
  });

  it('a body trickled one byte per read costs no heap per read (one buffer, not an object per piece)', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const decoder = new FrameDecoder(() => undefined, 8 * 1024 * 1024, new CountingBudget(Infinity));
    decoder.push(announce(4 * 1024 * 1024));
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 200_000; i++) decoder.push(Buffer.alloc(1, 7));
    gc();
    expect(decoder.bufferedBytes).toBe(256 * 1024);
    // Keeping each read (a Buffer object and a slot) until the body is whole would hold ~20 MB of heap here.
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(4 * 1024 * 1024);
    decoder.stop();
  });

  it('joins a split body with the frame after it in the same chunk intact', () => {
    const budget = new CountingBudget(Infinity);
    const frames: Frame[] = [];
    const decoder = new FrameDecoder((f) => frames.push(f), 8 * 1024 * 1024, budget);
    const body = Buffer.from(Array.from({ length: 50_000 }, (_, i) => i % 251));
    const wire = Buffer.concat([encodeFrame(FrameType.CALL, 0, 1, body), encodeFrame(FrameType.CAST, 0, 2, Buffer.from('next'))]);
    let from = 0;
    for (const cut of [7, 10, 4_000, 4_001, 30_000, 50_012, wire.length]) {
      decoder.push(wire.subarray(from, cut));
      from = cut;
    }
    expect(frames.map((f) => [f.type, f.id])).toEqual([
      [FrameType.CALL, 1],
      [FrameType.CAST, 2],
    ]);
    expect(frames[0]!.body.equals(body)).toBe(true);
    expect(frames[1]!.body.toString()).toBe('next');
    expect(budget.used).toBe(0);
  });

  it('refuses to grow past the shared budget with ErpsOverloadedError, and gives back what it held', () => {
    const budget = new CountingBudget(400 * 1024);
    const first = new FrameDecoder(() => undefined, 8 * 1024 * 1024, budget);
    const second = new FrameDecoder(() => undefined, 8 * 1024 * 1024, budget);
    first.push(Buffer.concat([announce(1024 * 1024), Buffer.alloc(120 * 1024)]));
    expect(() => second.push(Buffer.concat([announce(1024 * 1024), Buffer.alloc(120 * 1024)]))).toThrow(ErpsOverloadedError);
    expect(budget.peak).toBeLessThanOrEqual(400 * 1024);
    first.stop();
    expect(budget.used).toBe(0);
  });

  it('tells a frame still incomplete from a new one (inFrame, framesCompleted)', () => {
    const decoder = new FrameDecoder(() => undefined);
    decoder.push(announce(10).subarray(0, 4));
    expect(decoder.inFrame).toBe(true);
    decoder.push(Buffer.concat([announce(10).subarray(4), Buffer.alloc(10)]));
    expect(decoder.inFrame).toBe(false);
    expect(decoder.framesCompleted).toBe(1);
  });

  it('until raised, refuses at the header a frame larger than the limit it was given (the handshake limit)', () => {
    const decoder = new FrameDecoder(() => undefined, HANDSHAKE_MAX_FRAME_BYTES);
    expect(() => decoder.push(announce(HANDSHAKE_MAX_FRAME_BYTES + 1, FrameType.HELLO))).toThrow(ErpsFrameTooLargeError);
    const raised = new FrameDecoder(() => undefined, HANDSHAKE_MAX_FRAME_BYTES);
    raised.setMaxFrameBytes(4096);
    expect(() => raised.push(announce(4096))).not.toThrow();
  });
});
