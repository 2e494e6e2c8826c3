import { ErpsCodecError, ErpsProtocolError } from '../../src/errors/index';
import { createCodec } from '../../src/protocol/codec';
import { checkHello, decodeHello, decodeReject, decodeWelcome, encodeHello, encodeReject, encodeWelcome, RejectCode, WIRE_VERSION } from '../../src/protocol/handshake';
import { decodeMessageBody, encodeMessagePrefix, PatternCache } from '../../src/protocol/message';

const hello = { wireVersion: WIRE_VERSION, codec: 'msgpack' as const, features: 3, identifier: 'calc', version: '1.2.3' };
const policy = { identifier: 'calc', versions: '^1.0.0', codec: 'msgpack' as const };

describe('handshake frames', () => {
  it('round-trips HELLO, WELCOME and REJECT', () => {
    expect(decodeHello(encodeHello(hello))).toEqual(hello);
    const welcome = { wireVersion: 1, features: 1, keepaliveMs: 5000, maxFrameBytes: 64 * 1024 * 1024 };
    expect(decodeWelcome(encodeWelcome(welcome))).toEqual(welcome);
    expect(decodeReject(encodeReject({ code: 4, reason: 'versión fuera de rango' }))).toEqual({ code: 4, reason: 'versión fuera de rango' });
  });

  it('refuses malformed HELLO bodies', () => {
    const good = encodeHello(hello);
    const bad = [Buffer.alloc(0), Buffer.from('HTTP/1.1 200'), good.subarray(0, good.length - 1), Buffer.concat([good, Buffer.from([0])])];
    const noMagic = Buffer.from(good);
    noMagic[0] = 0x58;
    const badCodec = Buffer.from(good);
    badCodec[5] = 9;
    for (const body of [...bad, noMagic, badCodec]) expect(() => decodeHello(body)).toThrow(ErpsProtocolError);
    expect(() => encodeHello({ ...hello, identifier: 'x'.repeat(65) })).toThrow(ErpsProtocolError);
  });

  it('decides on a HELLO: identifier, semver range, codec, wire version', () => {
    expect(checkHello(hello, policy)).toBeNull();
    expect(checkHello({ ...hello, identifier: 'other' }, policy)).toMatchObject({ code: RejectCode.IDENTIFIER, reason: expect.stringContaining('"other"') });
    expect(checkHello({ ...hello, version: '2.0.0' }, policy)).toMatchObject({ code: RejectCode.VERSION, reason: expect.stringContaining('^1.0.0') });
    expect(checkHello({ ...hello, version: 'banana' }, policy)).toMatchObject({ code: RejectCode.VERSION });
    expect(checkHello({ ...hello, codec: 'json' }, policy)).toMatchObject({ code: RejectCode.CODEC });
    expect(checkHello({ ...hello, wireVersion: 9 }, policy)).toMatchObject({ code: RejectCode.WIRE_VERSION });
  });
});

describe('message bodies', () => {
  it('round-trips pattern, metadata and payload', () => {
    const meta = Buffer.from([1, 2, 3]);
    const payload = Buffer.from('payload bytes');
    const body = Buffer.concat([encodeMessagePrefix(Buffer.from('{"cmd":"sum"}'), meta), payload]);
    const decoded = decodeMessageBody(body);
    expect(decoded.pattern).toBe('{"cmd":"sum"}');
    expect(decoded.meta).toEqual(meta);
    expect(body.subarray(decoded.payloadStart)).toEqual(payload);
    expect(decodeMessageBody(encodeMessagePrefix(Buffer.from('p'), null)).meta).toBeNull();
  });

  it('reads a body in place inside a larger buffer (start/end), refusing lengths that run past its end', () => {
    const body = Buffer.concat([encodeMessagePrefix(Buffer.from('sum'), null), Buffer.from('xyz')]);
    const around = Buffer.concat([Buffer.from('before'), body, Buffer.from('after')]);
    const start = 'before'.length;
    const decoded = decodeMessageBody(around, start, start + body.length);
    expect(decoded.pattern).toBe('sum');
    expect(around.toString('utf8', decoded.payloadStart, start + body.length)).toBe('xyz');
    // The same bytes cut short: the pattern length now runs past the end, though the buffer goes on.
    expect(() => decodeMessageBody(around, start, start + 5)).toThrow(ErpsProtocolError);
  });

  it('refuses truncated bodies', () => {
    const body = Buffer.concat([encodeMessagePrefix(Buffer.from('pattern'), Buffer.alloc(10)), Buffer.from('x')]);
    for (const cut of [0, 1, 5, 9, 12]) expect(() => decodeMessageBody(body.subarray(0, cut))).toThrow(ErpsProtocolError);
  });
});

