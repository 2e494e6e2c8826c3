/**
 * docs/PROTOCOL.md against the code: the frame type, flag and REJECT code tables, every hex dump, and the limits
 * it states. A change on either side that the other does not follow fails here.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { COMMON_DEFAULTS, CONNECTION_DEFAULTS, DECODE_DEFAULTS, SERVER_DEFAULTS } from '../../src/config/defaults';
import { WRITE_BUFFER_HARD_FACTOR } from '../../src/connection/connection';
import { CompressionFeature } from '../../src/connection/compression';
import { createCodec } from '../../src/protocol/codec';
import { EXTENSION_OBJECT_WEIGHT } from '../../src/protocol/decode-budget';
import { encodeFrame, FrameFlags, FrameType, HANDSHAKE_MAX_FRAME_BYTES, HEADER_BYTES } from '../../src/protocol/frame';
import { encodeHello, encodeWelcome, MAGIC, MAX_IDENTIFIER_BYTES, MAX_VERSION_BYTES, RejectCode, WIRE_VERSION } from '../../src/protocol/handshake';
import { HEALTH_PATTERN, RESERVED_PATTERN_PREFIX } from '../../src/protocol/health';
import { MAX_HEADER_NAME_BYTES, MAX_HEADER_VALUE_BYTES, MAX_HEADERS } from '../../src/protocol/headers';
import { encodeMessagePrefix, MAX_PATTERN_BYTES } from '../../src/protocol/message';

const doc = readFileSync(join(__dirname, '..', '..', 'docs', 'PROTOCOL.md'), 'utf8');
const codec = createCodec('msgpack');

/** The text of the section under `heading` (a whole heading line), up to the next heading of any level. */
function section(heading: string): string {
  const start = doc.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`no "${heading}" in PROTOCOL.md`);
  const rest = doc.slice(start + heading.length + 2);
  const next = rest.search(/^#{1,6} /m);
  return next < 0 ? rest : rest.slice(0, next);
}

/** `| \`0x01\` | NAME |` rows of a table: name → value. */
function hexTable(text: string): Record<string, number> {
  const rows: Record<string, number> = {};
  for (const [, hex, name] of text.matchAll(/^\| `0x([0-9a-f]{2})` \| ([A-Z_]+) \|/gm)) rows[name!] = parseInt(hex!, 16);
  return rows;
}

/** The bytes of a hex dump: the leading hex pairs of each line (what follows two spaces is a comment). */
function dumpBytes(lines: string): Buffer {
  const hex = lines
    .split('\n')
    .map((line) => /^((?:[0-9a-f]{2} )*[0-9a-f]{2})(?: {2,}|$)/.exec(line)?.[1] ?? '')
    .join(' ');
  return Buffer.from(hex.replace(/\s+/g, ''), 'hex');
}

function hex(bytes: Buffer): string {
  return bytes.toString('hex').replace(/(..)(?!$)/g, '$1 ');
}

