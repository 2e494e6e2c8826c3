/**
 * The attacker's side of the wire, built by hand from docs/PROTOCOL.md (never with the library's encoders):
 * frames, and a raw TLS peer that speaks the protocol as badly as a row wants.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { unpack } from 'msgpackr';
import { CLIENT_VERSION, IDENTIFIER } from './attack-common.js';

export const FrameType = {
  HELLO: 0x01,
  WELCOME: 0x02,
  REJECT: 0x03,
  CALL: 0x10,
  CAST: 0x11,
  REPLY: 0x12,
  ERROR: 0x13,
  CANCEL: 0x14,
  PUSH: 0x15,
  PING: 0x20,
  PONG: 0x21,
  GOAWAY: 0x22,
} as const;

export const HEADER_BYTES = 10;

export function frameHeader(type: number, flags: number, id: number, length: number): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt32BE(length, 0);
  header[4] = type;
  header[5] = flags;
  header.writeUInt32BE(id, 6);
  return header;
}

export function frame(type: number, flags: number, id: number, body: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([frameHeader(type, flags, id, body.length), body]);
}

/** HELLO for the attack daemons' identifier; `features` bit 0x01 offers deflate. */
export function helloFrame(features = 0): Buffer {
  const id = Buffer.from(IDENTIFIER);
  const ver = Buffer.from(CLIENT_VERSION);
  const body = Buffer.concat([Buffer.from('ERPS'), Buffer.from([1, 0, 0, features, id.length]), id, Buffer.from([ver.length]), ver]);
  return frame(FrameType.HELLO, 0, 0, body);
}

/** The part of a CALL/CAST body before the payload: pattern, and metadata length 0. */
export function messagePrefix(pattern: string): Buffer {
  const p = Buffer.from(pattern);
  const prefix = Buffer.alloc(2 + p.length + 4);
  prefix.writeUInt16BE(p.length, 0);
  p.copy(prefix, 2);
  return prefix;
}

export function callBody(pattern: string, payload: Buffer): Buffer {
  return Buffer.concat([messagePrefix(pattern), payload]);
}

export function callFrame(id: number, pattern: string, payload: Buffer): Buffer {
  return frame(FrameType.CALL, 0, id, callBody(pattern, payload));
}

export interface ParsedFrame {
  type: number;
  flags: number;
  id: number;
  body: Buffer;
}

/** The daemon's WELCOME fields that rows use. */
export interface Welcome {
  keepaliveMs: number;
  maxFrameBytes: number;
}

/** Certificates for a raw peer (PEM); `cert`/`key` absent = no client certificate. */
export interface Identity {
  ca: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/** Frames from the daemon are small for raw peers; anything past this is counted, not kept. */
const KEEP_BODY_BYTES = 64 * 1024;

/**
 * A hand-driven TLS connection to a daemon. It reads and parses what arrives (unless paused), and knows when the
 * TLS handshake finished and when the socket closed.
 */
export class RawPeer {
  readonly frames: ParsedFrame[] = [];
  closed = false;
  closedAt = 0;
  readonly openedAt = Date.now();
  localPort: number | undefined;
  private pending: Buffer = Buffer.alloc(0);
  private skip = 0;
  private waiters: Array<() => void> = [];

  private constructor(readonly socket: tls.TLSSocket) {
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.once('close', () => {
      this.closed = true;
      this.closedAt = Date.now();
      this.wake();
    });
  }

