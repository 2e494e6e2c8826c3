/*
 * The one file of src/cli/ that uses the client core (dial, ClientLink, OutgoingCall, resolveClientConfig). Everything else in
 * src/cli/ talks to a daemon through `connect()` and `probe()` below, so a change of the client core touches this file
 * alone. Nothing here (or below it) imports Nest or rxjs: the CLI runs without them.
 */
import type { X509Certificate } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { checkServerIdentity, type TLSSocket } from 'node:tls';
import { performance } from 'node:perf_hooks';
// ---- the client core: the only imports of src/cli/ from src/client/ and src/config/client-config ----
import { ClientLink } from '../client/client-link.js';
import { dial, type Dialled, type DialOptions } from '../client/dial.js';
import { OutgoingCall } from '../client/outgoing-call.js';
import { createResolve } from '../client/discovery/resolve.js';
import { resolveClientConfig } from '../config/client-config.js';
// ---- below the client core ----
import { algorithmFromFeatures, COMPRESSION_FEATURES, CompressionFeature, FrameCompressor } from '../connection/compression.js';
import { describeError, ErpsConnectFailedError, ErpsConnectionLostError, ErpsDiscoveryError, ErpsHandshakeError, ErpsTlsError } from '../errors/index.js';
import { createCodec, type CodecName } from '../protocol/codec.js';
import { FrameType } from '../protocol/frame.js';
import { RejectCode } from '../protocol/handshake.js';
import { buildMeta, type Headers } from '../protocol/headers.js';
import { wirePattern } from '../protocol/message.js';

/** Where to connect: `host:port`, or a name to look up first (`dns:name:port`, `srv:name`). */
export interface CliTarget {
  host: string;
  port: number;
  /** The name the server certificate must carry when --server-name is not given (discovered targets). */
  serverName?: string;
  /** Look the daemon up (the first address found is used). */
  discover?: { dns: string; port: number } | { srv: string };
}

/** Certificate files for mutual TLS. */
export interface CliTlsFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
}

export interface CliConnectOptions {
  /** undefined: plain TCP (--plain). */
  tls: CliTlsFiles | undefined;
  /** The name the server certificate must carry, sent as SNI (--server-name); the host otherwise. */
  serverName?: string;
  identifier: string;
  version: string;
  codec: CodecName;
  /** TCP + TLS + HELLO/WELCOME must finish within this. */
  connectTimeoutMs: number;
}

/** What the server said in WELCOME. */
export interface CliWelcome {
  wireVersion: number;
  /** Feature bits the server accepted of those offered. */
  features: number;
  /** Compression algorithms among the accepted features. */
  compression: string[];
  keepaliveMs: number;
  maxFrameBytes: number;
}

/** Receives the values of one call: `next` per value (a stream has several), then `complete` or `error`. */
export interface CliCallObserver {
  next(value: unknown): void;
  error(err: unknown): void;
  complete(): void;
}

/** One handshaken connection to a daemon. */
export interface CliConnection {
  readonly welcome: CliWelcome;
  /** Milliseconds from the start of the TCP connect to WELCOME. */
  readonly handshakeMs: number;
  /** Sends a CALL; returns the function that cancels it. `timeoutMs` 0: no timeout. */
  call(pattern: string, data: unknown, headers: Headers | undefined, timeoutMs: number, observer: CliCallObserver): () => void;
  /** Sends a CAST (no reply). Throws when the message cannot be sent (codec, size, congestion). */
  cast(pattern: string, data: unknown, headers: Headers | undefined): void;
  /** Hears every PUSH from the server. */
  onPush(listener: (pattern: string, data: unknown) => void): void;
  /** Hears the connection close (reason undefined for our own close). */
  onClose(listener: (reason: Error | undefined) => void): void;
  /** One PING → PONG round trip, in milliseconds; rejects if the connection closes first or after `timeoutMs`. */
  ping(timeoutMs: number): Promise<number>;
  /** Closes cleanly (what was queued, a CAST included, is written first); resolves once the socket is gone. */
  close(): Promise<void>;
}

