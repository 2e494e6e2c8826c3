import {
  ErpsConfigError,
  ErpsConnectFailedError,
  ErpsConnectionLostError,
  ErpsConnectTimeoutError,
  ErpsDisconnectedError,
  ErpsDiscoveryError,
  ErpsError,
  ErpsHandshakeError,
  ErpsTimeoutError,
  ErpsTlsError,
  describeError,
} from '../errors/index.js';
import { RejectCode } from '../protocol/handshake.js';
import { describeTlsFailure, type TlsFailureKind } from '../tls/tls-failure.js';

/** The exit codes of `erps`, a contract: scripts test them. */
export const ExitCode = {
  /** Success. */
  OK: 0,
  /** The call (or the command) failed: an error reply, a timeout, a value that cannot be sent. */
  FAILED: 1,
  /** Usage: a bad option or argument, missing certificates, an unsupported target. */
  USAGE: 2,
  /** The connection failed: nothing listening, TLS refused, the Erps handshake rejected, the connection lost. */
  CONNECTION: 3,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** A failure as `erps` reports it: what happened, what to do about it, and the exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    /** What to do about it. */
    readonly hint?: string,
    /** A stable code: the ErpsError's, the error reply's, or ERPS_CLI_USAGE. */
    readonly code: string = exitCode === ExitCode.USAGE ? 'ERPS_CLI_USAGE' : 'ERPS_CLI',
    /** An error reply's other fields (details and the like), shown as they came. */
    readonly reply?: Record<string, unknown>,
    /** The message as it came in an error reply (`message` says more, for people). */
    readonly replyMessage?: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export function usageError(message: string, hint?: string): CliError {
  return new CliError(message, ExitCode.USAGE, hint);
}

/** What `explain` needs to know about the attempt to give advice. */
export interface Attempt {
  /** `host:port` as given. */
  where: string;
  /** --plain was given. */
  plain: boolean;
  /** The version sent in HELLO. */
  version: string;
}

const CERTS_HINT = 'development certificates: npx erps certs ./certs, then --certs ./certs';

/** Any failure → a CliError with its exit code and a hint. */
export function explain(err: unknown, attempt: Attempt): CliError {
  if (err instanceof CliError) return err;
  if (err instanceof ErpsHandshakeError) return explainReject(err, attempt);
  if (err instanceof ErpsTlsError) return explainTls(err, attempt);
  if (err instanceof ErpsConnectTimeoutError) {
    return new CliError(err.message, ExitCode.CONNECTION, 'check the address and any firewall in between, or allow more time with --connect-timeout', err.code);
  }
  if (err instanceof ErpsConnectFailedError) return explainConnectFailed(err, attempt);
  if (err instanceof ErpsDiscoveryError) {
    return new CliError(err.message, ExitCode.CONNECTION, 'check the name and its records (dig it), or give the server as host:port', err.code);
  }
  if (err instanceof ErpsConnectionLostError || err instanceof ErpsDisconnectedError) {
    return new CliError(describeError(err), ExitCode.CONNECTION, 'the server closed the connection or stopped answering: check its log', err.code);
  }
  if (err instanceof ErpsTimeoutError) {
    return new CliError(err.message, ExitCode.FAILED, 'no reply in time: allow more with --timeout <ms> (0: none), or check the handler', err.code);
  }
  if (err instanceof ErpsConfigError) {
    return new CliError(err.message.replace(/^ErpsClient: /, ''), ExitCode.USAGE, undefined, err.code);
  }
  if (err instanceof ErpsError) return new CliError(err.message, ExitCode.FAILED, undefined, err.code);
  if (isErrorReply(err)) return explainReply(err);
  return new CliError(describeError(err), ExitCode.FAILED);
}

/** An error reply as the server sends it: an object with a message (and usually a code). */
function isErrorReply(err: unknown): err is Record<string, unknown> & { message?: unknown } {
  return typeof err === 'object' && err !== null && !(err instanceof Error);
}

const REPLY_HINTS: Record<string, string> = {
  ERPS_NO_HANDLER: 'no handler for that pattern on this server: check its spelling (an object pattern is given as JSON, e.g. \'{"cmd":"sum"}\')',
  ERPS_FORBIDDEN: 'the server refused this caller: use a client certificate it allows (--cert, --key)',
  ERPS_CODEC: 'the server could not decode the payload: check the JSON, or the --codec',
  ERPS_HEADERS: 'too many or too large headers (--header)',
  ERPS_BUSY: 'too many calls in flight on the connection: try again, with less concurrency',
  ERPS_GOAWAY: 'the server is shutting down: try again once it is back',
};

function explainReply(reply: Record<string, unknown>): CliError {
  const code = typeof reply.code === 'string' ? reply.code : typeof reply.code === 'number' ? String(reply.code) : 'ERROR';
  const message = typeof reply.message === 'string' ? reply.message : JSON.stringify(reply);
  const { status: _status, code: _code, message: _message, ...rest } = reply;
  return new CliError(`the call failed: ${code}: ${message}`, ExitCode.FAILED, REPLY_HINTS[code], code, Object.keys(rest).length > 0 ? rest : undefined, message);
}

function explainReject(err: ErpsHandshakeError, attempt: Attempt): CliError {
  const reason = err.reason;
  let hint: string | undefined;
  switch (err.rejectCode) {
    case RejectCode.IDENTIFIER: {
      const server = /server is "([^"]*)"/.exec(reason)?.[1];
      hint = server !== undefined ? `pass --identifier ${server}` : 'pass the identifier the server uses with --identifier';
      break;
    }
    case RejectCode.VERSION: {
      const range = /accepted range "([^"]*)"/.exec(reason)?.[1];
      hint = `pass --version with a version ${range !== undefined ? `inside "${range}"` : 'the server accepts'} (sent: ${attempt.version})`;
      break;
    }
    case RejectCode.CODEC: {
      const codec = /server speaks (\w+)/.exec(reason)?.[1];
      hint = `pass --codec ${codec ?? '<the server’s codec>'}`;
      break;
    }
    case RejectCode.WIRE_VERSION:
      hint = 'the two ends speak different wire protocols: upgrade nestjs-erps on the older one';
      break;
    case RejectCode.UNAUTHORIZED:
      hint = 'the server does not admit this client certificate (allowPeers): use one it allows with --cert and --key';
      break;
    case RejectCode.SERVER_FULL:
    case RejectCode.SHUTTING_DOWN:
      hint = 'the refusal is temporary: try again later';
      break;
  }
  return new CliError(`the server rejected the handshake: ${reason}`, ExitCode.CONNECTION, hint, err.code);
}