  /** Connects with `identity`; resolves once TLS is up, rejects if it fails or takes longer than `timeoutMs`. */
  static open(port: number, identity: Identity, extra: tls.ConnectionOptions = {}, timeoutMs = 5000): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      let socket: tls.TLSSocket;
      try {
        socket = tls.connect({ host: '127.0.0.1', port, ...identity, ...extra });
      } catch (err) {
        return reject(err);
      }
      const peer = new RawPeer(socket);
      const timer = setTimeout(() => fail(new Error(`TLS not up within ${timeoutMs} ms`)), timeoutMs);
      const fail = (err: unknown): void => {
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      };
      socket.once('error', fail);
      socket.once('close', () => fail(new Error('closed during the TLS handshake')));
      socket.once('secureConnect', () => {
        clearTimeout(timer);
        socket.off('error', fail);
        peer.localPort = socket.localPort;
        resolve(peer);
      });
    });
  }

  write(bytes: Buffer): void {
    if (!this.closed) this.socket.write(bytes);
  }

  /**
   * Writes a large buffer in 256 KiB pieces, yielding between them (one 64 MiB write would encrypt it all in one
   * go, stalling the attacker's event loop and the good client living in it), then waits until the kernel has
   * taken all of it (or `timeoutMs` passed): the daemon has then read nearly everything.
   */
  async writeLarge(bytes: Buffer, timeoutMs = 15_000): Promise<void> {
    for (let at = 0; at < bytes.length && !this.closed; at += 256 * 1024) {
      this.write(bytes.subarray(at, at + 256 * 1024));
      await new Promise((resolve) => setImmediate(resolve));
    }
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && this.socket.writableLength > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  }

  /** Sends HELLO and waits for WELCOME; throws if something else comes (REJECT) or nothing does. */
  async handshake(features = 0, timeoutMs = 5000): Promise<Welcome> {
    this.write(helloFrame(features));
    const answer = await this.waitFrame((f) => f.type === FrameType.WELCOME || f.type === FrameType.REJECT, timeoutMs);
    if (answer?.type !== FrameType.WELCOME) throw new Error(answer ? `REJECT: ${answer.body.subarray(1).toString()}` : 'no WELCOME');
    return { keepaliveMs: answer.body.readUInt32BE(3), maxFrameBytes: answer.body.readUInt32BE(7) };
  }

  /** The first frame (already here or to come) that `match` accepts; undefined on close or timeout. */
  async waitFrame(match: (frame: ParsedFrame) => boolean, timeoutMs: number): Promise<ParsedFrame | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.frames.find(match);
      if (found !== undefined || this.closed || Date.now() >= deadline) return found;
      await this.nextEvent(deadline - Date.now());
    }
  }

  /** Resolves true once the socket is closed, false if it is still open after `timeoutMs`. */
  async waitClose(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await this.nextEvent(deadline - Date.now());
    return this.closed;
  }

  /** Stops reading: what the daemon sends piles up in its buffers (the slow-consumer attack). */
  stopReading(): void {
    this.socket.pause();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private nextEvent(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(1, ms));
      this.waiters.push(done);
    });
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  private onData(chunk: Buffer): void {
    if (this.skip > 0) {
      const n = Math.min(this.skip, chunk.length);
      this.skip -= n;
      chunk = chunk.subarray(n);
    }
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    while (this.pending.length >= HEADER_BYTES) {
      const length = this.pending.readUInt32BE(0);
      const head = { type: this.pending[4]!, flags: this.pending[5]!, id: this.pending.readUInt32BE(6) };
      if (length > KEEP_BODY_BYTES) {
        this.frames.push({ ...head, body: Buffer.alloc(0) });
        const have = Math.min(length, this.pending.length - HEADER_BYTES);
        this.skip = length - have;
        this.pending = this.pending.subarray(HEADER_BYTES + have);
        continue;
      }
      if (this.pending.length < HEADER_BYTES + length) break;
      this.frames.push({ ...head, body: Buffer.from(this.pending.subarray(HEADER_BYTES, HEADER_BYTES + length)) });
      this.pending = this.pending.subarray(HEADER_BYTES + length);
      // A peer that reads answers PINGs, as any client does: so a row tests its own bound, not the heartbeat.
      if (head.type === FrameType.PING) this.write(frame(FrameType.PONG, 0, head.id));
    }
    this.wake();
  }
}

/** The `code` of an ERROR frame's body (msgpack error object), or a short description. */
export function errorCode(frame: ParsedFrame): string {
  try {
    const value = unpack(frame.body) as { code?: unknown; message?: unknown };
    return typeof value?.code === 'string' ? value.code : `error ${JSON.stringify(value).slice(0, 60)}`;
  } catch {
    return 'undecodable error';
  }
}

/** Opens a TLS connection, writes `bytes` after the handshake, reads; resolves true if the daemon closed it. */
export async function tlsSendAndWaitClose(port: number, identity: Identity, bytes: Buffer[], waitMs: number): Promise<boolean> {
  let peer: RawPeer;
  try {
    peer = await RawPeer.open(port, identity);
  } catch {
    return true; // refused during the TLS handshake
  }
  for (const b of bytes) peer.write(b);
  const closed = await peer.waitClose(waitMs);
  peer.destroy();
  return closed;
}

/** Plain TCP to the TLS port: writes `bytes` (if any), reads; resolves true if the daemon closed it. */
export function tcpSendAndWaitClose(port: number, bytes: Buffer | undefined, waitMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, waitMs);
    socket.on('error', () => undefined);
    socket.resume();
    socket.once('connect', () => bytes && socket.write(bytes));
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}
