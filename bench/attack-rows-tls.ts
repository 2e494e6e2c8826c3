/**
 * TLS-level and handshake-order rows: client-initiated renegotiation, a TLS 1.2 cipher scan, and frames
 * other than HELLO sent first. All against the main daemon.
 */
import * as tls from 'node:tls';
import { describe } from './attack-common.js';
import { AttackEnv, RowSpec } from './attack-harness.js';
import { closedWithin, openPeers, option } from './attack-rows-util.js';
import { frame, FrameType, messagePrefix, RawPeer } from './attack-wire.js';

/** Suites a TLS 1.2 daemon may accept: forward secrecy and an AEAD. */
const STRONG_TLS12 = /^ECDHE-(ECDSA|RSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/;

function count(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

function list(counts: Map<string, number>): string {
  return [...counts].map(([k, n]) => `${k} ×${n}`).join(', ');
}

/** One renegotiation attempt: null when it completed, else why it did not. */
function renegotiate(peer: RawPeer): Promise<string | null> {
  return new Promise((resolve) => {
    // A renegotiation on loopback takes milliseconds; a daemon that refuses it may just never answer.
    const timer = setTimeout(() => resolve('no answer in 1.2 s'), 1200);
    const done = (result: string | null): void => {
      clearTimeout(timer);
      resolve(result);
    };
    peer.socket.once('close', () => done('closed'));
    const started = peer.socket.renegotiate({ rejectUnauthorized: true }, (err) => done(err ? ((err as { code?: string }).code ?? err.message) : null));
    if (!started) done('renegotiate() refused locally');
  });
}

function renegotiationRow(env: AttackEnv): RowSpec {
  const total = 300;
  // Fewer at once than maxConnections (40, one taken by the good client), so that none is turned away as one too many.
  const wave = 38;
  const perConnection = 5;
  return {
    attack: `TLS 1.2 renegotiation (${total} connections, up to ${perConnection} each)`,
    daemon: env.main,
    expected: 'refused; fds and stats().connections back to baseline',
    run: async (ctx) => {
      const outcomes = new Map<string, number>();
      let completed = 0;
      let refusedFirst = 0;
      const one = async (): Promise<void> => {
        let peer: RawPeer;
        try {
          peer = await RawPeer.open(env.main.port, env.bob.pem, { maxVersion: 'TLSv1.2' });
        } catch (err) {
          count(outcomes, `TLS failed: ${describe(err)}`);
          refusedFirst++;
          return;
        }
        for (let i = 0; i < perConnection; i++) {
          const failure = await renegotiate(peer);
          if (failure === null) {
            completed++;
            continue;
          }
          if (i === 0) refusedFirst++;
          count(outcomes, `refused after ${i}: ${failure}`);
          break;
        }
        peer.destroy();
      };
      for (let started = 0; started < total; started += wave) await Promise.all(Array.from({ length: Math.min(wave, total - started) }, one));
      await ctx.events();
      const problems = completed > 0 ? [`${completed} renegotiations completed`] : [];
      const how = [`${completed} of up to ${total * perConnection} renegotiations completed`, list(outcomes)].filter(Boolean).join('; ');
      return { attempts: total, stopped: refusedFirst, how, problems };
    },
  };
}

function cipherScanRow(env: AttackEnv): RowSpec {
  return {
    attack: 'TLS 1.2 cipher scan (each of tls.getCiphers() alone)',
    daemon: env.main,
    expected: 'only ECDHE with AES-GCM or ChaCha20-Poly1305 accepted',
    run: async (ctx) => {
      const suites = tls
        .getCiphers()
        .filter((c) => !c.startsWith('tls_'))
        .map((c) => c.toUpperCase());
      const accepted: string[] = [];
      const tryOne = async (suite: string): Promise<void> => {
        try {
          const peer = await RawPeer.open(env.main.port, env.bob.pem, { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', ciphers: suite }, 3000);
          accepted.push(peer.socket.getCipher().name);
          peer.destroy();
        } catch {
          // refused by the daemon, or not offered by this OpenSSL client
        }
      };
      for (let i = 0; i < suites.length; i += 4) await Promise.all(suites.slice(i, i + 4).map(tryOne));
      await ctx.events();
      const weak = accepted.filter((name) => !STRONG_TLS12.test(name));
      const how = `${suites.length} tried; accepted: ${accepted.sort().join(', ') || 'none'}`;
      return { attempts: suites.length, stopped: suites.length - weak.length, how, problems: weak.length > 0 ? [`weak suites accepted: ${weak.join(', ')}`] : [] };
    },
  };
}

/** `attempts` connections that send `first` instead of HELLO; held = closed within 1 s (a protocol error). */
function beforeHelloRow(env: AttackEnv, label: string, first: Buffer): RowSpec {
  const attempts = 10;
  return {
    attack: `${label} before HELLO`,
    daemon: env.main,
    expected: 'ERPS_PROTOCOL: closed at once, not left to handshakeTimeoutMs',
    run: async (ctx) => {
      const peers = await openPeers(env, attempts);
      const startedAt = Date.now();
      peers.forEach((p) => p.write(first));
      return closedWithin(ctx, peers, attempts, startedAt, 1000, option(env.main, 'handshakeTimeoutMs', 10_000) + 1500);
    },
  };
}

export function tlsRows(env: AttackEnv): RowSpec[] {
  const body = Buffer.concat([messagePrefix('probe'), Buffer.from([0xc0])]);
  return [
    renegotiationRow(env),
    cipherScanRow(env),
    beforeHelloRow(env, 'CANCEL', frame(FrameType.CANCEL, 0, 1)),
    beforeHelloRow(env, 'CALL', frame(FrameType.CALL, 0, 1, body)),
    beforeHelloRow(env, 'CAST', frame(FrameType.CAST, 0, 0, body)),
  ];
}