/** The TLS side of a connection, as `inspect` reports it. */
export interface CliTlsDetails {
  /** 'TLSv1.3', 'TLSv1.2'. */
  protocol: string | null;
  cipher: { name: string; standardName: string; version: string };
  /** The server's certificate. */
  certificate: X509Certificate | undefined;
  /** The server name the certificate was checked against (--server-name, or the host). */
  checkedName: string;
  /** The chain verifies against the given CA (OpenSSL's verification). */
  chainVerified: boolean;
  /** OpenSSL's verification error (e.g. UNABLE_TO_VERIFY_LEAF_SIGNATURE) when it does not. */
  chainError: string | undefined;
  /** Why the certificate does not carry `checkedName`, when it does not. */
  nameError: string | undefined;
}

/** What `probe()` found out: as much as the connection got through, and the error that stopped it. */
export interface CliProbe {
  /** undefined under --plain, or when TLS did not complete. */
  tls: CliTlsDetails | undefined;
  welcome: CliWelcome | undefined;
  handshakeMs: number | undefined;
  /** The refusal, when the server sent REJECT (a refused client certificate included). */
  reject: { code: number; name: string; reason: string } | undefined;
  /** Why the probe stopped short of WELCOME (undefined when WELCOME came). */
  error: Error | undefined;
}

/** PUSHes kept for the first push listener (they may arrive with WELCOME); later ones with no listener are dropped. */
const MAX_EARLY_PUSHES = 1000;

/** REJECT codes by number, for people. */
export const REJECT_NAMES: Readonly<Record<number, string>> = Object.fromEntries(Object.entries(RejectCode).map(([name, code]) => [code, name]));

/** Opens one connection: TCP (+ TLS), HELLO, WELCOME. Rejects with the client core's typed errors. */
export async function connect(target: CliTarget, options: CliConnectOptions): Promise<CliConnection> {
  const addresses = await located(target);
  for (let i = 0; ; i++) {
    const dialOptions = dialOptionsFor(addresses[i]!, options);
    const startedAt = performance.now();
    try {
      const dialled = await dial(dialOptions);
      return new LinkedConnection(dialled, options.codec, performance.now() - startedAt);
    } catch (err) {
      // A looked-up name may have several addresses (localhost: ::1 and 127.0.0.1): the next one may listen.
      if (!(err instanceof ErpsConnectFailedError) || i === addresses.length - 1) throw err;
    }
  }
}

/**
 * Connects the way `connect()` does, offering every compression feature, but without refusing an unverified server
 * certificate: verification is recorded instead (the chain against the CA, the certificate's names against the
 * server name), so `inspect` can show a certificate it does not trust. Sends HELLO and nothing else; closes.
 */
export async function probe(target: CliTarget, options: CliConnectOptions): Promise<CliProbe> {
  target = (await located(target))[0]!;
  const dialOptions = dialOptionsFor(target, options);
  const checkedName = options.serverName ?? target.serverName ?? target.host;
  dialOptions.hello = { ...dialOptions.hello, features: COMPRESSION_FEATURES };
  if (dialOptions.tls !== undefined) dialOptions.tls = { ...dialOptions.tls, rejectUnauthorized: false, checkServerIdentity: () => undefined };
  const result: CliProbe = { tls: undefined, welcome: undefined, handshakeMs: undefined, reject: undefined, error: undefined };
  const onSocket = (socket: Duplex): void => {
    if (dialOptions.tls === undefined) return;
    const tlsSocket = socket as TLSSocket;
    tlsSocket.once('secureConnect', () => (result.tls = tlsDetails(tlsSocket, checkedName)));
  };
  const startedAt = performance.now();
  try {
    const dialled = await dial(dialOptions, onSocket);
    result.handshakeMs = performance.now() - startedAt;
    result.welcome = welcomeOf(dialled);
    const socket = dialled.connection.socket;
    await new Promise<void>((resolve) => {
      if (socket.closed) return resolve();
      socket.once('close', () => resolve());
      dialled.connection.close();
    });
  } catch (err) {
    result.error = err as Error;
    if (err instanceof ErpsHandshakeError) {
      const code = err.rejectCode ?? 0;
      result.reject = { code, name: REJECT_NAMES[code] ?? 'UNKNOWN', reason: err.reason };
    } else if (err instanceof ErpsTlsError) {
      // dial() reports a REJECT of the client certificate as a TLS failure: "<where>: client certificate refused: …".
      const refused = /: (client certificate refused: .*)$/s.exec(err.message);
      if (refused) result.reject = { code: RejectCode.CERTIFICATE, name: 'CERTIFICATE', reason: refused[1]! };
    }
  }
  return result;
}

