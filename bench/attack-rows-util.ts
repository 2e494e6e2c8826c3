/**
 * Small helpers shared by the attack rows: daemon options, opening raw peers, waiting for the daemon to close
 * them, and describing what it said.
 */
import { randomBytes } from 'node:crypto';
import { DaemonEvent, sleep } from './attack-common.js';
import type { Daemon } from './attack-daemon-handle.js';
import { AttackEnv, AttackOutcome, codeCounts, RowContext } from './attack-harness.js';
import { RawPeer } from './attack-wire.js';

export function option(daemon: Daemon, name: string, fallback: number): number {
  const value = daemon.config.options[name];
  return typeof value === 'number' ? value : fallback;
}

/** Polls the daemon until each port has a disconnect event, or `capMs` passes. */
export async function waitForDisconnects(ctx: RowContext, ports: Array<number | undefined>, capMs: number): Promise<void> {
  const deadline = Date.now() + capMs;
  while (Date.now() < deadline) {
    const events = await ctx.peek();
    if (ports.every((port) => events.some((e) => e.kind === 'disconnect' && e.port === port))) return;
    await sleep(200);
  }
}

export function short(message: string): string {
  return message.length > 70 ? `${message.slice(0, 67)}...` : message;
}

export function forPorts(events: DaemonEvent[], peers: RawPeer[]): DaemonEvent[] {
  const ports = new Set(peers.map((p) => p.localPort));
  return events.filter((e) => ports.has(e.port));
}

/** Opens `count` raw TLS peers at once (those that fail to connect are left out). */
export async function openPeers(env: AttackEnv, count: number): Promise<RawPeer[]> {
  const peers = await Promise.all(Array.from({ length: count }, () => RawPeer.open(env.main.port, env.bob.pem).catch(() => undefined)));
  return peers.filter((p): p is RawPeer => p !== undefined);
}

/** Writes 16 random bytes to every open peer every 100 ms until the returned function is called. */
export function trickle(peers: RawPeer[]): () => void {
  const timer = setInterval(() => peers.forEach((p) => p.closed || p.write(randomBytes(16))), 100);
  return () => clearInterval(timer);
}

/** Waits for the peers to close (up to `capMs`); counts those closed within `withinMs` of `startedAt`. */
export async function closedWithin(ctx: RowContext, peers: RawPeer[], attempts: number, startedAt: number, withinMs: number, capMs: number): Promise<AttackOutcome> {
  await Promise.all(peers.map((p) => p.waitClose(capMs)));
  const gaveUpAt = Date.now();
  const stopped = peers.filter((p) => p.closed && p.closedAt - startedAt <= withinMs).length;
  const slowest = Math.max(...peers.map((p) => (p.closed ? p.closedAt : Date.now()) - startedAt));
  const open = peers.filter((p) => !p.closed).length;
  peers.forEach((p) => p.destroy());
  // What the daemon said about these connections before the attacker closed the ones still open.
  const events = forPorts(await ctx.events(), peers).filter((e) => e.at < gaveUpAt);
  const how = `${codeCounts(events)}; last closed after ${(slowest / 1000).toFixed(1)} s${open > 0 ? `, ${open} still open` : ''}`;
  return { attempts, stopped, how };
}