/** What to do when the server refused our client certificate, by kind. */
const CLIENT_CERT_HINTS: Partial<Record<TlsFailureKind, string>> = {
  'unknown-ca': 'use a client certificate issued by a CA the server trusts (--cert, --key), or add its CA to the server’s tls.ca',
  expired: 'the client certificate has expired: issue a new one and pass it with --cert and --key (for development: npx erps certs DIR --force)',
  'not-yet-valid': 'the client certificate is not valid yet: check its notBefore and both clocks',
  revoked: 'the client certificate is revoked: use another one (--cert, --key)',
  'wrong-purpose': 'the certificate is not a client certificate (extended key usage clientAuth): use one that is',
  'no-certificate': `pass a client certificate with --cert and --key (or --certs DIR); ${CERTS_HINT}`,
  'bad-certificate': 'the server refused the client certificate: check it is the right one (--cert, --key)',
};

/** What to do when we refused the server's certificate (or TLS failed), by kind. */
const SERVER_CERT_HINTS: Partial<Record<TlsFailureKind, string>> = {
  'unknown-ca': 'the server certificate is not signed by the CA you gave: pass the CA that issued it with --ca (erps inspect shows its issuer)',
  expired: 'the server certificate has expired: renew it on the server',
  'not-yet-valid': 'the server certificate is not valid yet: check its notBefore and both clocks',
  'hostname-mismatch': 'the server certificate does not name the host you dialled: pass --server-name with a name it carries (erps inspect shows its SANs)',
  'plain-tcp': "the server does not speak TLS: if it is a development server with transport 'tcp', pass --plain",
  'handshake-timeout': 'the TLS handshake did not finish in time: check the port is the Erps daemon’s',
  reset: 'the server closed the connection during the TLS handshake: it may not trust the client certificate (see its log), or not speak TLS',
};

