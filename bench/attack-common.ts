/**
 * Shared by the attacker (bench/attack.ts and its rows) and the attack daemon (bench/attack-daemon.ts): the
 * daemon's command line, the IPC messages between the two processes, and a few constants.
 */

export const MIB = 1024 * 1024;

/** What every attack daemon answers in HELLO. */
export const IDENTIFIER = 'target';
export const CLIENT_VERSION = '1.0.0';

export interface DaemonTlsFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
  crlFile: string;
}

/** argv[2] of the daemon, as JSON. `options` are ErpsServer options (JSON-safe ones; authorize is built in). */
export interface DaemonArgs {
  name: string;
  port: number;
  tls: DaemonTlsFiles;
  options: Record<string, unknown>;
}

/** Patterns whose handlers only attackers reach: any run of one is an abuse that got through. */
export const ATTACKER_ONLY_PATTERNS = ['probe', 'admin.secret'] as const;

/** One numbers sample of the daemon. */
export interface DaemonSample {
  rss: number;
  fds: number;
  connections: number;
  inFlight: number;
  /** Handler runs per pattern since the daemon started. */
  handlers: Record<string, number>;
}

/** Something the daemon saw end a connection (or refuse a TLS handshake). */
export interface DaemonEvent {
  kind: 'disconnect' | 'tlsClientError' | 'handshakeRejected';
  /** Remote port of the connection (the attacker's local port), when known. */
  port: number | undefined;
  /** The error's `code` (ERPS_…, ERR_…), or its name when it has none; 'clean' for a close without a reason. */
  code: string;
  message: string;
  /** Date.now() when the event fired, and when the session was created (TLS handshake done). */
  at: number;
  connectedAt: number | undefined;
}

/** What the daemon reports when a row ends. */
export interface RowReport {
  /** Largest event-loop delay (perf_hooks monitorEventLoopDelay) since the row started, in ms. */
  eventLoopMaxMs: number;
  events: DaemonEvent[];
  /** server.broadcast() in the row: how many broadcasts, and how many deliveries they reported. */
  broadcasts: { calls: number; delivered: number };
}

export interface DaemonConfig {
  name: string;
  port: number;
  /** Options as given to ErpsServer, and the frame limit it actually applies (the WELCOME value). */
  options: Record<string, unknown>;
  maxFrameBytes: number;
  keepaliveMs: number;
  maxMissedPings: number;
}

export type DaemonRequest =
  | { id: number; cmd: 'sample' }
  | { id: number; cmd: 'rowStart' }
  | { id: number; cmd: 'rowEnd' }
  | { id: number; cmd: 'events' }
  | { id: number; cmd: 'broadcast'; cn: string; bytes: number; everyMs: number; forMs: number }
  | { id: number; cmd: 'stop' };

export type DaemonMessage = { type: 'ready'; config: DaemonConfig } | { type: 'failed'; error: string } | { type: 'reply'; id: number; sample?: DaemonSample; report?: RowReport };

export function describe(err: unknown): string {
  if (err instanceof Error) return `${(err as { code?: string }).code ?? err.name}: ${err.message}`;
  return String(err);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