describe('docs/PROTOCOL.md', () => {
  it('lists every frame type with its value', () => {
    expect(hexTable(section('### Frame types'))).toEqual(FrameType);
  });

  it('lists every flag with its value', () => {
    expect(hexTable(section('### Flags'))).toEqual(FrameFlags);
  });

  it('lists every REJECT code', () => {
    const handshake = section('## Handshake');
    const table = handshake.slice(handshake.indexOf('REJECT codes:'));
    const codes = [...table.matchAll(/^\| (\d+) \| /gm)].map(([, code]) => Number(code));
    expect(codes).toEqual(Object.values(RejectCode));
  });

  it('shows the bytes the encoders produce in the worked example', () => {
    const blocks = [...section('## Worked example').matchAll(/```\n([\s\S]*?)```/g)].map(([, body]) => dumpBytes(body!));
    const call = encodeFrame(FrameType.CALL, 0, 1, Buffer.concat([encodeMessagePrefix(Buffer.from('sum'), null), codec.encode([1, 2])]));
    const hello = encodeFrame(FrameType.HELLO, 0, 0, encodeHello({ wireVersion: WIRE_VERSION, codec: 'msgpack', features: 0, identifier: 'calc', version: '1.2.0' }));
    const welcome = encodeFrame(
      FrameType.WELCOME,
      0,
      0,
      encodeWelcome({ wireVersion: WIRE_VERSION, features: 0, keepaliveMs: CONNECTION_DEFAULTS.keepaliveMs, maxFrameBytes: CONNECTION_DEFAULTS.maxFrameBytes }),
    );
    expect(blocks.map(hex)).toEqual([call, hello, welcome].map(hex));
    expect(doc).toContain(`A CALL of \`'sum'\` with \`[1, 2]\`, request id 1, msgpack, no metadata (${call.length} bytes)`);
    expect(doc).toContain(`no compression (${hello.length} bytes)`);
    expect(doc).toContain(`no compression), ${welcome.length} bytes`);
    const reply = encodeFrame(FrameType.REPLY, 0, 1, codec.encode(3));
    expect(doc).toContain(`Its REPLY, the value 3 (${reply.length} bytes): \`${hex(reply)}\``);
  });

  it('names the reserved health pattern and shows a health check and its reply as the encoders produce them', () => {
    const health = section('## Health checks');
    expect(health).toContain(`the reserved pattern **\`${HEALTH_PATTERN}\`**`);
    expect(health).toContain(`Patterns starting with \`${RESERVED_PATTERN_PREFIX}\` are reserved`);
    const blocks = [...health.matchAll(/```\n([\s\S]*?)```/g)].map(([, body]) => dumpBytes(body!));
    const check = encodeFrame(FrameType.CALL, 0, 7, Buffer.concat([encodeMessagePrefix(Buffer.from(HEALTH_PATTERN), null), codec.encode({ service: '' })]));
    const reply = encodeFrame(FrameType.REPLY, 0, 7, codec.encode({ status: 'SERVING' }));
    expect(blocks.map(hex)).toEqual([check, reply].map(hex));
    expect(health).toContain(`request id 7, msgpack (${check.length} bytes), and its reply (${reply.length} bytes)`);
  });

  it('shows the msgpack bytes the codec produces', () => {
    expect(doc).toContain(`\`{ a: 1 }\` is \`${hex(codec.encode({ a: 1 }))}\``);
    expect(doc).toContain(`\`new Map([['a', 1]])\` is \`${hex(codec.encode(new Map([['a', 1]])))}\``);
    expect(doc).toContain(`\`undefined\` \`${hex(codec.encode(undefined))}\``);
  });

  it('states the limits and defaults the code has', () => {
    const helloMax = MAGIC.length + 1 + 1 + 2 + 1 + MAX_IDENTIFIER_BYTES + 1 + MAX_VERSION_BYTES;
    const welcomeBytes = encodeWelcome({ wireVersion: 1, features: 0, keepaliveMs: 0, maxFrameBytes: 0 }).length;
    const mib = (bytes: number): string => `${bytes / (1024 * 1024)} MiB`;
    const seconds = (ms: number): string => `${ms / 1000} s`;
    for (const text of [
      `# The Erps wire protocol (wire version ${WIRE_VERSION})`,
      `a fixed ${HEADER_BYTES}-byte header`,
      `\`maxFrameBytes\` (default ${mib(CONNECTION_DEFAULTS.maxFrameBytes)})`,
      `is done the limit is ${HANDSHAKE_MAX_FRAME_BYTES} bytes**`,
      `a HELLO is at most ${helloMax} bytes; WELCOME is ${welcomeBytes}`,
      `WELCOME body (${welcomeBytes} bytes)`,
      `| 1 | identifier length n (1..${MAX_IDENTIFIER_BYTES}) |`,
      `| 1 | version length m (≤ ${MAX_VERSION_BYTES}) |`,
      `bit \`0x0${CompressionFeature.deflate}\` deflate, bit \`0x0${CompressionFeature.brotli}\` brotli`,
      `pattern, UTF-8 (at most ${MAX_PATTERN_BYTES.toLocaleString('en-US')} bytes)`,
      `at most ${MAX_HEADERS} headers, names are 1..${MAX_HEADER_NAME_BYTES}`,
      `values at most ${MAX_HEADER_VALUE_BYTES / 1024} KiB`,
      `\`frameTimeoutMs\` (default ${seconds(CONNECTION_DEFAULTS.frameTimeoutMs)})`,
      `\`keepaliveMs\` (default ${seconds(CONNECTION_DEFAULTS.keepaliveMs)})`,
      `\`keepaliveMs × maxMissedPings\` (default ${CONNECTION_DEFAULTS.maxMissedPings})`,
      `\`maxWriteBufferBytes\` (default ${mib(CONNECTION_DEFAULTS.maxWriteBufferBytes)})`,
      `above ${WRITE_BUFFER_HARD_FACTOR} × \`maxWriteBufferBytes\``,
      `\`slowConsumerTimeoutMs\` (default ${seconds(CONNECTION_DEFAULTS.slowConsumerTimeoutMs)})`,
      `\`maxDepth\` (default ${DECODE_DEFAULTS.maxDepth})`,
      `\`maxElements\` (default ${DECODE_DEFAULTS.maxElements.toLocaleString('en-US')})`,
      `extension counts as ${EXTENSION_OBJECT_WEIGHT}`,
      `\`maxPartialFrameBytes\` (${mib(SERVER_DEFAULTS.maxPartialFrameBytes)} across all its connections`,
      `\`handshakeTimeoutMs\` (default ${seconds(SERVER_DEFAULTS.handshakeTimeoutMs)})`,
      `\`drainTimeoutMs\` (default ${seconds(SERVER_DEFAULTS.drainTimeoutMs)})`,
      `\`idleTimeoutMs\` (default ${SERVER_DEFAULTS.idleTimeoutMs}: off)`,
      `\`threshold\` bytes (default ${COMMON_DEFAULTS.compressionThreshold};`,
    ]) {
      expect(doc).toContain(text);
    }
  });
});
