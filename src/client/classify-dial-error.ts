import { ErpsConnectFailedError, ErpsHandshakeError, ErpsProtocolError, ErpsTlsError, describeError } from '../errors/index.js';
import { stripOpenSslNoise } from '../tls/tls-failure.js';

/**
 * The codes Node gives certificate verification failures: OpenSSL's X509_V_ERR_* names without the prefix, and
 * UNSPECIFIED for a verify result Node has no name for. These errors carry no other mark of OpenSSL.
 */
const X509_VERIFY_CODES: ReadonlySet<string> = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_CRL',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CRL_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CRL_NOT_YET_VALID',
  'CRL_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'ERROR_IN_CRL_LAST_UPDATE_FIELD',
  'ERROR_IN_CRL_NEXT_UPDATE_FIELD',
  'OUT_OF_MEM',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
  'UNSPECIFIED',
]);

/** Node's own TLS errors (ERR_TLS_*, e.g. a server name the certificate does not carry) and OpenSSL's (ERR_SSL_*, ERR_OSSL_*). */
const TLS_CODE_PREFIX = /^ERR_(TLS|SSL|OSSL)_/;

/** Whether a connect failure came from TLS: certificate verification, an alert, or anything else OpenSSL raised. */
export function isTlsFailure(err: Error): boolean {
  const { code, library } = err as { code?: unknown; library?: unknown };
  if (typeof code === 'string' && (X509_VERIFY_CODES.has(code) || TLS_CODE_PREFIX.test(code))) return true;
  // An error raised inside OpenSSL names the OpenSSL library it came from, whatever its code.
  return typeof library === 'string';
}

/** The typed error a failed dial to `where` rejects with; the original error is kept as `cause`. */
export function classifyDialError(err: Error, where: string): Error {
  if (err instanceof ErpsHandshakeError || err instanceof ErpsProtocolError) return err;
  if (isTlsFailure(err)) return new ErpsTlsError(`TLS handshake with ${where} failed: ${stripOpenSslNoise(err.message)}`, err);
  return new ErpsConnectFailedError(`cannot connect to ${where}: ${describeError(err)}`, err);
}
