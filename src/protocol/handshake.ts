import semver from 'semver';
import { ErpsProtocolError } from '../errors/index.js';
import { CodecName, codecNameFromId, CODEC_NAMES } from './codec.js';

/** "ERPS": the first four bytes of every HELLO. */
export const MAGIC = Buffer.from('ERPS', 'ascii');
/** Version of the wire format in this file and frame.ts (not the application version). */
export const WIRE_VERSION = 1;
export const MAX_IDENTIFIER_BYTES = 64;
export const MAX_VERSION_BYTES = 255;

/** Reasons a server refuses a HELLO; the code travels in REJECT next to a readable message. */
export const RejectCode = {
  BAD_HELLO: 1,
  WIRE_VERSION: 2,
  IDENTIFIER: 3,
  VERSION: 4,
  CODEC: 5,
  UNAUTHORIZED: 6,
  SERVER_FULL: 7,
  SHUTTING_DOWN: 8,
  /** The client certificate failed verification (expired, unknown CA, revoked, wrong purpose, none): the reason says which. */
  CERTIFICATE: 9,
} as const;
export type RejectCode = (typeof RejectCode)[keyof typeof RejectCode];

export interface Hello {
  wireVersion: number;
  codec: CodecName;
  features: number;
  identifier: string;
  version: string;
}

export interface Welcome {
  wireVersion: number;
  features: number;
  /** The server's heartbeat interval in ms (0 = none); the client may use it to detect a dead server. */
  keepaliveMs: number;
  /** The largest frame body the server accepts. */
  maxFrameBytes: number;
}

export interface Reject {
  code: number;
  reason: string;
}

/** Throws an ErpsProtocolError unless `identifier` fits the wire (1..64 UTF-8 bytes). */
export function assertIdentifier(identifier: string): void {
  const bytes = Buffer.byteLength(identifier, 'utf8');
  if (bytes === 0 || bytes > MAX_IDENTIFIER_BYTES) {
    throw new ErpsProtocolError(`identifier must be 1..${MAX_IDENTIFIER_BYTES} UTF-8 bytes, got ${bytes}`);
  }
}

// HELLO body: "ERPS" | u8 wireVersion | u8 codec | u16 features | u8 idLen | identifier | u8 verLen | version
export function encodeHello(hello: Hello): Buffer {
  assertIdentifier(hello.identifier);
  const id = Buffer.from(hello.identifier, 'utf8');
  const ver = Buffer.from(hello.version, 'utf8');
  if (ver.length > MAX_VERSION_BYTES) throw new ErpsProtocolError('version string too long');
  const out = Buffer.allocUnsafe(4 + 1 + 1 + 2 + 1 + id.length + 1 + ver.length);
  let at = MAGIC.copy(out, 0);
  out[at++] = hello.wireVersion;
  out[at++] = CODEC_NAMES.indexOf(hello.codec);
  out.writeUInt16BE(hello.features, at);
  at += 2;
  out[at++] = id.length;
  at += id.copy(out, at);
  out[at++] = ver.length;
  ver.copy(out, at);
  return out;
}

export function decodeHello(body: Buffer): Hello {
  const fail = (why: string): never => {
    throw new ErpsProtocolError(`malformed HELLO: ${why}`);
  };
  if (body.length < 10 || !body.subarray(0, 4).equals(MAGIC)) fail('missing ERPS magic');
  let at = 4;
  const wireVersion = body[at++]!;
  const codecId = body[at++]!;
  const features = body.readUInt16BE(at);
  at += 2;
  const idLen = body[at++]!;
  if (idLen === 0 || idLen > MAX_IDENTIFIER_BYTES || at + idLen + 1 > body.length) fail('bad identifier length');
  const identifier = body.toString('utf8', at, at + idLen);
  at += idLen;
  const verLen = body[at++]!;
  if (at + verLen !== body.length) fail('bad version length');
  const version = body.toString('utf8', at, at + verLen);
  const codec = codecNameFromId(codecId) ?? fail(`unknown codec id ${codecId}`);
  return { wireVersion, codec, features, identifier, version };
}

// WELCOME body: u8 wireVersion | u16 features | u32 keepaliveMs | u32 maxFrameBytes
export function encodeWelcome(welcome: Welcome): Buffer {
  const out = Buffer.allocUnsafe(11);
  out[0] = welcome.wireVersion;
  out.writeUInt16BE(welcome.features, 1);
  out.writeUInt32BE(Math.min(welcome.keepaliveMs, 0xffffffff), 3);
  out.writeUInt32BE(Math.min(welcome.maxFrameBytes, 0xffffffff), 7);
  return out;
}

export function decodeWelcome(body: Buffer): Welcome {
  if (body.length !== 11) throw new ErpsProtocolError('malformed WELCOME');
  return {
    wireVersion: body[0]!,
    features: body.readUInt16BE(1),
    keepaliveMs: body.readUInt32BE(3),
    maxFrameBytes: body.readUInt32BE(7),
  };
}

// REJECT body: u8 code | reason (UTF-8, rest of body)
export function encodeReject(reject: Reject): Buffer {
  return Buffer.concat([Buffer.from([reject.code]), Buffer.from(reject.reason, 'utf8')]);
}

export function decodeReject(body: Buffer): Reject {
  if (body.length < 1) throw new ErpsProtocolError('malformed REJECT');
  return { code: body[0]!, reason: body.toString('utf8', 1) };
}

export interface HandshakePolicy {
  identifier: string;
  /** semver range the client's version must satisfy. */
  versions: string;
  codec: CodecName;
}

/** The server's decision on a HELLO: `null` to accept, or the REJECT to send. */
export function checkHello(hello: Hello, policy: HandshakePolicy): Reject | null {
  if (hello.wireVersion !== WIRE_VERSION) {
    return { code: RejectCode.WIRE_VERSION, reason: `wire protocol ${hello.wireVersion} not supported (server speaks ${WIRE_VERSION})` };
  }
  if (hello.identifier !== policy.identifier) {
    return { code: RejectCode.IDENTIFIER, reason: `identifier mismatch: server is "${policy.identifier}", client asked for "${hello.identifier}"` };
  }
  if (semver.valid(hello.version) === null) {
    return { code: RejectCode.VERSION, reason: `client version "${hello.version}" is not a valid semver version` };
  }
  if (!semver.satisfies(hello.version, policy.versions, { includePrerelease: true })) {
    return { code: RejectCode.VERSION, reason: `client version ${hello.version} is outside the server's accepted range "${policy.versions}"` };
  }
  if (hello.codec !== policy.codec) {
    return { code: RejectCode.CODEC, reason: `codec mismatch: server speaks ${policy.codec}, client asked for ${hello.codec}` };
  }
  return null;
}
