import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { ErpsCodecError } from 'nestjs-erps';
import { createCodec } from '../../src/protocol/codec';
import { checkJsonBudget, checkMsgpackBudget, EXTENSION_OBJECT_WEIGHT } from '../../src/protocol/decode-budget';

const numRuns = Number(process.env.FUZZ_RUNS ?? 300);

function msgpackRefusal(bytes: Buffer, maxDepth = 64, maxElements = 1_000_000): string | undefined {
  try {
    checkMsgpackBudget(bytes, 0, bytes.length, { maxDepth, maxElements });
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(ErpsCodecError);
    return (err as Error).message;
  }
}

describe('msgpack decode budget', () => {
  const codec = createCodec('msgpack');

  it('passes everything the codec itself encodes, Maps, Sets, Errors, Dates, BigInts and typed arrays included', () => {
    const values: unknown[] = [
      null,
      undefined,
      true,
      1,
      -1,
      2 ** 40,
      1.5,
      'x'.repeat(300),
      Buffer.alloc(70_000, 1),
      [],
      {},
      [[[]]],
      new Map<unknown, unknown>([
        ['a', 1],
        [2, new Map([[3, [4]]])],
      ]),
      new Set([1, 'two']),
      new Error('boom'),
      /re/g,
      new Date(12345),
      2n ** 100n,
      10n,
      new Float64Array([1, 2]),
      new Uint8Array([3]),
      { a: [undefined, { b: null }] },
    ];
    for (const value of values) expect(msgpackRefusal(codec.encode(value))).toBeUndefined();
    fc.assert(
      fc.property(fc.anything({ withMap: true, withSet: true, withDate: true, withTypedArray: true, withBigInt: true }), (value) => {
        expect(msgpackRefusal(codec.encode(value))).toBeUndefined();
      }),
      { numRuns },
    );
  });

  it('counts every value: an array of N items is N + 1, a map of N entries 2N + 1', () => {
    const array = codec.encode([1, 2, 3]);
    expect(msgpackRefusal(array, 64, 4)).toBeUndefined();
    expect(msgpackRefusal(array, 64, 3)).toMatch(/maxElements \(3\)/);
    const map = codec.encode({ a: 1, b: 2 });
    expect(msgpackRefusal(map, 64, 5)).toBeUndefined();
    expect(msgpackRefusal(map, 64, 4)).toMatch(/maxElements/);
  });

  it('weighs objects built by extensions: a Set counts as EXTENSION_OBJECT_WEIGHT values', () => {
    const set = codec.encode(new Set());
    expect(msgpackRefusal(set, 64, EXTENSION_OBJECT_WEIGHT + 1)).toBeUndefined();
    expect(msgpackRefusal(set, 64, EXTENSION_OBJECT_WEIGHT - 1)).toMatch(/maxElements/);
  });

  it('refuses an announced size past the budget before reading the items (array of 2^32 - 1 empty maps)', () => {
    const header = Buffer.from('ddffffffff', 'hex');
    expect(msgpackRefusal(Buffer.concat([header, Buffer.alloc(1000, 0x80)]))).toMatch(/maxElements/);
  });

  it('refuses 8 MiB of empty maps in one linear pass, with nothing built', () => {
    const count = 8 * 1024 * 1024;
    const bytes = Buffer.alloc(5 + count, 0x80);
    bytes.writeUInt8(0xdd, 0);
    bytes.writeUInt32BE(count, 1);
    expect(() => codec.decode(bytes)).toThrow(/maxElements \(1000000\)/);
  });

  it('checks depth on every payload, however short', () => {
    expect(msgpackRefusal(Buffer.from([0x91, 0x91, 0x91, 0x90]), 3)).toMatch(/maxDepth \(3\)/);
    expect(msgpackRefusal(Buffer.from([0x91, 0x91, 0x90]), 3)).toBeUndefined();
  });

  it('refuses structured-clone references, records and string bundles', () => {
    const cyclic: unknown[] = [];
    cyclic.push(cyclic);
    const cloneBytes = new Packr({ structuredClone: true }).pack(cyclic);
    expect(cloneBytes.length).toBeLessThan(20);
    expect(msgpackRefusal(cloneBytes)).toMatch(/extension type 0x69/);
    expect(() => codec.decode(cloneBytes)).toThrow(ErpsCodecError);

    let shared: unknown = [1];
    for (let level = 0; level < 28; level++) shared = [shared, shared];
    expect(() => codec.decode(new Packr({ structuredClone: true }).pack(shared))).toThrow(/extension type 0x(69|70)/);

    const records = new Packr({ useRecords: true }).pack([
      { a: 1, b: 2 },
      { a: 3, b: 4 },
    ]);
    expect(msgpackRefusal(records)).toMatch(/extension type 0x72/);
    const bundled = new Packr({ bundleStrings: true, useRecords: false }).pack({ text: 'x'.repeat(100) });
    expect(msgpackRefusal(bundled)).toMatch(/extension type 0x62/);
  });

  it('refuses truncated values, trailing bytes and the never-used byte 0xc1', () => {
    expect(msgpackRefusal(Buffer.from('92 01'.replace(/ /g, ''), 'hex'))).toMatch(/truncated/);
    expect(msgpackRefusal(Buffer.from('dbffffffff41', 'hex'))).toMatch(/truncated/);
    expect(msgpackRefusal(Buffer.from('0101', 'hex'))).toMatch(/bytes after the value/);
    expect(msgpackRefusal(Buffer.from('c1', 'hex'))).toMatch(/0xc1/);
  });

  it('random bytes: the scan either passes or refuses with ErpsCodecError, and what it passes msgpackr can read', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (raw) => {
        const bytes = Buffer.from(raw);
        if (bytes.length === 0) return;
        if (msgpackRefusal(bytes) !== undefined) return;
        try {
          codec.decode(bytes);
        } catch (err) {
          expect(err).toBeInstanceOf(ErpsCodecError);
        }
      }),
      { numRuns },
    );
  });
});

