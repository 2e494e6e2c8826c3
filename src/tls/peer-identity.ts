import type { PeerCertificate, TLSSocket } from 'node:tls';

/** Who is on the other end of a mutual-TLS connection, from its certificate. */
export interface PeerIdentity {
  /** Subject common name. */
  cn: string | undefined;
  /** Subject fields (CN, O, OU, ...); the first value where a field repeats. */
  subject: Readonly<Record<string, string>>;
  /** Issuer common name. */
  issuerCn: string | undefined;
  /** Subject alternative names as `DNS:name`, `IP:address`, `URI:uri`, `email:addr`. */
  sans: readonly string[];
  /** SHA-256 fingerprint, colon-separated upper-case hex (as Node prints it). */
  fingerprint256: string;
  serialNumber: string;
  validFrom: Date;
  validTo: Date;
}

function firstValues(fields: object | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(fields ?? {})) {
    if (typeof value === 'string') out[name] = value;
    else if (Array.isArray(value) && typeof value[0] === 'string') out[name] = value[0];
  }
  return out;
}

function parseSans(subjectaltname: string | undefined): string[] {
  if (!subjectaltname) return [];
  return subjectaltname.split(', ').map((entry) => entry.replace(/^IP Address:/, 'IP:'));
}

export function identityFromCertificate(cert: PeerCertificate): PeerIdentity {
  const subject = firstValues(cert.subject);
  const issuer = firstValues(cert.issuer);
  return Object.freeze({
    cn: subject.CN,
    subject: Object.freeze(subject),
    issuerCn: issuer.CN,
    sans: Object.freeze(parseSans(cert.subjectaltname)),
    fingerprint256: cert.fingerprint256,
    serialNumber: cert.serialNumber,
    validFrom: new Date(cert.valid_from),
    validTo: new Date(cert.valid_to),
  });
}

/** The peer's identity on an authorized TLS socket, or undefined (plain TCP, or no certificate). */
export function peerIdentityOf(socket: TLSSocket): PeerIdentity | undefined {
  if (typeof socket.getPeerCertificate !== 'function') return undefined;
  const cert = socket.getPeerCertificate();
  if (!cert || Object.keys(cert).length === 0) return undefined;
  return identityFromCertificate(cert);
}
