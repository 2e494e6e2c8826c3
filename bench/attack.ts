/**
 * `npm run attack` (issue 10: no single peer can exhaust the daemon's memory, CPU or file descriptors).
 *
 * The daemon runs in its own process (bench/attack-daemon.ts, forked with IPC); a second one with a 64 MiB frame
 * limit shows the decoder's element budget. A good client calls each of them all along. Every row is one abuse;
 * around it the daemon's RSS (every ~100 ms), open fds, connections, event-loop delay and disconnect reasons are
 * measured. Prints one line per row as it goes, then a summary table and one JSON line; exits 1 if any row
 * broke, any good call failed or a daemon died. Loopback only; every loop bounded; a watchdog ends the run.
 * ATTACK_ONLY=text[,text…] runs only the rows whose name contains one of them.
 */
import 'reflect-metadata';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCertificateAuthority, createCrl, issueCertificate, Issued } from 'nestjs-erps/testing';
import { DaemonTlsFiles, MIB } from './attack-common.js';
import { Daemon, DAEMON_HEAP_MIB } from './attack-daemon-handle.js';
import { GoodClient } from './attack-good-client.js';
import { AttackEnv, fdCell, MAX_STALL_MS, Party, RowResult, RowRunner, stallCell } from './attack-harness.js';
import { classicRows } from './attack-rows-classic.js';
import { codecRows } from './attack-rows-codec.js';
import { slowRows } from './attack-rows-slow.js';
import { tlsRows } from './attack-rows-tls.js';

const WATCHDOG_MS = 210_000;
/** Rows not started by then are reported as not run (broke), so that the run ends with its table in ~3 minutes. */
const ROWS_BUDGET_MS = 150_000;
const startedAt = Date.now();
const daemons: Daemon[] = [];

/** Budgets of the attack daemons: small, so that deadlines pass quickly. Unset options keep the library default. */
const MAIN_OPTIONS = {
  keepaliveMs: 1000,
  maxMissedPings: 3,
  handshakeTimeoutMs: 2000,
  frameTimeoutMs: 2000,
  slowConsumerTimeoutMs: 3000,
  maxWriteBufferBytes: 4 * MIB,
  maxPartialFrameBytes: 32 * MIB,
  maxConnections: 40,
  maxInFlightPerConnection: 20,
  maxDepth: 32,
  compression: { threshold: 1024 },
};
const WIDE_OPTIONS = { ...MAIN_OPTIONS, maxFrameBytes: 64 * MIB, maxPartialFrameBytes: 128 * MIB };

interface Certificates {
  env: Omit<AttackEnv, 'main'>;
  serverTls: DaemonTlsFiles;
}

async function makeCertificates(dir: string): Promise<Certificates> {
  // One CA for everything, so its CRL covers every certificate it signed (with a CRL, OpenSSL wants one per CA).
  const ca = await createCertificateAuthority('attack CA');
  const untrustedCa = await createCertificateAuthority('untrusted CA');
  const caFile = join(dir, 'ca.crt');
  writeFileSync(caFile, ca.cert);
  const party = (name: string, issued: Issued): Party => {
    const files = { caFile, certFile: join(dir, `${name}.crt`), keyFile: join(dir, `${name}.key`) };
    writeFileSync(files.certFile, issued.cert);
    writeFileSync(files.keyFile, issued.key);
    return { files, pem: { ca: Buffer.from(ca.cert), cert: Buffer.from(issued.cert), key: Buffer.from(issued.key) } };
  };
  const client = async (name: string): Promise<Party> => party(name, await issueCertificate(ca, { cn: name }));
  const revoked = await issueCertificate(ca, { cn: 'revoked' });
  const crlFile = join(dir, 'ca.crl');
  writeFileSync(crlFile, await createCrl(ca, [revoked.serialNumber]));
  const server = party('server', await issueCertificate(ca, { cn: 'localhost', kind: 'server', dns: ['localhost'], ips: ['127.0.0.1'] }));
  return {
    serverTls: { ...server.files, crlFile },
    env: {
      ca: Buffer.from(ca.cert),
      alice: await client('alice'),
      bob: await client('bob'),
      carol: await client('carol'),
      slow: await client('slow'),
      revoked: party('revoked', revoked),
      untrusted: party('untrusted', await issueCertificate(untrustedCa, { cn: 'mallory' })),
    },
  };
}

