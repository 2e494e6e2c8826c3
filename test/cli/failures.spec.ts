/**
 * Every failure class of `erps` gives its documented exit code (1 call failed, 2 usage, 3 connection/TLS/handshake)
 * and a message that says what to do. The built CLI as a process; the processes of a test run side by side.
 */
import { webcrypto } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority, DevCertificates, issueCertificate } from 'nestjs-erps/testing';
import { RunningServer, startCalcServer } from '../support/apps';
import { testCertificates } from '../support/certs';
import { assertCliBuilt, calcArgs, erps, erpsBatch, tlsArgs } from '../support/erps-cli';

const DAY = 24 * 60 * 60 * 1000;

/** The dev CA of `certs`, from its ca.crt and ca.key, to issue odd certificates with. */
async function devCa(certs: DevCertificates): Promise<CertificateAuthority> {
  const pem = readFileSync(join(certs.dir, 'ca.key'), 'utf8');
  const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const signingKey = await webcrypto.subtle.importKey('pkcs8', der, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
  return { name: 'CN=nestjs-erps dev CA', cert: readFileSync(certs.caFile, 'utf8'), key: pem, serialNumber: '', signingKey };
}

/** A port nothing listens on (one the OS just gave and took back). */
async function closedPort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('erps failures: exit codes and advice', () => {
  let tlsServer: RunningServer;
  let tcpServer: RunningServer;
  let silent: net.Server;
  let certs: DevCertificates;
  let as: string[];
  let target: string;
  let expired: { certFile: string; keyFile: string };

  beforeAll(async () => {
    assertCliBuilt();
    certs = await testCertificates();
    as = calcArgs(certs);
    [tlsServer, tcpServer] = await Promise.all([startCalcServer(), startCalcServer({ transport: 'tcp' })]);
    target = `127.0.0.1:${tlsServer.port}`;
    // Accepts TCP and never says a word: TLS never completes.
    silent = net.createServer(() => undefined).listen(0, '127.0.0.1');
    await new Promise((resolve) => silent.once('listening', resolve));
    const late = await issueCertificate(await devCa(certs), { cn: 'late', notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) });
    const dir = mkdtempSync(join(tmpdir(), 'erps-cli-expired-'));
    expired = { certFile: join(dir, 'late.crt'), keyFile: join(dir, 'late.key') };
    writeFileSync(expired.certFile, late.cert);
    writeFileSync(expired.keyFile, late.key);
  });

  afterAll(async () => {
    silent?.close();
    await Promise.all([tlsServer?.close(), tcpServer?.close()]);
  });

  it('connection, TLS and handshake failures exit 3 and say what to do', async () => {
    const nowhere = `127.0.0.1:${await closedPort()}`;
    const alice = certs.clients.alice;
    const handshake = ['--identifier', 'calc', '--version', '1.2.0'];
    const runs = await Promise.all([
      erps(['call', nowhere, 'sum', '[1]', ...as]),
      erps(['call', target, 'sum', '[1]', ...tlsArgs({ ...alice, caFile: join(certs.dir, 'untrusted-ca.crt') }), ...handshake]),
      erps(['call', target, 'sum', '[1]', ...tlsArgs(certs.untrustedClient), '--ca', alice.caFile, ...handshake]),
      erps(['call', target, 'sum', '[1]', '--ca', alice.caFile, '--cert', expired.certFile, '--key', expired.keyFile, ...handshake]),
      erps(['call', target, 'sum', '[1]', ...tlsArgs(alice), '--identifier', 'kalk', '--version', '1.2.0']),
      erps(['call', target, 'sum', '[1]', ...tlsArgs(alice), '--identifier', 'calc', '--version', '2.0.0']),
      erps(['call', target, 'sum', '[1]', '--plain', ...handshake]),
      erps(['call', `127.0.0.1:${tcpServer.port}`, 'sum', '[1]', ...as]),
      erps(['call', target, 'sum', '[1]', ...as, '--server-name', 'api.example']),
      erps(['ping', `127.0.0.1:${(silent.address() as net.AddressInfo).port}`, ...as, '--connect-timeout', '300']),
      erps(['health', nowhere, ...as, '--json']),
      erps(['call', 'dns:no-such-name.invalid:4000', 'sum', '[1]', ...as]),
    ]);
    const [noServer, wrongCa, untrustedClient, expiredClient, wrongIdentifier, wrongVersion, plainToTls, tlsToPlain, wrongName, silentServer, healthJson, unknownName] = runs;
    for (const run of runs) expect(run.code).toBe(3);
    for (const run of runs) expect(run.stdout).toBe('');
    expect(noServer.stderr).toMatch(
      /^erps: cannot connect to 127\.0\.0\.1:\d+: .*ECONNREFUSED.*\n {2}→ nothing listens on 127\.0\.0\.1:\d+: is the server running, and is the port right\?\n$/,
    );
    expect(wrongCa.stderr).toMatch(/TLS with .* failed: .*unknown CA.*\n {2}→ the server certificate is not signed by the CA you gave: pass the CA that issued it with --ca/);
    expect(untrustedClient.stderr).toMatch(
      /^erps: the server rejected the client certificate: unknown CA\n {2}→ use a client certificate issued by a CA the server trusts \(--cert, --key\)/,
    );
    expect(expiredClient.stderr).toMatch(/^erps: the server rejected the client certificate: it has expired\n {2}→ the client certificate has expired: issue a new one/);
    expect(wrongIdentifier.stderr).toMatch(/^erps: the server rejected the handshake: identifier mismatch: server is "calc", client asked for "kalk"\n {2}→ pass --identifier calc\n$/);
    expect(wrongVersion.stderr).toMatch(
      /^erps: the server rejected the handshake: client version 2\.0\.0 is outside .*\n {2}→ pass --version with a version inside "\^1\.0\.0" \(sent: 2\.0\.0\)\n$/,
    );
    expect(plainToTls.stderr).toMatch(/^erps: --plain: plain TCP, no encryption, no peer identity\. For development only\.\n/);
    expect(plainToTls.stderr).toMatch(/→ the server may speak TLS \(the default\): drop --plain/);
    expect(tlsToPlain.stderr).toMatch(/→ .*if it is a development server with transport 'tcp', pass --plain/);
    expect(wrongName.stderr).toMatch(/api\.example.*\n {2}→ the server certificate does not name the host you dialled: pass --server-name/);
    expect(silentServer.stderr).toMatch(/timed out after 300 ms\n {2}→ .*--connect-timeout/);
    expect(unknownName.stderr).toMatch(/^erps: dns:no-such-name\.invalid:4000: the lookup failed: .*\n {2}→ check the name and its records/);
    expect(JSON.parse(healthJson.stderr)).toEqual({
      error: { code: 'ERPS_DISCONNECTED', message: expect.stringContaining('ECONNREFUSED'), exitCode: 3, hint: expect.stringContaining('nothing listens') },
    });
    // Nothing got past the handshake to a handler.
    expect(tlsServer.probe.calls).toEqual([]);
  });

  it('usage errors exit 2: malformed dns:/srv: targets, a bad target, missing certificates, bad JSON, bad options', async () => {
    // Two from the real executable; the rest through its runCli() in one batch process (cheaper than a process each).
    const [spawned, batched] = await Promise.all([
      Promise.all([erps(['call', 'dns:calc.internal', 'sum', '[1]', ...as]), erps(['call', target, 'sum', '[1]', '--identifier', 'calc'])]),
      erpsBatch([
        { args: ['call', 'srv:', 'sum', '[1]', ...as] },
        { args: ['call', '127.0.0.1', 'sum', '[1]', ...as] },
        { args: ['call', target, 'sum', '[1', ...as] },
        { args: ['call', target, 'sum', '-', ...as], input: 'not json' },
        { args: ['call', target, 'sum', '[1]', '--certs', join(certs.dir, 'nope')] },
        { args: ['call', target, 'sum', '[1]', ...as, '--codec', 'xml'] },
        { args: ['call', target, 'sum', '[1]', ...as, '--timeout', 'soon'] },
        { args: ['call', target, 'sum', '[1]', ...as, '--header', 'erps-x=1'] },
        { args: ['call', target] },
        { args: ['frobnicate'] },
        { args: ['call', target, 'sum', '[1]', '--ca', join(certs.dir, 'missing.crt'), '--cert', certs.clients.alice.certFile, '--key', certs.clients.alice.keyFile] },
        { args: ['bench', target, 'sum', ...as, '--concurrency', '1', '--connections', '2'] },
        { args: ['call', target, '--json'] },
        { args: [] },
      ]),
    ]);
    const [dns, noCerts] = spawned;
    const [srv, badTarget, badJson, badStdin, noDir, badCodec, badTimeout, reservedHeader, missingArg, unknown, missingFile, benchShape, jsonUsage, bare] = batched;
    for (const run of [...spawned, ...batched]) expect(run.code).toBe(2);
    expect(dns.stderr).toMatch(/^erps: "dns:calc\.internal" is not a target\n {2}→ give dns:name:port \(A\/AAAA records\) or srv:name/);
    expect(srv!.stderr).toMatch(/"srv:" is not a target/);
    expect(badTarget!.stderr).toMatch(/"127\.0\.0\.1" is not a target\n {2}→ give the server as host:port/);
    expect(noCerts.stderr).toMatch(/mutual TLS needs a CA, a client certificate and its key; missing: --ca, --cert, --key\n {2}→ pass --certs DIR .*npx erps certs/);
    expect(bare!.stderr).toMatch(/Usage: erps/);
    expect(badJson!.stderr).toMatch(/the payload argument is not JSON: .*\n {2}→ give the payload as JSON/);
    expect(badStdin!.stderr).toMatch(/stdin is not JSON/);
    expect(noDir!.stderr).toMatch(/--certs .*nope: no such folder\n {2}→ create development certificates there with: npx erps certs/);
    expect(badCodec!.stderr).toMatch(/--codec.*xml.*Allowed choices are msgpack, json/);
    expect(badTimeout!.stderr).toMatch(/--timeout.*expected an integer ≥ 0, got "soon"/);
    expect(reservedHeader!.stderr).toMatch(/--header: header name "erps-x" uses the reserved prefix/);
    expect(missingArg!.stderr).toMatch(/missing required argument 'pattern'/);
    expect(unknown!.stderr).toMatch(/unknown command 'frobnicate'/);
    expect(missingFile!.stderr).toMatch(/--ca .*missing\.crt: no such file/);
    expect(benchShape!.stderr).toMatch(/--concurrency 1 is below --connections 2/);
    expect(JSON.parse(jsonUsage!.stderr)).toEqual({ error: { code: 'ERPS_CLI_USAGE', message: "missing required argument 'pattern'", exitCode: 2 } });
    expect(tlsServer.probe.calls).toEqual([]);
  });
});
