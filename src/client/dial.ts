import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { connectLocal } from '../connection/local-registry.js';
import { ErpsConnection, ConnectionOptions } from '../connection/connection.js';
import { ErpsConnectTimeoutError, ErpsHandshakeError, ErpsProtocolError, ErpsTlsError, describeError } from '../errors/index.js';
import { classifyDialError } from './classify-dial-error.js';
import { Frame, FrameType } from '../protocol/frame.js';
import { decodeReject, decodeWelcome, encodeHello, Hello, RejectCode, Welcome } from '../protocol/handshake.js';
import { debug, debugEnabled } from '../debug.js';

/** REJECTs that pass: the same HELLO may be accepted later. */
const TEMPORARY_REJECTS: ReadonlySet<number> = new Set([RejectCode.SERVER_FULL, RejectCode.SHUTTING_DOWN]);

export interface DialOptions {
  host: string;
  port: number;
  /** Set for the local transport: connect in-process to this name instead of a socket. */
  localName?: string;
  /** Node TLS client options (ca, cert, key, servername, ...); undefined for plain TCP. */
  tls: tls.ConnectionOptions | undefined;
  hello: Hello;
  connection: Required<ConnectionOptions>;
  /** TCP connect + TLS + HELLO/WELCOME must finish within this many ms. */
  timeoutMs: number;
}

export interface Dialled {
  connection: ErpsConnection;
  welcome: Welcome;
}

/**
 * Opens one socket, finishes TLS, sends HELLO and waits for WELCOME. Resolves with a held connection (frames
 * after WELCOME wait) whose handlers the caller must set; rejects with ErpsHandshakeError (REJECT), ErpsTlsError or ErpsDisconnectedError.
 */
export function dial(options: DialOptions, onSocket?: (socket: Duplex) => void): Promise<Dialled> {
  const where = options.localName !== undefined ? `local:${options.localName}` : `${options.host}:${options.port}`;
  return new Promise<Dialled>((resolve, reject) => {
    let settled = false;
    let connection: ErpsConnection | undefined;
    let socket: Duplex;
    let readyEvent: string | undefined;
    debug('client: dialling %s over %s', where, options.localName !== undefined ? 'the local transport' : options.tls ? 'mutual TLS' : 'plain TCP');
    if (options.localName !== undefined) {
      try {
        socket = connectLocal(options.localName);
      } catch (err) {
        return reject(err);
      }
    } else if (options.tls) {
      socket = tls.connect({ ...options.tls, host: options.host, port: options.port }).setNoDelay(true);
      readyEvent = 'secureConnect';
    } else {
      socket = net.connect({ host: options.host, port: options.port }).setNoDelay(true);
      readyEvent = 'connect';
    }
    onSocket?.(socket);
    const timer = setTimeout(() => fail(new ErpsConnectTimeoutError(`connecting to ${where} timed out after ${options.timeoutMs} ms`)), options.timeoutMs);

    function fail(err: Error): void {
      if (settled) return;
      debug('client: %s: connection attempt failed: %s', where, describeError(err));
      settled = true;
      clearTimeout(timer);
      socket.removeListener('error', onSocketError);
      if (connection) connection.close(err);
      else socket.destroy();
      reject(err);
    }
    function onSocketError(err: Error): void {
      fail(classifyDialError(err, where));
    }
    socket.once('error', onSocketError);
    const onReady = (): void => {
      if (settled) return;
      socket.removeListener('error', onSocketError);
      if (debugEnabled()) debugConnected(where, socket, options.hello);
      connection = new ErpsConnection(
        socket,
        {
          onFrame(frame: Frame) {
            if (frame.type === FrameType.WELCOME) {
              const welcome = decodeWelcome(frame.body);
              debug(
                'client: %s: WELCOME (wire version %d, features 0x%s, keepaliveMs %d, maxFrameBytes %d)',
                where,
                welcome.wireVersion,
                welcome.features.toString(16),
                welcome.keepaliveMs,
                welcome.maxFrameBytes,
              );
              settled = true;
              clearTimeout(timer);
              connection!.handshakeDone();
              // Whatever follows WELCOME (a PUSH, a GOAWAY, the close) waits for the link that takes over.
              connection!.hold();
              resolve({ connection: connection!, welcome });
            } else if (frame.type === FrameType.REJECT) {
              const { code, reason } = decodeReject(frame.body);
              debug('client: %s: REJECT code %d: %s', where, code, reason);
              // A refused client certificate is a TLS failure (retried: certificates get rotated), told in words.
              fail(code === RejectCode.CERTIFICATE ? new ErpsTlsError(`${where}: ${reason}`) : new ErpsHandshakeError(reason, code, TEMPORARY_REJECTS.has(code)));
            } else {
              throw new ErpsProtocolError(`unexpected frame 0x${frame.type.toString(16)} before WELCOME`);
            }
          },
          onClose(reason) {
            const detail = reason ? `: ${describeError(reason)}` : '';
            const tlsHint = options.tls ? ' (a mutual-TLS server closes like this when it rejects the client certificate)' : '';
            const cause = (reason as { cause?: Error & { code?: string } } | undefined)?.cause;
            fail(cause ? classifyDialError(cause, where) : new ErpsTlsError(`${where} closed the connection before WELCOME${tlsHint}${detail}`, reason));
          },
        },
        options.connection,
      );
      connection.send(FrameType.HELLO, 0, 0, encodeHello(options.hello));
    };
    if (readyEvent === undefined) onReady();
    else socket.once(readyEvent, onReady);
  });
}

/** NODE_DEBUG=erps: the connection is up (TCP, TLS with its details), HELLO goes out. */
function debugConnected(where: string, socket: Duplex, hello: Hello): void {
  const sending = `sending HELLO (identifier "${hello.identifier}", version ${hello.version}, codec ${hello.codec}, features 0x${hello.features.toString(16)})`;
  if (socket instanceof tls.TLSSocket) {
    const subject = socket.getPeerCertificate().subject as Record<string, unknown> | undefined;
    debug('client: %s: TLS up (%s, %s), server certificate CN "%s"; %s', where, socket.getProtocol(), socket.getCipher().name, subject?.CN, sending);
  } else {
    debug('client: %s: connected; %s', where, sending);
  }
}