describe('PatternCache', () => {
  const bodyOf = (pattern: string): Buffer => encodeMessagePrefix(Buffer.from(pattern, 'utf8'), null);

  it('gives back the same string for a repeated pattern, and tells apart patterns of equal length', () => {
    const patterns = new PatternCache();
    const first = decodeMessageBody(bodyOf('echo'), undefined, undefined, patterns).pattern;
    expect(first).toBe('echo');
    expect(decodeMessageBody(bodyOf('echo'), undefined, undefined, patterns).pattern).toBe(first);
    expect(decodeMessageBody(bodyOf('ecHo'), undefined, undefined, patterns).pattern).toBe('ecHo');
    expect(decodeMessageBody(bodyOf('{"cmd":"søm"}'), undefined, undefined, patterns).pattern).toBe('{"cmd":"søm"}');
    expect(decodeMessageBody(bodyOf('echo'), undefined, undefined, patterns).pattern).toBe('echo');
  });

  it('stays right with more patterns than slots, and with patterns too long to cache', () => {
    const patterns = new PatternCache();
    const names = Array.from({ length: 20 }, (_, i) => `pattern-${i}`).concat(['x'.repeat(200), 'y'.repeat(200)]);
    for (let round = 0; round < 3; round++) {
      for (const name of names) expect(decodeMessageBody(bodyOf(name), undefined, undefined, patterns).pattern).toBe(name);
    }
  });

  it('keeps copies, not views into the buffers it read', () => {
    const patterns = new PatternCache();
    const body = bodyOf('mutable');
    decodeMessageBody(body, undefined, undefined, patterns);
    body.write('MUTABLE', 2);
    expect(decodeMessageBody(bodyOf('mutable'), undefined, undefined, patterns).pattern).toBe('mutable');
    expect(decodeMessageBody(body, undefined, undefined, patterns).pattern).toBe('MUTABLE');
  });
});

describe('codecs', () => {
  it.each(['msgpack', 'json'] as const)('%s round-trips plain data and never pollutes Object.prototype', (name) => {
    const codec = createCodec(name);
    const value = { a: 1, list: [1, 'two', null, { deep: true }], text: 'émoji 🎉' };
    expect(codec.decode(codec.encode(value))).toEqual(value);
    const hostile =
      name === 'json'
        ? Buffer.from('{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}')
        : createCodec('msgpack').encode(JSON.parse('{"__proto__":{"polluted":true}}'));
    const decoded = codec.decode(hostile) as Record<string, unknown>;
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
    expect(() => codec.decode(Buffer.from([0xc1, 0xff, 0x00]))).toThrow(ErpsCodecError);
  });

  it('msgpack decodes a payload in place inside a larger buffer, small or large, and what it decodes never shares memory with a later payload', () => {
    const codec = createCodec('msgpack');
    const place = (bytes: Buffer): { chunk: Buffer; start: number; end: number } => {
      const chunk = Buffer.concat([Buffer.alloc(37, 0xee), bytes, Buffer.alloc(11, 0xee)]);
      return { chunk, start: 37, end: 37 + bytes.length };
    };
    const small = { id: 42, name: 'erps', tags: ['ab', 'cd'], ok: true, n: 3.14159, bin: Buffer.from([1, 2, 3]) };
    const large = { ...small, text: 'x'.repeat(3000), bin: Buffer.alloc(200, 7) };
    for (const value of [small, large, 'short', 12, [1, [2, [3]]]]) {
      const { chunk, start, end } = place(codec.encode(value));
      expect(codec.decode(chunk, start, end)).toEqual(value);
    }
    const first = place(codec.encode({ bin: Buffer.from([1, 2, 3]), s: 'first' }));
    const decoded = codec.decode(first.chunk, first.start, first.end) as { bin: Buffer; s: string };
    const second = place(codec.encode({ bin: Buffer.from([9, 9, 9]), s: 'other' }));
    expect(codec.decode(second.chunk, second.start, second.end)).toEqual({ bin: Buffer.from([9, 9, 9]), s: 'other' });
    expect(decoded).toEqual({ bin: Buffer.from([1, 2, 3]), s: 'first' });
    // Malformed payloads still fail, small or not.
    const bad = place(Buffer.from([0x82, 0xa1, 0x61]));
    expect(() => codec.decode(bad.chunk, bad.start, bad.end)).toThrow(ErpsCodecError);
  });

  it('msgpack: binary values of small payloads are copies, not views of what it decodes from', () => {
    const codec = createCodec('msgpack');
    const first = codec.encode({ blob: Buffer.from('first-bytes'), list: [Buffer.from([1, 2])] });
    const second = codec.encode({ blob: Buffer.from('other-bytes'), list: [Buffer.from([9, 9])] });
    // Both small enough for the shared scratch buffer, decoded from inside larger buffers as frames are.
    const chunk = Buffer.concat([Buffer.alloc(7), first, Buffer.alloc(3), second]);
    const a = codec.decode(chunk, 7, 7 + first.length) as { blob: Buffer; list: Buffer[] };
    const b = codec.decode(chunk, 10 + first.length, chunk.length) as { blob: Buffer; list: Buffer[] };
    chunk.fill(0);
    expect(Buffer.from(a.blob).toString()).toBe('first-bytes');
    expect([...a.list[0]!]).toEqual([1, 2]);
    expect(Buffer.from(b.blob).toString()).toBe('other-bytes');
    expect([...b.list[0]!]).toEqual([9, 9]);
  });
});
