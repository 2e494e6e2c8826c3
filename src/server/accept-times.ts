import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

/**
 * When each TLS connection was accepted, so that HELLO gets only what TLS left of handshakeTimeoutMs: one
 * deadline from the TCP accept to WELCOME, not a TLS timeout followed by a full HELLO timeout.
 *
 * A tls.Server reports the raw socket on 'connection' and later, on 'secureConnection', a TLSSocket over the
 * same TCP connection; both report the same address pair, which is the key. An entry older than the deadline
 * has no time left to give, so it is dropped: connections that never finish TLS cannot grow the map.
 */
export class AcceptTimes {
  private readonly acceptedAt = new Map<string, number>();

  constructor(private readonly deadlineMs: number) {}

  /** Listener for the tls.Server's 'connection' event. */
  readonly accepted = (socket: Socket): void => {
    const now = performance.now();
    for (const [key, at] of this.acceptedAt) {
      if (now - at < this.deadlineMs) break; // insertion order is age order
      this.acceptedAt.delete(key);
    }
    const key = addressPair(socket);
    if (key === undefined) return;
    this.acceptedAt.delete(key);
    this.acceptedAt.set(key, now);
  };

  /** Milliseconds left of the deadline for a connection that just finished TLS (all of it if its accept was not seen). */
  msLeft(socket: Socket): number {
    const key = addressPair(socket);
    const at = key === undefined ? undefined : this.acceptedAt.get(key);
    if (at === undefined) return this.deadlineMs;
    this.acceptedAt.delete(key!);
    return Math.max(0, this.deadlineMs - (performance.now() - at));
  }
}

function addressPair(socket: Socket): string | undefined {
  const { remoteAddress, remotePort, localAddress, localPort } = socket;
  if (remoteAddress === undefined || remotePort === undefined) return undefined;
  return `${remoteAddress}|${remotePort}|${localAddress}|${localPort}`;
}