/**
 * A discovered target becomes the addresses its DNS lookup gives (the system resolver, as the client's discovery does
 * without `servers`), with the looked-up name as the name their certificate must carry. Rejects with
 * ErpsDiscoveryError when the name resolves to nothing.
 */
export async function located(target: CliTarget): Promise<CliTarget[]> {
  const discover = target.discover;
  if (discover === undefined) return [target];
  const resolve = createResolve(
    'dns' in discover
      ? { kind: 'dns', name: discover.dns, port: discover.port, serverName: discover.dns, servers: undefined, refreshMs: 1 }
      : { kind: 'srv', name: discover.srv, serverName: undefined, servers: undefined, refreshMs: 1 },
  );
  const name = 'dns' in discover ? `dns:${discover.dns}:${discover.port}` : `srv:${discover.srv}`;
  let found: Awaited<ReturnType<typeof resolve>>;
  try {
    found = await resolve();
  } catch (err) {
    throw new ErpsDiscoveryError(`${name}: the lookup failed: ${describeError(err)}`, err);
  }
  if (found.length === 0) throw new ErpsDiscoveryError(`${name}: the lookup found no address`);
  return found.map(({ host, port, serverName }) => ({ host, port, serverName }));
}

function dialOptionsFor(target: CliTarget, options: CliConnectOptions): DialOptions {
  const config = resolveClientConfig({
    host: target.host,
    port: target.port,
    transport: options.tls === undefined ? 'tcp' : 'tls',
    tls: options.tls === undefined ? undefined : { ...options.tls, serverName: options.serverName ?? target.serverName },
    identifier: options.identifier,
    version: options.version,
    codec: options.codec,
    connectTimeoutMs: options.connectTimeoutMs,
    reconnect: false,
  });
  return { host: target.host, port: target.port, tls: config.tls, hello: config.hello, connection: config.connection, timeoutMs: config.connectTimeoutMs };
}

function welcomeOf(dialled: Dialled): CliWelcome {
  const { wireVersion, features, keepaliveMs, maxFrameBytes } = dialled.welcome;
  const compression = (Object.keys(CompressionFeature) as Array<keyof typeof CompressionFeature>).filter((name) => (features & CompressionFeature[name]) !== 0);
  return { wireVersion, features, compression, keepaliveMs, maxFrameBytes };
}

function tlsDetails(socket: TLSSocket, checkedName: string): CliTlsDetails {
  // getPeerCertificate() first: after getPeerX509Certificate() it returns {} (Node 20).
  const peer = socket.getPeerCertificate();
  const certificate = socket.getPeerX509Certificate();
  const nameError = Object.keys(peer).length === 0 ? 'no certificate' : checkServerIdentity(checkedName, peer)?.message;
  const authorizationError = socket.authorizationError as unknown as Error | string | null | undefined;
  return {
    protocol: socket.getProtocol(),
    cipher: socket.getCipher(),
    certificate,
    checkedName,
    chainVerified: socket.authorized,
    chainError:
      authorizationError == null
        ? undefined
        : typeof authorizationError === 'string'
          ? authorizationError
          : ((authorizationError as { code?: string }).code ?? authorizationError.message),
    nameError,
  };
}

