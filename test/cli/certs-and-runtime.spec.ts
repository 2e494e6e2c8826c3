/**
 * `erps certs` writes certificates a daemon and `erps` itself can use (the generator of nestjs-erps/testing), says
 * what to install when @peculiar/x509 is missing, and `erps` runs without Nest or rxjs (certs, a call, inspect).
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunningServer, startCalcServer } from '../support/apps';
import { assertCliBuilt, erps } from '../support/erps-cli';

/** Preloaded into the CLI: requiring Nest or rxjs throws, and what got loaded is listed on stderr at exit. */
const NO_FRAMEWORK_HOOK = `
const Module = require('node:module');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (/^(@nestjs\\/|rxjs(\\/|$))/.test(request)) throw new Error('erps required ' + request);
  return resolve.call(this, request, ...rest);
};
process.on('exit', () => {
  const framework = Object.keys(require.cache).filter((file) => /[\\\\/]node_modules[\\\\/](@nestjs|rxjs)[\\\\/]/.test(file));
  process.stderr.write('framework modules loaded: ' + framework.length + '\\n');
});
`;

/** Preloaded into the CLI: @peculiar/x509 is not installed. */
const NO_X509_HOOK = `
const Module = require('node:module');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (request === '@peculiar/x509') throw Object.assign(new Error("Cannot find module '@peculiar/x509'"), { code: 'MODULE_NOT_FOUND' });
  return resolve.call(this, request, ...rest);
};
`;

describe('erps certs, and erps without Nest', () => {
  let work: string;
  let dir: string;
  let noFramework: string;
  let noX509: string;
  let running: RunningServer | undefined;

  beforeAll(() => {
    assertCliBuilt();
    work = mkdtempSync(join(tmpdir(), 'erps-cli-certs-'));
    dir = join(work, 'certs');
    noFramework = join(work, 'no-framework.js');
    noX509 = join(work, 'no-x509.js');
    writeFileSync(noFramework, NO_FRAMEWORK_HOOK);
    writeFileSync(noX509, NO_X509_HOOK);
  });

  afterAll(async () => {
    await running?.close();
  });

  it('writes certificates a daemon and erps use: a call, another identity, inspect; a rerun keeps them and adds clients', async () => {
    const first = await erps(['certs', dir, '--client', 'ops'], { cwd: work, nodeArgs: ['-r', noFramework] });
    expect(first.code).toBe(0);
    expect(first.lines[0]).toBe('Development certificates in ./certs: written. Keys are unencrypted: never for production.');
    expect(first.stdout).toMatch(/^ {2}ops\.crt\/\.key +a client, CN=ops$/m);
    expect(first.stdout).toContain(`tls: { caFile: './certs/ca.crt', certFile: './certs/server.crt', keyFile: './certs/server.key' }`);
    expect(first.stdout).toContain("npx erps call 127.0.0.1:4000 <pattern> '<json>' --certs ./certs");
    expect(first.stderr).toBe('framework modules loaded: 0\n');
    for (const file of ['ca.crt', 'ca.key', 'server.crt', 'server.key', 'alice.crt', 'alice.key', 'bob.crt', 'ops.crt', 'ops.key']) expect(existsSync(join(dir, file))).toBe(true);
    const ca = readFileSync(join(dir, 'ca.crt'), 'utf8');

    running = await startCalcServer({ tls: { caFile: join(dir, 'ca.crt'), certFile: join(dir, 'server.crt'), keyFile: join(dir, 'server.key') } });
    const target = `127.0.0.1:${running.port}`;
    const handshake = ['--identifier', 'calc', '--version', '1.2.0'];
    const opsIdentity = ['--cert', join(dir, 'ops.crt'), '--key', join(dir, 'ops.key')];
    const [sum, asOps, inspect, health, rerun, badName] = await Promise.all([
      erps(['call', target, 'sum', '[1,2,3]', '--certs', dir, ...handshake], { nodeArgs: ['-r', noFramework] }),
      erps(['call', target, 'whoami', '--certs', dir, ...opsIdentity, ...handshake]),
      erps(['inspect', target, '--certs', dir, ...handshake], { nodeArgs: ['-r', noFramework] }),
      erps(['health', target, '--certs', dir, ...handshake]),
      erps(['certs', dir, '--client', 'ops', '--client', 'billing', '--json']),
      erps(['certs', dir, '--client', 'server']),
    ]);
    expect(sum).toMatchObject({ code: 0, stdout: '6\n', stderr: 'framework modules loaded: 0\n' });
    expect(JSON.parse(asOps.stdout)).toMatchObject({ cn: 'ops' });
    expect(inspect.code).toBe(0);
    expect(inspect.stdout).toMatch(/\(expires in 82[45] days\)/);
    expect(inspect.stderr).toBe('framework modules loaded: 0\n');
    expect(health).toMatchObject({ code: 0, lines: [expect.stringMatching(/^SERVING \(round trip [\d.]+ ms\)$/)] });

    // The rerun kept the folder (same CA) and issued billing with its ca.key.
    expect(rerun.code).toBe(0);
    const report = JSON.parse(rerun.stdout) as { kept: string[]; clients: Record<string, unknown> };
    expect(report.kept).toEqual(expect.arrayContaining(['ca.crt', 'server.crt', 'alice.crt', 'ops.crt']));
    expect(report.kept).not.toContain('billing.crt');
    expect(Object.keys(report.clients).sort()).toEqual(['alice', 'billing', 'bob', 'ops']);
    expect(readFileSync(join(dir, 'ca.crt'), 'utf8')).toBe(ca);
    const billing = new X509Certificate(readFileSync(join(dir, 'billing.crt')));
    expect(billing.subject).toBe('CN=billing');
    expect(billing.verify(new X509Certificate(ca).publicKey)).toBe(true);
    const asBilling = await erps(['call', target, 'whoami', '--certs', dir, '--cert', join(dir, 'billing.crt'), '--key', join(dir, 'billing.key'), ...handshake]);
    expect(JSON.parse(asBilling.stdout)).toMatchObject({ cn: 'billing' });

    expect(badName.code).toBe(2);
    expect(badName.stderr).toMatch(/client name "server" cannot be used/);
  });

  it('--force makes a new CA; without @peculiar/x509 it says what to install (exit 1) and writes nothing', async () => {
    const forced = join(work, 'forced');
    const missing = join(work, 'missing');
    const [once, noX509Run] = await Promise.all([erps(['certs', forced]), erps(['certs', missing], { nodeArgs: ['-r', noX509] })]);
    expect(once.code).toBe(0);
    const before = readFileSync(join(forced, 'ca.crt'), 'utf8');
    const [kept, again] = [await erps(['certs', forced]), await erps(['certs', forced, '--force'])];
    expect(kept.lines[0]).toMatch(/: kept \(--force to regenerate\)\./);
    expect(again.lines[0]).toMatch(/: written\./);
    expect(readFileSync(join(forced, 'ca.crt'), 'utf8')).not.toBe(before);

    expect(noX509Run.code).toBe(1);
    expect(noX509Run.stderr).toBe(
      'erps: erps certs needs @peculiar/x509, an optional peer dependency of nestjs-erps that is not installed\n' +
        '  → install it in your app: npm install -D @peculiar/x509 (then run erps certs again)\n',
    );
    expect(existsSync(missing)).toBe(false);
  });
});