describe('JSON decode budget', () => {
  function jsonRefusal(text: string, maxDepth = 64, maxElements = 1_000_000): string | undefined {
    const bytes = Buffer.from(text);
    try {
      checkJsonBudget(bytes, 0, bytes.length, { maxDepth, maxElements });
      return undefined;
    } catch (err) {
      expect(err).toBeInstanceOf(ErpsCodecError);
      return (err as Error).message;
    }
  }

  it('counts values as msgpack does: items, keys and values', () => {
    expect(jsonRefusal('[1, 2, 3]', 64, 4)).toBeUndefined();
    expect(jsonRefusal('[1, 2, 3]', 64, 3)).toMatch(/maxElements \(3\)/);
    expect(jsonRefusal('{"a": 1, "b": [ ]}', 64, 5)).toBeUndefined();
    expect(jsonRefusal('{"a": 1, "b": [ ]}', 64, 4)).toMatch(/maxElements/);
    expect(jsonRefusal('[[], [], []]', 64, 4)).toBeUndefined();
  });

  it('ignores brackets, commas and escaped quotes inside strings', () => {
    expect(jsonRefusal('["[[[,,,:::\\"]]]"]', 2, 2)).toBeUndefined();
  });

  it('refuses nesting past maxDepth', () => {
    expect(jsonRefusal('[[[[]]]]', 3)).toMatch(/maxDepth \(3\)/);
  });

  it('the codec refuses a wide JSON array past maxElements without parsing it', () => {
    const codec = createCodec('json', { maxElements: 1000 });
    expect(() => codec.decode(Buffer.from(`[${'{},'.repeat(1000)}{}]`))).toThrow(/maxElements \(1000\)/);
    expect(codec.decode(Buffer.from(`[${'1,'.repeat(998)}1]`))).toHaveLength(999);
  });

  it('never refuses what fits: random JSON values within the budget decode as they were', () => {
    const codec = createCodec('json');
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), (value) => {
        // (the codec drops __proto__ keys on purpose)
        expect(codec.decode(codec.encode(value))).toEqual(JSON.parse(JSON.stringify(value), (key, v: unknown) => (key === '__proto__' ? undefined : v)));
      }),
      { numRuns },
    );
  });
});
