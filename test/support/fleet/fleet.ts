import { ChildProcess, fork } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * A fleet of real Erps daemons, each in its own process (daemon-process.js on the built dist/, mutual TLS,
 * keepaliveMs 200 by default). Patterns: 'whoami' → { id, host, port, pid, worker }, 'sum' (numbers),
 * 'slow' (sleeps N ms → { id, worker, ms }), 'count' → { id, calls, casts }, and the cast 'tick' (counted).
 * Every daemon waits `delayMs` before each call's handler (not 'count'): one slow daemon, or one that times out.
 *
 * Tests must close what they start: `await fleet.close()` (or `stopAllDaemons()` in afterAll).
 */

export interface DaemonOptions {
  /** The name 'whoami' answers with. Default `d<N>` (or `cluster<N>`). */
  id?: string;
  /** Listen address: '127.0.0.1' (default), '::1', or any of 127.0.0.0/8 (Linux answers on all of it). */
  host?: string;
  /** 0 (default) = a port from the OS. */
  port?: number;
  /** Extra delay (ms) before each call's handler; change it later with setDelay(). Default 0. */
  delayMs?: number;
  /** Server heartbeat. Default 200 ms. */
  keepaliveMs?: number;
  /** How long a drain waits for in-flight calls. Default 5000 ms. */
  drainTimeoutMs?: number;
  /** Journal every call and cast to a file (survives SIGKILL): see `journal()`. Default false. */
  journal?: boolean;
  /** More ErpsServerOptions (JSON-safe only), e.g. `{ maxInFlightPerConnection: 2 }` for BUSY refusals. */
  server?: Record<string, unknown>;
  /** node:cluster mode: a primary with this many workers, each an ErpsServer on the same host:port. */
  workers?: number;
}

/** What a daemon (or one cluster worker) has handled, from 'stats' over IPC. */
export interface DaemonStats {
  id: string;
  /** The cluster worker's id (cluster.worker.id); undefined for a plain daemon. */
  worker: number | undefined;
  pid: number;
  /** Calls started, per pattern ('count' is not counted). */
  calls: Record<string, number>;
  casts: number;
  /** Open connections and calls running, as the daemon sees them (ErpsServer.stats()). */
  connections: number;
  inFlight: number;
  delayMs: number;
}

/** One line of a daemon's journal: a call (or the cast 'tick') and the `x-call` header it carried ('-' if none). */
export interface JournalEntry {
  pattern: string;
  token: string;
}

export interface FleetDaemon {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  /** The daemon's process (in cluster mode: the primary's). */
  readonly pid: number;
  readonly child: ChildProcess;
  /** In cluster mode: the workers' ids and pids. */
  readonly workers: ReadonlyArray<{ worker: number; pid: number }>;
  /** `{ host, port }`, the shape of an ErpsClientOptions endpoint. */
  readonly endpoint: { host: string; port: number };
  /** True once the process has exited. */
  readonly exited: boolean;
  /** SIGKILL (default) or another signal; resolves once the process has exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /**
   * Graceful close (Nest app.close() → ErpsServer.close()): stop accepting, GOAWAY to every connection, in-flight
   * calls finish (up to drainTimeoutMs). Resolves with the final stats once drained and the process has exited.
   * Note: before main's 9e80476 ("Drain without losing calls that cross GOAWAY"), a connection with nothing
   * running closed right after its GOAWAY, so a call the client wrote just before reading the GOAWAY died unread
   * (ErpsConnectionLostError, though no handler ran). To drain with calls in flight on any build, wait until
   * `handled()` shows them running.
   */
  drain(): Promise<DaemonStats[]>;
  /** Changes the per-call extra delay (every worker in cluster mode). */
  setDelay(ms: number): Promise<void>;
  /** Calls handled per pattern, casts, connections (one entry per worker in cluster mode; [] once exited). */
  handled(): Promise<DaemonStats[]>;
  /** Sum of `handled()` over the workers: calls per pattern, casts. */
  totals(): Promise<{ calls: Record<string, number>; casts: number; connections: number }>;
  /** Cluster mode: SIGKILL one worker. */
  killWorker(worker: number): Promise<void>;
  /** The journal's lines so far (needs `journal: true`); readable after a SIGKILL too. */
  journal(): JournalEntry[];
}

const SCRIPT = join(__dirname, 'daemon-process.js');
const DIST = resolve(__dirname, '../../../dist/index.js');
const live = new Set<ChildProcess>();
let daemons = 0;
let journalDir: string | undefined;

process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

type Reply = { type: 'reply'; id: number; error?: string; stats?: DaemonStats; workers?: DaemonStats[] };
type Ready = { type: 'ready'; port: number; pid: number; workers?: Array<{ worker: number; pid: number }> };

