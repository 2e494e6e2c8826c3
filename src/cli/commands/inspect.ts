import type { X509Certificate } from 'node:crypto';
import type { Command } from 'commander';
import { probe, type CliProbe } from '../cli-connection.js';
import { runAction, type CliEnvironment, type ExitRecord } from '../command-kit.js';
import { ExitCode, explain } from '../errors.js';
import { addConnectionOptions, attemptOf, connectOptions, parseTarget, type ConnectionFlags } from '../options.js';
import { ms, table, toJson } from '../output.js';
import { describeTlsFailure } from '../../tls/tls-failure.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/** A certificate as `inspect` shows it. */
export interface CertificateReport {
  subject: string;
  subjectAltNames: string[];
  issuer: string;
  serialNumber: string;
  validFrom: string;
  validTo: string;
  /** Whole days until it expires; negative once expired. */
  expiresInDays: number;
  fingerprint256: string;
}

function certificateReport(certificate: X509Certificate, now = Date.now()): CertificateReport {
  const validTo = new Date(certificate.validTo);
  return {
    subject: oneLine(certificate.subject),
    subjectAltNames: (certificate.subjectAltName ?? '').split(', ').filter((name) => name.length > 0),
    issuer: oneLine(certificate.issuer),
    serialNumber: certificate.serialNumber,
    validFrom: new Date(certificate.validFrom).toISOString(),
    validTo: validTo.toISOString(),
    expiresInDays: Math.floor((validTo.getTime() - now) / DAY_MS),
    fingerprint256: certificate.fingerprint256,
  };
}

function oneLine(name: string): string {
  return name.split('\n').filter(Boolean).join(', ');
}

function expiry(days: number): string {
  if (days < 0) return `EXPIRED ${-days} day${days === -1 ? '' : 's'} ago`;
  return `expires in ${days} day${days === 1 ? '' : 's'}`;
}

/** The verdict on the server certificate: verified, or why not and what to do. */
function verification(result: CliProbe): { verified: boolean; problems: string[] } {
  const tls = result.tls!;
  const problems: string[] = [];
  if (!tls.chainVerified) {
    const failure = describeTlsFailure(tls.chainError ?? 'UNSPECIFIED');
    problems.push(`${failure.message}${failure.kind === 'unknown-ca' ? ' — pass the CA that issued it with --ca' : failure.kind === 'expired' ? ' — renew it on the server' : ''}`);
  }
  if (tls.nameError !== undefined) problems.push(`${tls.nameError} — pass --server-name with one of its names`);
  return { verified: problems.length === 0, problems };
}

