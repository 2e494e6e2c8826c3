/**
 * Words for TLS failures: OpenSSL's messages carry source-file noise ("…:error:0A00010B:SSL routines:
 * ssl3_get_record:wrong version number:../deps/openssl/…:350:"); people need the reason alone, and a kind they
 * can act on.
 */

/** What went wrong with a peer's certificate or TLS handshake. */
export type TlsFailureKind =
  | 'no-certificate'
  | 'unknown-ca'
  | 'expired'
  | 'not-yet-valid'
  | 'revoked'
  | 'wrong-purpose'
  | 'bad-certificate'
  | 'hostname-mismatch'
  | 'plain-tcp'
  | 'handshake-timeout'
  | 'reset'
  | 'tls-error';

const VERIFY_KINDS: Record<string, TlsFailureKind> = {
  CERT_HAS_EXPIRED: 'expired',
  CERT_NOT_YET_VALID: 'not-yet-valid',
  CERT_REVOKED: 'revoked',
  INVALID_PURPOSE: 'wrong-purpose',
  UNSUPPORTED_CERTIFICATE_PURPOSE: 'wrong-purpose',
  UNABLE_TO_GET_ISSUER_CERT: 'unknown-ca',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unknown-ca',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unknown-ca',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'unknown-ca',
  SELF_SIGNED_CERT_IN_CHAIN: 'unknown-ca',
  CERT_UNTRUSTED: 'unknown-ca',
  HOSTNAME_MISMATCH: 'hostname-mismatch',
  ERR_TLS_CERT_ALTNAME_INVALID: 'hostname-mismatch',
  ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE: 'no-certificate',
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: 'no-certificate',
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED: 'expired',
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED: 'revoked',
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: 'unknown-ca',
  ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: 'bad-certificate',
  ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE: 'wrong-purpose',
  ERR_SSL_WRONG_VERSION_NUMBER: 'plain-tcp',
  ERR_SSL_HTTP_REQUEST: 'plain-tcp',
  ERR_TLS_HANDSHAKE_TIMEOUT: 'handshake-timeout',
  ECONNRESET: 'reset',
};

const SENTENCES: Record<TlsFailureKind, string> = {
  'no-certificate': 'no client certificate was presented',
  'unknown-ca': 'the certificate is not signed by a trusted CA (unknown CA)',
  expired: 'the certificate has expired',
  'not-yet-valid': 'the certificate is not valid yet',
  revoked: 'the certificate is revoked',
  'wrong-purpose': 'the certificate is not meant for this use (wrong purpose: check its extended key usage)',
  'bad-certificate': 'the certificate was refused as bad',
  'hostname-mismatch': 'the certificate does not name the host that was dialled',
  'plain-tcp': 'the peer does not speak TLS (plain TCP or HTTP on a TLS port?)',
  'handshake-timeout': 'the TLS handshake did not finish in time',
  reset: 'the peer closed the connection during the TLS handshake',
  'tls-error': 'the TLS handshake failed',
};

/** OpenSSL's reason alone ("wrong version number"), without its error-queue prefix and source file. */
export function stripOpenSslNoise(message: string): string {
  const match = /^[0-9A-F]+:error:[0-9A-F]+:[^:]*:[^:]*:([^:]+):/.exec(message);
  return match ? match[1]! : message;
}

export interface TlsFailure {
  kind: TlsFailureKind;
  /** A sentence people can act on, with the code it came from. */
  message: string;
  /** The OpenSSL / Node code it came from, when there is one. */
  code: string | undefined;
}

/** Classifies a verification code (`socket.authorizationError`, an X509_V_ERR name) or a TLS error. */
export function describeTlsFailure(source: string | (Error & { code?: unknown; reason?: unknown })): TlsFailure {
  const code = typeof source === 'string' ? source : typeof source.code === 'string' ? source.code : undefined;
  const kind: TlsFailureKind = (code !== undefined ? VERIFY_KINDS[code] : undefined) ?? 'tls-error';
  const detail = typeof source === 'string' ? undefined : typeof source.reason === 'string' ? source.reason : stripOpenSslNoise(source.message);
  const said = SENTENCES[kind];
  const message = kind === 'tls-error' && detail !== undefined ? `${said}: ${detail}` : said;
  return { kind, message: code !== undefined ? `${message} (${code})` : message, code };
}
