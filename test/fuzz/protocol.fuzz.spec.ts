import fc from 'fast-check';
import { ErpsError } from '../../src/errors/index';
import { createCodec } from '../../src/protocol/codec';
import { encodeFrame, Frame, FrameDecoder, FrameType, HEADER_BYTES } from '../../src/protocol/frame';
import { decodeHello, decodeReject, decodeWelcome } from '../../src/protocol/handshake';
import { decodeMessageBody } from '../../src/protocol/message';
import { splitMeta } from '../../src/protocol/headers';

/** `npm test` runs a few hundred cases per property; `npm run fuzz` runs 100,000. */
const numRuns = Number(process.env.FUZZ_RUNS ?? 300);
const MAX_FRAME = 4096;
const TYPES = [
  FrameType.HELLO,
  FrameType.WELCOME,
  FrameType.REJECT,
  FrameType.CALL,
  FrameType.CAST,
  FrameType.REPLY,
  FrameType.ERROR,
  FrameType.CANCEL,
  FrameType.PUSH,
  FrameType.PING,
  FrameType.PONG,
  FrameType.GOAWAY,
];

/** Runs `fn`; anything thrown must be one of ours. */
function onlyErpsErrors(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof ErpsError)) throw err;
  }
}

function splitAt(bytes: Uint8Array, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let from = 0;
  for (const at of [...points, bytes.length]) {
    parts.push(Buffer.from(bytes.subarray(from, at)));
    from = at;
  }
  return parts;
}

const frameArb = fc.record({
  type: fc.constantFrom(...TYPES),
  flags: fc.integer({ min: 0, max: 255 }),
  id: fc.integer({ min: 0, max: 0xffffffff }),
  body: fc.uint8Array({ maxLength: 600 }),
});

describe('fuzz: frame decoder', () => {
  it('random bytes in random splits: only protocol errors, bounded buffering', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.array(fc.nat(), { maxLength: 8 }), (bytes, cuts) => {
        const decoder = new FrameDecoder(() => undefined, MAX_FRAME);
        onlyErpsErrors(() => {
          for (const part of splitAt(bytes, cuts)) decoder.push(part);
        });
        expect(decoder.bufferedBytes).toBeLessThanOrEqual(MAX_FRAME + HEADER_BYTES);
      }),
      { numRuns },
    );
  });

  it('valid frames survive any split, in order', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 6 }), fc.array(fc.nat(), { maxLength: 10 }), (frames, cuts) => {
        const stream = Buffer.concat(frames.map((f) => encodeFrame(f.type, f.flags, f.id, Buffer.from(f.body))));
        const out: Frame[] = [];
        const decoder = new FrameDecoder((f) => out.push({ ...f, body: Buffer.from(f.body) }), MAX_FRAME);
        for (const part of splitAt(stream, cuts)) decoder.push(part);
        expect(out.map((f) => [f.type, f.flags, f.id, f.body.toString('hex')])).toEqual(frames.map((f) => [f.type, f.flags, f.id, Buffer.from(f.body).toString('hex')]));
      }),
      { numRuns },
    );
  });

  it('truncated and oversized frames never emit and never throw anything but protocol errors', () => {
    fc.assert(
      fc.property(frameArb, fc.integer({ min: 0, max: 0xffffffff }), fc.nat(), (frame, fakeLength, cut) => {
        const bytes = encodeFrame(frame.type, frame.flags, frame.id, Buffer.from(frame.body));
        bytes.writeUInt32BE(fakeLength, 0);
        const out: Frame[] = [];
        const decoder = new FrameDecoder((f) => out.push(f), MAX_FRAME);
        onlyErpsErrors(() => decoder.push(bytes.subarray(0, cut % (bytes.length + 1))));
        if (fakeLength > MAX_FRAME) expect(out).toEqual([]);
      }),
      { numRuns },
    );
  });
});

describe('fuzz: handshake and message bodies', () => {
  it('random bodies decode or fail with an ErpsError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const body = Buffer.from(bytes);
        for (const decode of [decodeHello, decodeWelcome, decodeReject, decodeMessageBody]) onlyErpsErrors(() => decode(body));
      }),
      { numRuns },
    );
  });
});