function printConfig(list: Daemon[]): void {
  console.log('Attack configuration');
  for (const d of list) {
    const c = d.config;
    console.log(`  daemon "${c.name}" (pid ${d.pid}, port ${c.port}, V8 heap cap ${DAEMON_HEAP_MIB} MiB): ${JSON.stringify(c.options)}`);
    const frames = `maxFrameBytes ${c.maxFrameBytes} (${(c.maxFrameBytes / MIB).toFixed(0)} MiB)`;
    console.log(`    in effect: ${frames}, keepaliveMs ${c.keepaliveMs}, maxMissedPings ${c.maxMissedPings}`);
  }
  console.log('  library defaults assumed where unset: maxFrameBytes 4 MiB, maxElements 1,000,000');
  console.log("  daemons run with --expose-gc (a full GC before each row's baseline) and MALLOC_MMAP_THRESHOLD_=16384 (freed buffers leave RSS)");
  console.log(`  a row breaks on: an attempt not stopped as required, RSS growth over its limit, an event-loop stall over ${MAX_STALL_MS} ms,`);
  console.log('  fds or connections above the baseline after the row, a good call failing, an attacker-only handler running, a daemon death');
  console.log('');
}

function printSummary(rows: RowResult[], goods: GoodClient[], alive: boolean): void {
  console.log('');
  const columns = ['attack', 'daemon', 'attempts', 'stopped', 'outcome', 'how it was stopped'];
  columns.push('RSS growth MiB (limit)', 'fds after / baseline', 'max stall ms', 'good failed / calls');
  console.log(`| ${columns.join(' | ')} |`);
  console.log('|---|---|---:|---:|---|---|---:|---:|---:|---:|');
  for (const r of rows) {
    const how = r.how.replace(/\|/g, '/');
    const outcome = r.outcome === 'held' ? 'held' : '**broke**';
    const rss = `${r.rssGrowthMiB} (${r.maxRssGrowthMiB})`;
    const cells = [r.attack, r.daemon, r.attempts, r.stopped, outcome, how, rss, fdCell(r), stallCell(r), `${r.goodFailed} / ${r.goodCalls}`];
    console.log(`| ${cells.join(' | ')} |`);
  }
  console.log('');
  const made = goods.reduce((n, g) => n + g.made, 0);
  const failed = goods.reduce((n, g) => n + g.failed, 0);
  const held = rows.filter((r) => r.outcome === 'held').length;
  const deaths = daemons.reduce((n, d) => n + d.deaths, 0);
  console.log(`rows held ${held} of ${rows.length}; good calls ${made}, failed ${failed}; daemon deaths ${deaths}; daemons alive at the end: ${alive ? 'yes' : 'NO'}`);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'erps-attack-'));
  try {
    const { env: parties, serverTls } = await makeCertificates(dir);
    const main = await Daemon.start({ name: 'main', port: 0, tls: serverTls, options: MAIN_OPTIONS });
    daemons.push(main);
    const wide = await Daemon.start({ name: 'wide', port: 0, tls: serverTls, options: WIDE_OPTIONS });
    daemons.push(wide);
    printConfig(daemons);
    const env: AttackEnv = { ...parties, main };
    const goods = [new GoodClient(main.port, env.alice.files), new GoodClient(wide.port, env.alice.files)];
    await Promise.all(goods.map((g) => g.start()));

    const runner = new RowRunner(() => goods);
    // ATTACK_ONLY=a,b runs only the rows whose name contains a or b (a development aid; the verdict covers those rows).
    const only = process.env.ATTACK_ONLY?.toLowerCase().split(',');
    const wanted = (name: string): boolean => only === undefined || only.some((part) => name.toLowerCase().includes(part));
    const rows = [...classicRows(env), ...slowRows(env), ...tlsRows(env), ...codecRows(env, wide)].filter((r) => wanted(r.attack));
    for (const row of rows) {
      if (Date.now() - startedAt < ROWS_BUDGET_MS) await runner.run(row);
      else runner.notRun(row, `not run: the run's ${ROWS_BUDGET_MS / 1000} s budget was spent`);
    }

    await Promise.all(goods.map((g) => g.stop()));
    const alive = (await Promise.all(daemons.map((d) => d.sample()))).every((s) => s !== undefined);
    const results = runner.results;
    printSummary(results, goods, alive);
    const goodCallsFailed = goods.reduce((n, g) => n + g.failed, 0);
    const died = results.some((r) => r.daemonDied);
    const ok = results.every((r) => r.outcome === 'held') && goodCallsFailed === 0 && !died && alive;
    const config = Object.fromEntries(daemons.map((d) => [d.config.name, d.config]));
    const goodCallsMade = goods.reduce((n, g) => n + g.made, 0);
    console.log(JSON.stringify({ attack: 'nestjs-erps', ok, goodCallsMade, goodCallsFailed, daemonDied: died, config, rows: results }));
    await Promise.all(daemons.map((d) => d.stop()));
    process.exitCode = ok ? 0 : 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const watchdog = setTimeout(() => {
  console.error(`attack: watchdog fired after ${WATCHDOG_MS / 1000} s`);
  daemons.forEach((d) => d.kill());
  process.exit(1);
}, WATCHDOG_MS);
watchdog.unref();
main().then(
  () => process.exit(),
  (err: unknown) => {
    console.error(err);
    daemons.forEach((d) => d.kill());
    process.exit(1);
  },
);
