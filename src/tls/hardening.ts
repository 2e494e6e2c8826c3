import { constants } from 'node:crypto';

/**
 * Cipher suites both ends use unless `tls.ciphers` replaces them: the TLS 1.3 suites Node enables by default and,
 * under TLS 1.2, only ECDHE key exchange (forward secrecy) with an AEAD cipher, AES-GCM or ChaCha20-Poly1305,
 * for ECDSA and RSA certificates. Node's own default also allows CBC, CCM, CCM8 and ARIA suites.
 */
export const ERPS_DEFAULT_CIPHERS = [
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'TLS_AES_128_GCM_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/**
 * OpenSSL answers a TLS 1.2 renegotiation request with a no_renegotiation alert (TLS 1.3 has no renegotiation).
 * Every OpenSSL that Node 20 builds with has the flag; without it, Node's own limit (tls.CLIENT_RENEG_LIMIT)
 * still ends such a connection with a socket error.
 */
const NO_RENEGOTIATION: number = constants.SSL_OP_NO_RENEGOTIATION ?? 0;

/** `ciphers` (the user's if given, else ERPS_DEFAULT_CIPHERS) and the user's `secureOptions` with renegotiation refused. */
export function hardenedTlsOptions(options: { ciphers?: string; secureOptions?: number }): { ciphers: string; secureOptions: number } {
  return { ciphers: options.ciphers ?? ERPS_DEFAULT_CIPHERS, secureOptions: (options.secureOptions ?? 0) | NO_RENEGOTIATION };
}