describe('fuzz: payload codecs', () => {
  afterEach(() => {
    expect(Object.prototype).not.toHaveProperty('polluted');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it.each(['msgpack', 'json'] as const)('%s: random bytes decode or fail with ErpsCodecError', (name) => {
    const codec = createCodec(name);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 500 }), (bytes) => onlyErpsErrors(() => codec.decode(Buffer.from(bytes)))),
      { numRuns },
    );
  });

  it.each(['msgpack', 'json'] as const)('%s: a payload read in place between other bytes decodes exactly as it does alone', (name) => {
    const codec = createCodec(name);
    const outcome = (decode: () => unknown): { value?: unknown; error?: string } => {
      try {
        return { value: decode() };
      } catch (err) {
        expect(err).toBeInstanceOf(ErpsError);
        return { error: 'ErpsError' };
      }
    };
    const payload = fc.oneof(
      fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)),
      fc.jsonValue().map((value) => codec.encode(value)),
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), payload, fc.uint8Array({ maxLength: 40 }), (before, bytes, after) => {
        const around = Buffer.concat([Buffer.from(before), bytes, Buffer.from(after)]);
        const alone = Buffer.from(bytes);
        expect(outcome(() => codec.decode(around, before.length, before.length + bytes.length))).toEqual(outcome(() => codec.decode(alone)));
      }),
      { numRuns },
    );
  });

  it.each(['msgpack', 'json'] as const)('%s: hostile keys (__proto__, constructor, prototype) never pollute', (name) => {
    const codec = createCodec(name);
    const hostileKey = fc.constantFrom('__proto__', 'constructor', 'prototype', 'polluted', 'toString', 'a');
    const hostile = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        fc.constant({ polluted: true }),
        fc.dictionary(hostileKey, tie('node'), { maxKeys: 4 }),
        fc.array(tie('node'), { maxLength: 3 }),
        fc.integer(),
      ),
    })).node;
    fc.assert(
      fc.property(hostile, (value) => {
        // JSON text with literal __proto__ keys is the realistic attack: build it as text.
        const text = JSON.stringify(value).replace(/"a":/g, '"__proto__":');
        const bytes = name === 'json' ? Buffer.from(text) : createCodec('msgpack').encode(JSON.parse(text));
        onlyErpsErrors(() => {
          const decoded = codec.decode(bytes);
          // Merging what came in is what user code does next; it must not reach Object.prototype either.
          if (decoded !== null && typeof decoded === 'object') Object.assign({}, decoded);
        });
        onlyErpsErrors(() => splitMeta(codec.decode(bytes)));
      }),
      { numRuns },
    );
  });

  it.each(['msgpack', 'json'] as const)('%s: nesting past maxDepth is refused with ErpsCodecError, not a stack overflow', (name) => {
    const codec = createCodec(name, { maxDepth: 64 });
    fc.assert(
      fc.property(fc.integer({ min: 65, max: 20_000 }), (depth) => {
        const text = '['.repeat(depth) + ']'.repeat(depth);
        const bytes = name === 'json' ? Buffer.from(text) : Buffer.concat([Buffer.alloc(depth, 0x91), Buffer.from([0x90])]);
        expect(() => codec.decode(bytes)).toThrow(ErpsError);
      }),
      { numRuns: Math.min(numRuns, 200) },
    );
    expect(codec.decode(name === 'json' ? Buffer.from('[[[1]]]') : Buffer.from([0x91, 0x91, 0x91, 0x01]))).toEqual([[[1]]]);
  });

  it('huge announced arrays, maps and strings fail fast without allocating them', () => {
    const codec = createCodec('msgpack');
    const before = process.memoryUsage().rss;
    for (const hex of ['ddffffffff', 'dfffffffff', 'dbffffffff41', 'c6ffffffff00', 'dd05f5e100']) {
      expect(() => codec.decode(Buffer.from(hex, 'hex'))).toThrow(ErpsError);
    }
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * 1024 * 1024);
  });
});

describe('fuzz: budgets', () => {
  it('frames split anywhere decode the same, and the bytes held never exceed the shared budget', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom(FrameType.CALL, FrameType.REPLY, FrameType.PING), fc.uint8Array({ maxLength: 3000 })), { minLength: 1, maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        (specs, cuts) => {
          const stream = Buffer.concat(specs.map(([type, body], i) => encodeFrame(type, 0, i, Buffer.from(body))));
          let used = 0;
          let peak = 0;
          const budget = {
            reserve: (bytes: number) => {
              used += bytes;
              peak = Math.max(peak, used);
              return true;
            },
            release: (bytes: number) => void (used -= bytes),
          };
          const bodies: Buffer[] = [];
          const decoder = new FrameDecoder((f: Frame) => bodies.push(Buffer.from(f.body)), MAX_FRAME, budget);
          for (const part of splitAt(stream, cuts)) decoder.push(part);
          expect(bodies).toEqual(specs.map(([, body]) => Buffer.from(body)));
          expect(used).toBe(0);
          expect(peak).toBeLessThanOrEqual(MAX_FRAME);
        },
      ),
      { numRuns },
    );
  });

  it.each(['msgpack', 'json'] as const)('%s: values within maxElements and maxDepth decode; the same values past them are refused with ErpsCodecError', (name) => {
    const codec = createCodec(name, { maxElements: 50, maxDepth: 6 });
    const roomy = createCodec(name);
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), (value) => {
        const bytes = roomy.encode(value);
        let fits = true;
        try {
          codec.decode(bytes);
        } catch (err) {
          expect(err).toBeInstanceOf(ErpsError);
          expect((err as ErpsError).code).toBe('ERPS_CODEC');
          fits = false;
        }
        // Ground truth, counted on the decoded value: every value, and the deepest container.
        const count = (v: unknown, depth: number): { values: number; depth: number } => {
          if (v === null || typeof v !== 'object') return { values: 1, depth: depth - 1 };
          const children = Array.isArray(v) ? v : Object.entries(v).flat();
          return children.reduce<{ values: number; depth: number }>(
            (acc, child) => {
              const c = count(child, depth + 1);
              return { values: acc.values + c.values, depth: Math.max(acc.depth, c.depth) };
            },
            { values: 1, depth },
          );
        };
        const truth = count(roomy.decode(bytes), 1);
        expect(fits).toBe(truth.values <= 50 && truth.depth <= 6);
      }),
      { numRuns },
    );
  });
});
