/**
 * `npm run attack`: starts an Erps daemon and a good client that keeps calling, runs every abuse the
 * hardening work defends against, and prints a table: attempts, rejected, good calls made and failed, daemon
 * alive. Exits 1 if any abuse got through, any good call failed, or the daemon died. Loopback only; bounded.
 */
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { deflateRawSync } from 'node:zlib';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import { ErpsClient, ErpsServer } from 'nestjs-erps';
import { createCertificateAuthority, createCrl, issueCertificate, Issued, TlsFiles } from 'nestjs-erps/testing';

const ran = { handlers: 0 };

@Controller()
class TargetController {
  @MessagePattern('sum')
  sum(@Payload() xs: number[]): number {
    ran.handlers++;
    return xs.reduce((a, b) => a + b, 0);
  }

  @MessagePattern('slow')
  async slow(@Payload() ms: number): Promise<string> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return 'done';
  }

  @MessagePattern('admin.secret')
  secret(): string {
    ran.handlers++;
    return 'the secret';
  }
}

@Module({ controllers: [TargetController] })
class TargetModule {}

interface Row {
  attack: string;
  attempts: number;
  rejected: number;
  reason: string;
}

const HELLO_FIELDS = { identifier: 'target', version: '1.0.0' };

/** Frames built by hand, the way an attacker would (see docs/PROTOCOL.md). */
function helloFrame(features = 0): Buffer {
  const id = Buffer.from(HELLO_FIELDS.identifier);
  const ver = Buffer.from(HELLO_FIELDS.version);
  const body = Buffer.concat([Buffer.from('ERPS'), Buffer.from([1, 0, 0, features, id.length]), id, Buffer.from([ver.length]), ver]);
  return frame(0x01, 0, 0, body);
}

function frame(type: number, flags: number, id: number, body: Buffer): Buffer {
  const header = Buffer.alloc(10);
  header.writeUInt32BE(body.length, 0);
  header[4] = type;
  header[5] = flags;
  header.writeUInt32BE(id, 6);
  return Buffer.concat([header, body]);
}

function callBody(pattern: string, payload: Buffer): Buffer {
  const p = Buffer.from(pattern);
  const prefix = Buffer.alloc(2 + p.length + 4);
  prefix.writeUInt16BE(p.length, 0);
  p.copy(prefix, 2);
  return Buffer.concat([prefix, payload]);
}

/** Opens a raw TLS socket with `identity`, writes `bytes` after the handshake; resolves true if the server closed it. */
function rawTls(port: number, identity: TlsFiles, bytes: Buffer[], waitMs = 3000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: readFileSync(identity.caFile), cert: readFileSync(identity.certFile), key: readFileSync(identity.keyFile) });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, waitMs);
    socket.on('error', () => undefined);
    socket.resume();
    socket.once('secureConnect', () => bytes.forEach((b) => socket.write(b)));
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

