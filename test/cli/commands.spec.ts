/**
 * `erps`, the built CLI, run as a process against a real daemon over mutual TLS: each command's output and exit
 * code. Processes of one test run side by side.
 */
import { DevCertificates } from 'nestjs-erps/testing';
import { RunningServer } from '../support/apps';
import { startFeaturesServer } from '../support/features-app';
import { testCertificates } from '../support/certs';
import { assertCliBuilt, calcArgs, erps, erpsBatch } from '../support/erps-cli';
import { waitFor } from '../support/wait';

/** The part of `erps bench --json` read here. */
interface BenchJson {
  calls: number;
  ok: number;
  errors: Record<string, number>;
  latencyMs: { min: number; p50: number; p90: number; p99: number; max: number } | null;
}

describe('erps against a mutual-TLS daemon', () => {
  let running: RunningServer;
  let certs: DevCertificates;
  let target: string;
  let as: string[];

  beforeAll(async () => {
    assertCliBuilt();
    certs = await testCertificates();
    running = await startFeaturesServer();
    target = `127.0.0.1:${running.port}`;
    as = calcArgs(certs);
  });

  afterAll(async () => {
    await running.close();
  });

  it('call prints the reply as JSON, a stream as one line per value; payload from stdin; headers; certificates from the environment or --certs', async () => {
    const alice = certs.clients.alice;
    const handshake = ['--identifier', 'calc', '--version', '1.2.0'];
    const [sum, stream, stdin, headers, asBob] = await Promise.all([
      erps(['call', target, 'sum', '[1,2,3]', ...handshake], { env: { ERPS_CA: alice.caFile, ERPS_CERT: alice.certFile, ERPS_KEY: alice.keyFile } }),
      erps(['call', target, '{"version":1,"cmd":"count"}', '3', ...as]),
      erps(['call', target, 'sum', '-', '--certs', certs.dir, ...handshake], { input: '[4, 5,\n 6]\n' }),
      erps(['call', target, 'headers', ...as, '--header', 'tenant=acme', '--header', 'trace=a=b']),
      erps(['call', target, 'whoami', '--certs', certs.dir, '--cert', certs.clients.bob.certFile, '--key', certs.clients.bob.keyFile, ...handshake]),
    ]);
    expect(sum).toMatchObject({ code: 0, stdout: '6\n', stderr: '' });
    expect(stream).toMatchObject({ code: 0, lines: ['1', '2', '3'], stderr: '' });
    expect(stdin).toMatchObject({ code: 0, stdout: '15\n' });
    expect(headers).toMatchObject({ code: 0, stdout: '{"tenant":"acme","trace":"a=b"}\n' });
    expect(asBob.code).toBe(0);
    expect(JSON.parse(asBob.stdout)).toMatchObject({ cn: 'bob', remote: true, pattern: 'whoami' });
  });

  it('call fails with exit 1 and the error code: an error reply, no handler (JSON on stderr with --json), a timeout', async () => {
    const [rpc, missing, late] = await Promise.all([
      erps(['call', target, 'fail.rpc', ...as]),
      erps(['call', target, 'no.such.pattern', ...as, '--json']),
      erps(['call', target, 'slow', '3000', ...as, '--timeout', '150']),
    ]);
    expect(rpc).toMatchObject({ code: 1, stdout: '' });
    expect(rpc.stderr).toBe('erps: the call failed: E_CALC: calculator says no\n  {"details":{"x":1}}\n');
    expect(missing).toMatchObject({ code: 1, stdout: '' });
    expect(JSON.parse(missing.stderr)).toEqual({
      error: { code: 'ERPS_NO_HANDLER', message: expect.stringContaining('no.such.pattern'), exitCode: 1, hint: expect.stringContaining('no handler for that pattern') },
    });
    expect(late).toMatchObject({ code: 1, stdout: '' });
    expect(late.stderr).toMatch(/^erps: .*150 ms.*\n {2}→ no reply in time: allow more with --timeout/);
  });

  it('call: Ctrl-C during a stream cancels it on the server (exit 130)', async () => {
    const tornDown = running.probe.torndown;
    const run = await erps(['call', target, 'ticks', ...as, '--timeout', '0'], {
      started: (child) => child.stdout!.once('data', () => child.kill('SIGINT')),
    });
    expect(run.code).toBe(130);
    expect(run.lines.length).toBeGreaterThan(0);
    expect(run.lines.every((line) => /^\d+$/.test(line))).toBe(true);
    await waitFor(() => running.probe.torndown > tornDown);
  });

  it('cast delivers the event and prints nothing; --header is sent along', async () => {
    const before = running.probe.events.length;
    const casts = await Promise.all([
      erps(['cast', target, 'audit', '{"action":"login","user":"ada"}', ...as]),
      erps(['cast', target, 'metadata.cast', ...as, '--header', 'tenant=acme']),
    ]);
    for (const cast of casts) expect(cast).toMatchObject({ code: 0, stdout: '', stderr: '' });
    await waitFor(() => running.probe.events.length >= before + 2);
    expect(running.probe.events.slice(before)).toEqual(expect.arrayContaining([{ action: 'login', user: 'ada' }, { tenant: 'acme' }]));
  });

  it('pushes prints pushes as JSON lines, of one pattern when given, after a --call if asked, and exits 0 after --count', async () => {
    let active = true;
    // ErpsServer has no off(): the listener stays, inert after this test.
    running.server.on('connection', (info) => {
      if (!active) return;
      running.server.push(info.connectionId, 'other', { skip: true });
      running.server.push(info.connectionId, 'news', { n: 1 });
      running.server.push(info.connectionId, 'news', { n: 2 });
    });
    try {
      const [news, subscribed] = await Promise.all([
        erps(['pushes', target, 'news', ...as, '--count', '2', '--json']),
        erps(['pushes', target, 'note', ...as, '--count', '2', '--call', 'push.me', '--data', '2']),
      ]);
      expect(news).toMatchObject({ code: 0, lines: ['{"pattern":"news","data":{"n":1}}', '{"pattern":"news","data":{"n":2}}'], stderr: '' });
      expect(subscribed).toMatchObject({ code: 0, lines: ['{"pattern":"note","data":{"i":0}}', '{"pattern":"note","data":{"i":1}}'] });
      expect(subscribed.stderr).toMatch(/^erps: connected to .*; printing pushes of note \(Ctrl-C to stop\)\n/);
    } finally {
      active = false;
    }
  });

  it('pushes runs until interrupted (SIGINT: exit 0)', async () => {
    const run = await erps(['pushes', target, 'never', ...as], {
      started: (child) => {
        // Once it says it listens, Ctrl-C.
        child.stderr!.on('data', (chunk: Buffer) => {
          if (chunk.toString().includes('(Ctrl-C to stop)')) child.kill('SIGINT');
        });
      },
    });
    expect(run).toMatchObject({ code: 0, stdout: '', stderr: `erps: connected to ${target}; printing pushes of never (Ctrl-C to stop)\n` });
  });

  it('ping times the handshake and round trips; health asks the health service; both with --json; a dns: target is looked up', async () => {
    const [ping, pingJson, health, unknownService, viaDns] = await Promise.all([
      erps(['ping', target, ...as, '--count', '3', '--interval', '0']),
      erps(['ping', target, ...as, '--count', '4', '--interval', '0', '--json']),
      erps(['health', target, ...as, '--json']),
      erps(['health', target, 'billing', ...as]),
      erps(['call', `dns:localhost:${running.port}`, 'sum', '[1,2,3]', ...as]),
    ]);
    expect(unknownService).toMatchObject({ code: 1, lines: [expect.stringMatching(/^SERVICE_UNKNOWN \(service "billing"\) \(round trip [\d.]+ ms\)$/)] });
    expect(viaDns).toMatchObject({ code: 0, stdout: '6\n' });
    expect(ping.code).toBe(0);
    expect(ping.lines[0]).toMatch(new RegExp(`^connected to ${target}: handshake [\\d.]+ ms$`));
    [1, 2, 3].forEach((seq) => expect(ping.lines[seq]).toMatch(new RegExp(`^pong from ${target}: seq=${seq} time=[\\d.]+ ms$`)));
    expect(ping.lines[4]).toMatch(/^3 round trips: min [\d.]+ ms, median [\d.]+ ms, p99 [\d.]+ ms, max [\d.]+ ms$/);
    expect(pingJson.code).toBe(0);
    const report = JSON.parse(pingJson.stdout) as { samplesMs: number[]; rttMs: { min: number; median: number } };
    expect(report).toMatchObject({ target, count: 4, handshakeMs: expect.any(Number), rttMs: { min: expect.any(Number), median: expect.any(Number), p99: expect.any(Number) } });
    expect(report.samplesMs).toHaveLength(4);
    expect(report.rttMs.min).toBeLessThanOrEqual(report.rttMs.median);
    expect(health.code).toBe(0);
    expect(JSON.parse(health.stdout)).toEqual({ status: 'SERVING', check: 'health', service: '', rttMs: expect.any(Number) });
  });

  it('inspect shows TLS, the server certificate with its expiry, verification, the handshake and the limits', async () => {
    const [text, json] = await Promise.all([erps(['inspect', target, ...as]), erps(['inspect', `localhost:${running.port}`, ...as, '--json'])]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^TLS +TLSv1\.[23], \S+/m);
    expect(text.stdout).toMatch(/^certificate +CN=localhost$/m);
    expect(text.stdout).toMatch(/^ {2}SANs +DNS:localhost, IP Address:127\.0\.0\.1/m);
    expect(text.stdout).toMatch(/^ {2}issuer +CN=nestjs-erps dev CA$/m);
    expect(text.stdout).toMatch(/^ {2}valid +\S+ → \S+ \(expires in \d+ days\)$/m);
    expect(text.stdout).toMatch(/^ {2}SHA-256 +([0-9A-F]{2}:){31}[0-9A-F]{2}$/m);
    expect(text.stdout).toMatch(/^verified +yes: signed by the given CA, valid for "127\.0\.0\.1"$/m);
    expect(text.stdout).toMatch(/^handshake +accepted in [\d.]+ ms \(identifier "calc", version 1\.2\.0, codec msgpack\)$/m);
    expect(text.stdout).toMatch(/^features +none \(compression off\)$/m);
    expect(text.stdout).toMatch(/^keepalive +5000 ms$/m);
    expect(text.stdout).toMatch(/^frame limit +4194304 bytes \(4 MiB\)$/m);

    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout) as { certificate: { expiresInDays: number } };
    expect(report).toMatchObject({
      target: `localhost:${running.port}`,
      ok: true,
      tls: { protocol: expect.stringMatching(/^TLSv1\.[23]$/), cipher: expect.any(String) },
      certificate: { subject: 'CN=localhost', issuer: 'CN=nestjs-erps dev CA', subjectAltNames: expect.arrayContaining(['DNS:localhost']), fingerprint256: expect.any(String) },
      verification: { verified: true, serverName: 'localhost', problems: [] },
      handshake: { result: 'accepted', identifier: 'calc', version: '1.2.0' },
      server: { wireVersion: 1, features: 0, compression: [], keepaliveMs: 5000, maxFrameBytes: 4 * 1024 * 1024 },
      error: null,
    });
    expect(report.certificate.expiresInDays).toBeGreaterThan(800);
  });

  it('inspect reports what stops a client: an untrusted server certificate, a wrong name, a REJECT (exit 3)', async () => {
    const [wrongCa, wrongName, rejected] = await Promise.all([
      erps(['inspect', target, ...as, '--ca', certs.dir + '/untrusted-ca.crt']),
      erps(['inspect', target, ...as, '--server-name', 'api.example']),
      erps(['inspect', target, ...as, '--version', '2.0.0', '--json']),
    ]);
    expect(wrongCa.code).toBe(3);
    expect(wrongCa.stdout).toMatch(/^verified +NO \(for "127\.0\.0\.1"\): .*unknown CA.* — pass the CA that issued it with --ca$/m);
    expect(wrongCa.stdout).toMatch(/^ {2}issuer +CN=nestjs-erps dev CA$/m);
    expect(wrongName.code).toBe(3);
    expect(wrongName.stdout).toMatch(/^verified +NO \(for "api\.example"\): .*api\.example.* — pass --server-name with one of its names$/m);
    expect(rejected.code).toBe(3);
    expect(JSON.parse(rejected.stdout)).toMatchObject({
      ok: false,
      verification: { verified: true },
      handshake: { result: 'rejected', code: 4, name: 'VERSION', reason: expect.stringContaining('outside the server\'s accepted range "^1.0.0"') },
      server: null,
      error: { code: 'ERPS_HANDSHAKE', hint: expect.stringContaining('--version') },
    });
  });

  it('bench reports calls, calls/s, latency and errors; its call count matches the server’s', async () => {
    const handled = (): number => running.probe.calls.filter((call) => call === 'sum').length;
    const before = handled();
    const bench = await erps(['bench', target, 'sum', '[1,2,3]', ...as, '--concurrency', '4', '--duration', '0.2', '--connections', '2', '--json']);
    expect(bench.code).toBe(0);
    const report = JSON.parse(bench.stdout) as BenchJson;
    expect(report).toMatchObject({ target, pattern: 'sum', concurrency: 4, connections: 2, rate: null, errors: {}, latencyMs: expect.any(Object) });
    expect(report.calls).toBeGreaterThan(0);
    expect(report.ok).toBe(report.calls);
    expect(handled() - before).toBe(report.calls);
    const { min, p50, p90, p99, max } = report.latencyMs!;
    expect([min, p50, p90, p99, max]).toEqual([min, p50, p90, p99, max].sort((a, b) => a - b));
  });

  it('bench as a table, paced by --rate, with errors by code (exit 1)', async () => {
    const [table, failing] = await Promise.all([
      erps(['bench', target, 'sum', '[1]', ...as, '-c', '2', '-d', '0.5', '--rate', '40']),
      erps(['bench', target, 'fail.rpc', ...as, '-c', '2', '-d', '0.2', '--json']),
    ]);
    expect(table.code).toBe(0);
    expect(table.lines[0]).toMatch(new RegExp(`^sum on ${target}: [\\d.]+ s, concurrency 2, 1 connection, rate 40/s$`));
    const calls = Number(/calls +(\d+) \(\1 ok, 0 failed\)/.exec(table.stdout)?.[1]);
    // At most one call per 1/40 s of the half second (the first at 0): a rate, not a flood.
    expect(calls).toBeGreaterThan(0);
    expect(calls).toBeLessThanOrEqual(20);
    for (const label of ['calls/s', 'min', 'mean', 'p50', 'p90', 'p99', 'max']) expect(table.stdout).toMatch(new RegExp(`^ +${label.replace('/', '\\/')} +[\\d.]+`, 'm'));
    expect(failing.code).toBe(1);
    const report = JSON.parse(failing.stdout) as BenchJson;
    expect(report.ok).toBe(0);
    expect(report.errors).toEqual({ E_CALC: report.calls });
    expect(report.latencyMs).toBeNull();
  });

  it('--help of every command documents its options with an example, and exits 0', async () => {
    const commands = ['call', 'cast', 'pushes', 'ping', 'inspect', 'health', 'certs', 'bench'];
    // The program's help from the real executable; each command's through runCli() in one batch process.
    const [main, helps] = await Promise.all([erps(['--help']), erpsBatch(commands.map((command) => ({ args: [command, '--help'] })))]);
    expect(main.code).toBe(0);
    for (const command of commands) expect(main.stdout).toContain(`  ${command} [options]`);
    expect(main.stdout).toMatch(/Exit codes:\n {2}0 {2}success\n {2}1 {2}the call failed.*\n {2}2 {2}usage.*\n {2}3 {2}connection, TLS or handshake failure/);
    expect(main.stdout).toMatch(/ERPS_CA, ERPS_CERT and ERPS_KEY/);
    helps.forEach((help, i) => {
      expect(help.code).toBe(0);
      expect(help.stdout).toContain(`Usage: erps ${commands[i]} [options]`);
      expect(help.stdout).toMatch(new RegExp(`Examples:\\n {2}\\$ (npx )?erps ${commands[i]} `));
    });
    expect(helps[5]!.stdout).toMatch(/ping-based/);
    for (const help of helps.filter((_, i) => commands[i] !== 'certs')) {
      for (const option of ['--ca', '--cert', '--key', '--certs', '--server-name', '--plain', '--identifier', '--version', '--codec', '--json'])
        expect(help.stdout).toContain(`  ${option} `);
      expect(help.stdout).toContain('(env: ERPS_CA)');
    }
  });
});