class LinkedConnection implements CliConnection {
  readonly welcome: CliWelcome;
  private readonly link: ClientLink;
  private readonly pushListeners: Array<(pattern: string, data: unknown) => void> = [];
  private readonly earlyPushes: Array<[string, unknown]> = [];
  private readonly closeListeners: Array<(reason: Error | undefined) => void> = [];
  /** Pings awaiting their PONG: settled with nothing when it comes, with the error when the connection closes. */
  private readonly pongs = new Map<number, (lost?: Error) => void>();
  private nextPingId = 1;
  private closed: { reason: Error | undefined } | undefined;

  constructor(
    dialled: Dialled,
    codecName: CodecName,
    readonly handshakeMs: number,
  ) {
    this.welcome = welcomeOf(dialled);
    const { connection, welcome } = dialled;
    const algorithm = algorithmFromFeatures(welcome.features);
    if (algorithm !== undefined) connection.enableCompression(new FrameCompressor(algorithm, Number.MAX_SAFE_INTEGER));
    connection.onPong = (id) => this.pongs.get(id)?.();
    this.link = new ClientLink(connection, createCodec(codecName), welcome.maxFrameBytes, {
      goaway: () => undefined,
      // One connection, no fleet: a refused or lost call is the caller's to hear, never sent elsewhere.
      resend: () => false,
      callFailed: () => undefined,
      closed: (_link, reason) => {
        this.closed = { reason };
        const lost = new ErpsConnectionLostError(`the connection closed before the PONG${reason ? `: ${reason.message}` : ''}`, reason);
        for (const settle of [...this.pongs.values()]) settle(lost);
        for (const listener of this.closeListeners) listener(reason);
      },
      push: (pattern, data) => {
        if (this.pushListeners.length === 0) {
          // A PUSH may come with WELCOME, before anyone listens: kept (a few) for the first listener.
          if (this.earlyPushes.length < MAX_EARLY_PUSHES) this.earlyPushes.push([pattern, data]);
          return;
        }
        for (const listener of this.pushListeners) listener(pattern, data);
      },
    });
  }

  call(pattern: string, data: unknown, headers: Headers | undefined, timeoutMs: number, observer: CliCallObserver): () => void {
    const call = new OutgoingCall(wirePattern(pattern), buildMeta(headers, false, undefined), data, observer, timeoutMs, false);
    this.link.call(call);
    return () => call.unsubscribe();
  }

  cast(pattern: string, data: unknown, headers: Headers | undefined): void {
    this.link.cast(wirePattern(pattern), buildMeta(headers, false, undefined), data);
  }

  onPush(listener: (pattern: string, data: unknown) => void): void {
    this.pushListeners.push(listener);
    const early = this.earlyPushes.splice(0);
    for (const [pattern, data] of early) listener(pattern, data);
  }

  onClose(listener: (reason: Error | undefined) => void): void {
    if (this.closed !== undefined) listener(this.closed.reason);
    else this.closeListeners.push(listener);
  }

  ping(timeoutMs: number): Promise<number> {
    if (this.closed !== undefined) return Promise.reject(new ErpsConnectionLostError('the connection is closed'));
    const id = this.nextPingId++;
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pongs.delete(id);
        reject(new ErpsConnectionLostError(`no PONG within ${timeoutMs} ms`));
      }, timeoutMs);
      const sentAt = performance.now();
      this.pongs.set(id, (lost) => {
        this.pongs.delete(id);
        clearTimeout(timer);
        if (lost === undefined) resolve(performance.now() - sentAt);
        else reject(lost);
      });
      this.link.connection.send(FrameType.PING, 0, id);
    });
  }

  close(): Promise<void> {
    return this.link.shutdown(new ErpsConnectionLostError('the connection was closed by erps'));
  }
}