function rawTcp(port: number, bytes: Buffer | undefined, waitMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, waitMs);
    socket.on('error', () => undefined);
    socket.resume();
    socket.once('connect', () => bytes && socket.write(bytes));
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function count(attempts: number, one: (i: number) => Promise<boolean>): Promise<number> {
  const results = await Promise.all(Array.from({ length: attempts }, (_, i) => one(i)));
  return results.filter(Boolean).length;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'erps-attack-'));
  // One CA for everything, so its CRL covers every certificate it signed (with a CRL, OpenSSL wants one per CA).
  const ca = await createCertificateAuthority('attack CA');
  const untrustedCa = await createCertificateAuthority('untrusted CA');
  const caFile = join(dir, 'ca.crt');
  writeFileSync(caFile, ca.cert);
  const files = async (name: string, issued: Promise<Issued>): Promise<TlsFiles> => {
    const { cert, key } = await issued;
    const out = { caFile, certFile: join(dir, `${name}.crt`), keyFile: join(dir, `${name}.key`) };
    writeFileSync(out.certFile, cert);
    writeFileSync(out.keyFile, key);
    return out;
  };
  const revoked = await issueCertificate(ca, { cn: 'revoked' });
  const certs = {
    caFile,
    server: await files('server', issueCertificate(ca, { cn: 'localhost', kind: 'server', dns: ['localhost'], ips: ['127.0.0.1'] })),
    clients: { alice: await files('alice', issueCertificate(ca, { cn: 'alice' })), bob: await files('bob', issueCertificate(ca, { cn: 'bob' })) },
    untrustedClient: await files('untrusted', issueCertificate(untrustedCa, { cn: 'mallory' })),
  };
  const revokedFiles = await files('revoked', Promise.resolve(revoked));
  const crlFile = join(dir, 'ca.crl');
  writeFileSync(crlFile, await createCrl(ca, [revoked.serialNumber]));

  const server = new ErpsServer({
    host: '127.0.0.1',
    port: 0,
    tls: { ...certs.server, crlFile },
    identifier: HELLO_FIELDS.identifier,
    versions: '^1.0.0',
    maxFrameBytes: 1024 * 1024,
    maxConnections: 40,
    maxInFlightPerConnection: 20,
    handshakeTimeoutMs: 500,
    maxDepth: 32,
    compression: { threshold: 1024 },
    authorize: ({ peer, pattern }) => !pattern.startsWith('admin.') || peer?.cn === 'bob',
  });
  const app = await NestFactory.createMicroservice(TargetModule, { strategy: server, logger: false });
  await app.listen();
  const port = server.address().port;
  const clientOptions = { host: '127.0.0.1', port, identifier: HELLO_FIELDS.identifier, version: HELLO_FIELDS.version };

  // The good client calls all along.
  const good = new ErpsClient({ ...clientOptions, tls: certs.clients.alice });
  await good.connect();
  const goodStats = { made: 0, failed: 0 };
  let attacking = true;
  const goodLoop = (async () => {
    while (attacking) {
      const batch = Array.from({ length: 10 }, (_, i) => firstValueFrom(good.send('sum', [i, 1])).then((v) => v === i + 1));
      for (const ok of await Promise.allSettled(batch)) {
        goodStats.made++;
        if (ok.status !== 'fulfilled' || !ok.value) goodStats.failed++;
      }
    }
  })();

  const rows: Row[] = [];
  const row = async (attack: string, attempts: number, reason: string, run: () => Promise<number>): Promise<void> => {
    rows.push({ attack, attempts, rejected: await run(), reason });
  };

  await row('garbage bytes (good certificate)', 50, 'connection closed: unknown frame type / malformed HELLO', () => count(50, () => rawTls(port, certs.clients.bob, [randomBytes(2048)])));
  const oversize = Buffer.alloc(10);
  oversize.writeUInt32BE(1024 * 1024 * 1024, 0);
  oversize[4] = 0x10;
  await row('oversize frame (1 GiB announced)', 20, 'closed before allocating: exceeds maxFrameBytes', () => count(20, () => rawTls(port, certs.clients.bob, [helloFrame(), oversize])));
  const bomb = frame(0x10, 0x80, 1, deflateRawSync(callBody('sum', Buffer.alloc(32 * 1024 * 1024))));
  await row('decompression bomb (32 MiB inflated)', 5, 'closed: inflated size exceeds maxFrameBytes', () => count(5, () => rawTls(port, certs.clients.bob, [helloFrame(0x01), bomb])));
  await row('slow-loris (TCP, no TLS)', 30, 'closed by handshakeTimeoutMs', () => count(30, () => rawTcp(port, undefined, 3000)));
  await row('plain TCP speaking Erps on the TLS port', 20, 'TLS handshake failure', () => count(20, () => rawTcp(port, helloFrame(), 3000)));
  const refusedClient = async (files: TlsFiles): Promise<boolean> => {
    const c = new ErpsClient({ ...clientOptions, tls: files, reconnect: false, connectTimeoutMs: 2000 });
    try {
      await c.connect();
      return false;
    } catch {
      return true;
    } finally {
      await c.close();
    }
  };
  await row('client certificate from an untrusted CA', 20, 'ErpsTlsError: certificate rejected', () => count(20, () => refusedClient(certs.untrustedClient)));
  await row('no client certificate', 20, 'TLS: certificate required', () =>
    count(20, () => new Promise((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port, ca: readFileSync(certs.caFile) });
      socket.on('error', () => undefined);
      socket.resume();
      socket.once('secureConnect', () => socket.write(helloFrame()));
      socket.once('close', () => resolve(true));
      setTimeout(() => { socket.destroy(); resolve(false); }, 3000).unref();
    })));
  await row('revoked client certificate (CRL)', 20, 'ErpsTlsError: certificate revoked', () => count(20, () => refusedClient(revokedFiles)));
  const flood: ErpsClient[] = [];
  await row('connection flood past maxConnections (40; 39 may pass)', 60, 'REJECT: server full', async () => {
    const outcomes = await Promise.all(Array.from({ length: 60 }, async () => {
      const c = new ErpsClient({ ...clientOptions, tls: certs.clients.bob, reconnect: false });
      flood.push(c);
      return c.connect().then(() => false, (err: { code?: string }) => err.code === 'ERPS_HANDSHAKE');
    }));
    return outcomes.filter(Boolean).length;
  });
  for (const c of flood.splice(0)) await c.close();
  const busy = new ErpsClient({ ...clientOptions, tls: certs.clients.bob });
  await row('in-flight flood past maxInFlightPerConnection (20 may run)', 200, 'ERPS_BUSY error reply, connection kept', async () => {
    const outcomes = await Promise.all(Array.from({ length: 200 }, () => firstValueFrom(busy.send('slow', 200)).then(() => false, (err: { code?: string }) => err.code === 'ERPS_BUSY')));
    return outcomes.filter(Boolean).length;
  });
  await busy.close();
  let deep: unknown = 0;
  for (let i = 0; i < 200; i++) deep = [deep];
  await row('payload nested past maxDepth (32)', 20, 'ERPS_CODEC error reply', () => count(20, () => firstValueFrom(good.send('sum', deep)).then(() => false, (err: { code?: string }) => err.code === 'ERPS_CODEC')));
  await row('forbidden pattern (authorize)', 100, 'ERPS_FORBIDDEN, handler never ran', () => count(100, () => firstValueFrom(good.send('admin.secret', {})).then(() => false, (err: { code?: string }) => err.code === 'ERPS_FORBIDDEN')));

  attacking = false;
  await goodLoop;
  // Every handler run is one of the good client's successful calls, or an abuse that got through.
  const handlersForAttackers = ran.handlers - (goodStats.made - goodStats.failed);
  const alive = await firstValueFrom(good.send('sum', [20, 22])).then((v) => v === 42, () => false);
  const stats = server.stats();
  await good.close();
  await app.close();
  rmSync(dir, { recursive: true, force: true });

  console.log('| attack | attempts | rejected | how |');
  console.log('|---|---:|---:|---|');
  for (const r of rows) console.log(`| ${r.attack} | ${r.attempts} | ${r.rejected} | ${r.reason} |`);
  console.log('');
  console.log('| good client | value |');
  console.log('|---|---:|');
  console.log(`| good calls made | ${goodStats.made} |`);
  console.log(`| good calls failed | ${goodStats.failed} |`);
  console.log(`| handlers run for attackers | ${handlersForAttackers} |`);
  console.log(`| daemon alive (a call after the attacks) | ${alive ? 'yes' : 'NO'} |`);
  console.log(`| daemon connections / calls in flight at the end | ${stats.connections} / ${stats.inFlight} |`);
  const holes = rows.filter((r) => r.rejected !== r.attempts);
  // The connection flood is the one row where some attempts are meant to pass: up to maxConnections.
  const unexpected = holes.filter((r) => !(r.attack.startsWith('connection flood') && r.rejected >= r.attempts - 40) && !(r.attack.startsWith('in-flight flood') && r.rejected >= r.attempts - 20));
  const ok = unexpected.length === 0 && goodStats.failed === 0 && handlersForAttackers === 0 && alive;
  console.log(JSON.stringify({ attack: 'nestjs-erps', ok, goodCallsMade: goodStats.made, goodCallsFailed: goodStats.failed, daemonAlive: alive, rows }));
  process.exit(ok ? 0 : 1);
}

const watchdog = setTimeout(() => {
  console.error('attack: watchdog fired after 120 s');
  process.exit(1);
}, 120_000);
watchdog.unref();
main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