export function registerInspect(program: Command, env: CliEnvironment, exit: ExitRecord): void {
  const { output } = env;
  addConnectionOptions(
    program
      .command('inspect')
      .summary('show TLS, certificate, handshake and limits of a daemon')
      .description(
        'Show what a client needs to know to connect: TLS version and cipher, the server certificate (subject, SANs, issuer, validity, ' +
          'SHA-256 fingerprint, "expires in N days"), whether it verifies against the given CA and name, the handshake result (accepted, or ' +
          "the REJECT code and reason for the given --identifier/--version), the server's features, keepalive and frame limit. " +
          'Exit 0 when a client with these options would connect, 3 otherwise.',
      )
      .argument('<target>', 'the daemon: host:port, dns:name:port or srv:name'),
  )
    .addHelpText(
      'after',
      `
Examples:
  $ erps inspect 127.0.0.1:4000 --certs ./certs --identifier calc --version 1.0.0
  $ erps inspect 10.0.0.7:4000 --ca ca.crt --cert me.crt --key me.key --server-name api.internal --json | jq .certificate.expiresInDays
`,
    )
    .action(
      runAction(exit, output, async (command, flags: ConnectionFlags, target: string) => {
        const where = parseTarget(target);
        const result = await probe(where, connectOptions(command, flags, output));
        // Nothing to show (no server, TLS refused outright): the failure alone, as any command reports it.
        if (result.error !== undefined && result.tls === undefined && result.reject === undefined) throw result.error;
        const tlsUp = result.tls !== undefined;
        const verdict = tlsUp ? verification(result) : { verified: false, problems: [] };
        const accepted = result.welcome !== undefined;
        const ok = accepted && (flags.plain === true || verdict.verified);
        // Why the probe stopped, explained as any command would (with what to do).
        const failure = result.error !== undefined ? explain(result.error, attemptOf(target, flags)) : undefined;
        const certificate = result.tls?.certificate !== undefined ? certificateReport(result.tls.certificate) : undefined;
        if (flags.json) {
          output.out(
            toJson({
              target,
              ok,
              tls: result.tls === undefined ? null : { protocol: result.tls.protocol, cipher: result.tls.cipher.standardName || result.tls.cipher.name },
              certificate: certificate ?? null,
              verification: tlsUp ? { verified: verdict.verified, serverName: result.tls!.checkedName, problems: verdict.problems } : null,
              handshake: accepted
                ? { result: 'accepted', identifier: flags.identifier, version: flags.version, codec: flags.codec, ms: Math.round(result.handshakeMs! * 1000) / 1000 }
                : result.reject !== undefined
                  ? { result: 'rejected', code: result.reject.code, name: result.reject.name, reason: result.reject.reason, identifier: flags.identifier, version: flags.version }
                  : { result: 'failed' },
              server: result.welcome
                ? {
                    wireVersion: result.welcome.wireVersion,
                    features: result.welcome.features,
                    compression: result.welcome.compression,
                    keepaliveMs: result.welcome.keepaliveMs,
                    maxFrameBytes: result.welcome.maxFrameBytes,
                  }
                : null,
              error: failure === undefined ? null : { code: failure.code, message: failure.message, hint: failure.hint ?? null },
            }),
          );
          return ok ? ExitCode.OK : ExitCode.CONNECTION;
        }
        const rows: Array<[string, string]> = [['target', target + (flags.plain ? ' (plain TCP)' : '')]];
        if (result.tls !== undefined) {
          const { tls } = result;
          rows.push(['TLS', `${tls.protocol ?? '?'}, ${tls.cipher.standardName || tls.cipher.name}`]);
          if (certificate !== undefined) {
            rows.push(['certificate', certificate.subject]);
            rows.push(['  SANs', certificate.subjectAltNames.join(', ') || '(none)']);
            rows.push(['  issuer', certificate.issuer]);
            rows.push(['  valid', `${certificate.validFrom} → ${certificate.validTo} (${expiry(certificate.expiresInDays)})`]);
            rows.push(['  SHA-256', certificate.fingerprint256]);
            rows.push(['  serial', certificate.serialNumber]);
          }
          rows.push(['verified', verdict.verified ? `yes: signed by the given CA, valid for "${tls.checkedName}"` : `NO (for "${tls.checkedName}"): ${verdict.problems.join('; ')}`]);
        } else if (!flags.plain) {
          rows.push(['TLS', 'failed']);
        }
        if (accepted) {
          rows.push(['handshake', `accepted in ${ms(result.handshakeMs!)} (identifier "${flags.identifier}", version ${flags.version}, codec ${flags.codec})`]);
          const welcome = result.welcome!;
          rows.push(['features', welcome.compression.length > 0 ? `compression (${welcome.compression.join(', ')})` : 'none (compression off)']);
          rows.push(['keepalive', welcome.keepaliveMs > 0 ? `${welcome.keepaliveMs} ms` : 'off']);
          rows.push(['frame limit', `${welcome.maxFrameBytes} bytes (${(welcome.maxFrameBytes / (1024 * 1024)).toFixed(welcome.maxFrameBytes % (1024 * 1024) === 0 ? 0 : 2)} MiB)`]);
          rows.push(['wire version', String(welcome.wireVersion)]);
        } else if (result.reject !== undefined) {
          rows.push(['handshake', `REJECT ${result.reject.code} (${result.reject.name}): ${result.reject.reason}`]);
        } else {
          rows.push(['handshake', 'not reached']);
        }
        for (const line of table(rows)) output.out(line);
        if (failure !== undefined) {
          output.err(`erps: ${failure.message}`);
          if (failure.hint !== undefined) output.err(`  → ${failure.hint}`);
        }
        return ok ? ExitCode.OK : ExitCode.CONNECTION;
      }),
    );
}