function explainTls(err: ErpsTlsError, attempt: Attempt): CliError {
  const refused = /client certificate refused: (.*)$/s.exec(err.message);
  if (refused) {
    const code = /\((\w+)\)$/.exec(refused[1]!)?.[1];
    const failure = describeTlsFailure(code ?? 'UNKNOWN');
    const what = failure.kind === 'tls-error' ? refused[1]! : kindWords(failure.kind);
    return new CliError(`the server rejected the client certificate: ${what}`, ExitCode.CONNECTION, CLIENT_CERT_HINTS[failure.kind], err.code);
  }
  if (/closed the connection before WELCOME/.test(err.message)) {
    const hint = attempt.plain
      ? 'the server may speak TLS (the default): drop --plain and pass certificates (--certs DIR or --ca/--cert/--key)'
      : 'the server closed the connection before the Erps handshake: check that the port is an Erps daemon’s, and the server log for a refused client certificate';
    return new CliError(err.message, ExitCode.CONNECTION, hint, err.code);
  }
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof Error) {
    const failure = describeTlsFailure(cause);
    const detail = failure.kind === 'hostname-mismatch' ? `: ${cause.message}` : '';
    return new CliError(`TLS with ${attempt.where} failed: ${failure.message}${detail}`, ExitCode.CONNECTION, SERVER_CERT_HINTS[failure.kind], err.code);
  }
  return new CliError(err.message, ExitCode.CONNECTION, undefined, err.code);
}

function kindWords(kind: TlsFailureKind): string {
  switch (kind) {
    case 'unknown-ca':
      return 'unknown CA';
    case 'expired':
      return 'it has expired';
    case 'not-yet-valid':
      return 'it is not valid yet';
    case 'revoked':
      return 'it is revoked';
    case 'wrong-purpose':
      return 'wrong purpose';
    case 'no-certificate':
      return 'none was presented';
    default:
      return kind;
  }
}

function explainConnectFailed(err: ErpsConnectFailedError, attempt: Attempt): CliError {
  const code = ((err as { cause?: { code?: unknown } }).cause?.code as string | undefined) ?? '';
  const hints: Record<string, string> = {
    ECONNREFUSED: `nothing listens on ${attempt.where}: is the server running, and is the port right?`,
    ENOTFOUND: 'the host name does not resolve: check its spelling, or give an IP address',
    EAI_AGAIN: 'the host name could not be resolved now (DNS): try again, or give an IP address',
    EHOSTUNREACH: 'the host is unreachable: check the address and the network',
    ENETUNREACH: 'the network is unreachable: check the address and the network',
    ECONNRESET: 'the server reset the connection: check that the port is an Erps daemon’s',
  };
  let hint = hints[code];
  if (!attempt.plain && /before secure TLS connection/.test(err.message)) {
    // A plain-TCP daemon reads the TLS ClientHello as a frame far over its limit and drops the connection.
    hint = "the server closed the connection during the TLS handshake: if it is a development server with transport 'tcp', pass --plain; else check that the port is an Erps daemon’s";
  }
  return new CliError(err.message, ExitCode.CONNECTION, hint, err.code);
}