/** Starts one daemon process; resolves once it listens. Rejects (with the child's reason) if it cannot start. */
export function startDaemon(certDir: string, options: DaemonOptions = {}): Promise<FleetDaemon> {
  if (!existsSync(DIST)) throw new Error(`fleet daemons run on the built package: ${DIST} is missing (npm run build)`);
  const n = ++daemons;
  const id = options.id ?? (options.workers ? `cluster${n}` : `d${n}`);
  const host = options.host ?? '127.0.0.1';
  let journalFile: string | undefined;
  if (options.journal) {
    journalDir ??= mkdtempSync(join(tmpdir(), 'erps-fleet-journal-'));
    journalFile = join(journalDir, `${id}-${n}.log`);
  }
  const config = {
    id,
    host,
    port: options.port ?? 0,
    certDir,
    delayMs: options.delayMs ?? 0,
    keepaliveMs: options.keepaliveMs ?? 200,
    drainTimeoutMs: options.drainTimeoutMs ?? 5000,
    journal: journalFile,
    server: options.server,
    workers: options.workers ?? 0,
  };
  const child = fork(SCRIPT, [JSON.stringify(config)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  live.add(child);
  let nextId = 1;
  const waiting = new Map<number, { resolve(reply: Reply): void; reject(err: Error): void }>();
  let exited = false;
  const exit = new Promise<void>((done) =>
    child.once('exit', () => {
      exited = true;
      live.delete(child);
      for (const [, waiter] of waiting) waiter.reject(new Error(`daemon ${id} exited`));
      waiting.clear();
      done();
    }),
  );
  const request = (body: Record<string, unknown>, timeoutMs = 10_000): Promise<Reply> => {
    if (exited) return Promise.reject(new Error(`daemon ${id} has exited`));
    const requestId = nextId++;
    return new Promise<Reply>((resolveReply, reject) => {
      const timer = setTimeout(() => {
        waiting.delete(requestId);
        reject(new Error(`daemon ${id}: no answer to ${JSON.stringify(body)} within ${timeoutMs} ms`));
      }, timeoutMs);
      waiting.set(requestId, {
        resolve: (reply) => {
          clearTimeout(timer);
          if (reply.error !== undefined) reject(new Error(`daemon ${id}: ${reply.error}`));
          else resolveReply(reply);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      child.send({ ...body, id: requestId });
    });
  };
  const statsOf = (reply: Reply): DaemonStats[] => reply.workers ?? (reply.stats ? [reply.stats] : []);

  return new Promise<FleetDaemon>((resolveDaemon, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`daemon ${id} did not start within 15 s`));
    }, 15_000);
    const early = (code: number | null, signal: NodeJS.Signals | null): void => {
      clearTimeout(timer);
      reject(new Error(`daemon ${id} exited before listening (${code ?? signal})`));
    };
    child.once('exit', early);
    child.on('message', (raw) => {
      const msg = raw as Reply | Ready | { type: 'failed'; error: string };
      if (msg.type === 'failed') {
        clearTimeout(timer);
        reject(new Error(`daemon ${id} on ${host}:${config.port}: ${msg.error}`));
        return;
      }
      if (msg.type === 'reply') {
        const waiter = waiting.get(msg.id);
        waiting.delete(msg.id);
        waiter?.resolve(msg);
        return;
      }
      if (msg.type !== 'ready') return;
      clearTimeout(timer);
      const daemon: FleetDaemon = {
        id,
        host,
        port: msg.port,
        pid: msg.pid,
        child,
        workers: msg.workers ?? [],
        endpoint: { host, port: msg.port },
        get exited() {
          return exited;
        },
        kill: (signal = 'SIGKILL') => {
          if (!exited) child.kill(signal);
          return exit;
        },
        drain: async () => {
          const reply = await request({ cmd: 'drain' }, (options.drainTimeoutMs ?? 5000) + 10_000);
          await exit;
          return statsOf(reply);
        },
        setDelay: async (ms) => {
          await request({ cmd: 'setDelay', ms });
        },
        handled: async () => (exited ? [] : statsOf(await request({ cmd: 'stats' }))),
        totals: async () => {
          const calls: Record<string, number> = {};
          let casts = 0;
          let connections = 0;
          for (const stats of await daemon.handled()) {
            for (const [pattern, count] of Object.entries(stats.calls)) calls[pattern] = (calls[pattern] ?? 0) + count;
            casts += stats.casts;
            connections += stats.connections;
          }
          return { calls, casts, connections };
        },
        killWorker: async (worker) => {
          await request({ cmd: 'killWorker', worker });
        },
        journal: () => {
          if (journalFile === undefined) throw new Error(`daemon ${id} was started without journal: true`);
          if (!existsSync(journalFile)) return [];
          return readFileSync(journalFile, 'utf8')
            .split('\n')
            .filter((line) => line.length > 0)
            .map((line) => {
              const [pattern = '', token = '-'] = line.split(' ');
              return { pattern, token };
            });
        },
      };
      child.removeListener('exit', early);
      resolveDaemon(daemon);
    });
  });
}

export interface FleetOptions extends Omit<DaemonOptions, 'id' | 'host' | 'port' | 'delayMs'> {
  /** Listen addresses, one per daemon (cycled). Default all '127.0.0.1'. */
  hosts?: string[];
  /**
   * Every daemon on the same port (needs distinct hosts: a DNS A-record fleet, e.g. 127.0.0.2, .3, .4). The first
   * daemon takes a port from the OS, the others are started on it (retried on a fresh port if one is taken).
   */
  samePort?: boolean;
  /** Per-daemon extra delay (ms), by index. */
  delays?: number[];
  /** Ids, by index. Default d1, d2... unique per test file. */
  ids?: string[];
}

export interface Fleet {
  readonly daemons: FleetDaemon[];
  /** The live daemons' `{ host, port }` (for `endpoints: [...]`). */
  endpoints(): Array<{ host: string; port: number }>;
  /** The daemon with this id. */
  byId(id: string): FleetDaemon;
  /** Starts one more daemon (on the fleet's port when samePort), adds it to `daemons`. */
  add(options?: DaemonOptions): Promise<FleetDaemon>;
  /** Calls handled per daemon id: pattern → count (0 for exited daemons; use the journal for those). */
  handled(pattern: string): Promise<Record<string, number>>;
  /** Kills every daemon still running. */
  close(): Promise<void>;
}

/** Starts `n` daemons (in parallel unless samePort). */
export async function startFleet(n: number, certDir: string, options: FleetOptions = {}): Promise<Fleet> {
  const { hosts, samePort, delays, ids, ...common } = options;
  const optionsFor = (i: number, port: number): DaemonOptions => ({
    ...common,
    id: ids?.[i],
    host: hosts && hosts.length > 0 ? hosts[i % hosts.length] : undefined,
    port,
    delayMs: delays?.[i],
  });
  const daemons: FleetDaemon[] = [];
  let fleetPort = 0;
  try {
    if (samePort) {
      for (let attempt = 1; ; attempt++) {
        const first = await startDaemon(certDir, optionsFor(0, 0));
        daemons.push(first);
        fleetPort = first.port;
        try {
          for (let i = 1; i < n; i++) daemons.push(await startDaemon(certDir, optionsFor(i, fleetPort)));
          break;
        } catch (err) {
          if (attempt >= 3 || !String(err).includes('EADDRINUSE')) throw err;
          await Promise.all(daemons.splice(0).map((d) => d.kill()));
        }
      }
    } else {
      daemons.push(...(await Promise.all(Array.from({ length: n }, (_, i) => startDaemon(certDir, optionsFor(i, 0))))));
    }
  } catch (err) {
    await Promise.all(daemons.map((d) => d.kill()));
    throw err;
  }
  const fleet: Fleet = {
    daemons,
    endpoints: () => daemons.filter((d) => !d.exited).map((d) => d.endpoint),
    byId: (id) => {
      const daemon = daemons.find((d) => d.id === id);
      if (daemon === undefined) throw new Error(`no daemon ${id} in the fleet (${daemons.map((d) => d.id).join(', ')})`);
      return daemon;
    },
    add: async (extra = {}) => {
      const daemon = await startDaemon(certDir, { ...common, port: samePort ? fleetPort : 0, ...extra });
      daemons.push(daemon);
      return daemon;
    },
    handled: async (pattern) => {
      const out: Record<string, number> = {};
      for (const daemon of daemons) {
        const calls: Record<string, number> = await daemon.totals().then(
          (t) => t.calls,
          () => ({}),
        );
        out[daemon.id] = calls[pattern] ?? 0;
      }
      return out;
    },
    close: async () => {
      await Promise.all(daemons.map((d) => d.kill()));
    },
  };
  return fleet;
}

/** Starts a node:cluster daemon: a primary and `workers` workers sharing one port. */
export function startCluster(certDir: string, options: DaemonOptions & { workers: number }): Promise<FleetDaemon> {
  return startDaemon(certDir, options);
}

/** Kills every daemon this test file started and did not stop (for afterAll). */
export async function stopAllDaemons(): Promise<void> {
  await Promise.all(
    [...live].map(
      (child) =>
        new Promise<void>((done) => {
          if (child.exitCode !== null || child.signalCode !== null) return done();
          child.once('exit', () => done());
          child.kill('SIGKILL');
        }),
    ),
  );
}

/** Which daemons journaled each token (a call that reached a handler). */
export function journaledBy(daemons: FleetDaemon[], pattern: string): Map<string, string[]> {
  const by = new Map<string, string[]>();
  for (const daemon of daemons) {
    for (const entry of daemon.journal().filter((e: JournalEntry) => e.pattern === pattern)) {
      by.set(entry.token, [...(by.get(entry.token) ?? []), daemon.id]);
    }
  }
  return by;
}
