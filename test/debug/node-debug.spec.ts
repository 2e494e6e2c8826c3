/**
 * NODE_DEBUG=erps prints the connection lifecycle and handshake details on stderr (util.debuglog), on both ends.
 * A child node runs the built package (a daemon, a client that connects, one the daemon rejects, then a drain).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { testCertificates } from '../support/certs';

const DIST = join(__dirname, '..', '..', 'dist', 'index.js');

const SCRIPT = `
const { ErpsServer, ErpsClient } = require(${JSON.stringify(DIST)});
const certs = JSON.parse(process.env.ERPS_TEST_CERTS);
(async () => {
  const server = new ErpsServer({ host: '127.0.0.1', port: 0, tls: certs.server, identifier: 'calc', versions: '^1.0.0', drainTimeoutMs: 2000 });
  await new Promise((resolve, reject) => server.listen((err) => (err ? reject(err) : resolve())));
  const port = server.address().port;
  const options = { host: '127.0.0.1', port, tls: certs.clients.alice, version: '1.2.0', reconnect: { minDelayMs: 20, maxDelayMs: 50, maxAttempts: 2 } };
  const client = new ErpsClient({ ...options, identifier: 'calc' });
  const health = await client.health();
  const stranger = new ErpsClient({ ...options, identifier: 'other' });
  const refused = await stranger.connect().then(() => 'connected', (err) => err.code);
  await stranger.close();
  await server.close();
  await new Promise((resolve) => setTimeout(resolve, 200)); // the client notices and schedules a reconnect
  await client.close();
  console.log(JSON.stringify({ status: health.status, refused }));
})().catch((err) => { console.error(err); process.exit(1); });
`;

async function run(nodeDebug: string | undefined): Promise<{ stdout: string; stderr: string }> {
  const certs = await testCertificates();
  const env: NodeJS.ProcessEnv = { ...process.env, ERPS_TEST_CERTS: JSON.stringify(certs) };
  delete env.NODE_DEBUG;
  if (nodeDebug !== undefined) env.NODE_DEBUG = nodeDebug;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['-e', SCRIPT], { env, encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`child node failed: ${err.message}\n${stderr}`)) : resolve({ stdout, stderr }),
    );
  });
}

/** The debug lines of stderr, without the `ERPS <pid>: ` prefix. */
function debugLines(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((line) => /^ERPS \d+: /.test(line))
    .map((line) => line.replace(/^ERPS \d+: /, ''));
}

describe('NODE_DEBUG=erps', () => {
  beforeAll(() => {
    if (!existsSync(DIST)) throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
  });

  it('prints connection lifecycle and handshake details of client and server on stderr', async () => {
    const { stdout, stderr } = await run('erps');
    expect(JSON.parse(stdout.trim().split('\n').pop()!)).toEqual({ status: 'SERVING', refused: 'ERPS_HANDSHAKE' });
    const lines = debugLines(stderr);
    const expected = [
      /^server: listening on 127\.0\.0\.1:\d+ over mutual TLS$/,
      /^client: dialling 127\.0\.0\.1:\d+ over mutual TLS$/,
      /^server: accepted 127\.0\.0\.1:\d+ \(TLSv1\.[23], [\w-]+\), client certificate CN "alice" verified$/,
      /^client: 127\.0\.0\.1:\d+: TLS up \(TLSv1\.[23], [\w-]+\), server certificate CN "[^"]+"; sending HELLO \(identifier "calc", version 1\.2\.0, codec msgpack, features 0x0\)$/,
      /^server: connection \d+: HELLO "calc" 1\.2\.0 \(codec msgpack\) accepted, WELCOME features 0x0$/,
      /^client: 127\.0\.0\.1:\d+: WELCOME \(wire version 1, features 0x0, keepaliveMs \d+, maxFrameBytes \d+\)$/,
      /^client: endpoint 127\.0\.0\.1:\d+ is ready$/,
      /^client: status connected$/,
      /^server: connection \d+ from 127\.0\.0\.1:\d+ \(peer "alice"\): handshake rejected, REJECT code 3: /,
      /^client: 127\.0\.0\.1:\d+: REJECT code 3: /,
      /^client: 127\.0\.0\.1:\d+: connection attempt failed: Erps handshake rejected: /,
      /^client: endpoint 127\.0\.0\.1:\d+ is transient-failure: Erps handshake rejected: /,
      /^client: status failed$/,
      /^server: draining 1 connections \(drainTimeoutMs 2000\)$/,
      /^server: connection \d+ from 127\.0\.0\.1:\d+ closed before its handshake: cleanly$/,
      /^server: connection \d+ from 127\.0\.0\.1:\d+ closed: connection closed by peer$/,
      /^server: closed$/,
      /^client: status disconnected$/,
      /^client: 127\.0\.0\.1:\d+: connection attempt failed: cannot connect to 127\.0\.0\.1:\d+: connect ECONNREFUSED/,
      /^client: reconnecting in \d+ ms \(attempt \d+\) after: /,
    ];
    for (const pattern of expected) expect(lines).toContainEqual(expect.stringMatching(pattern));
    // Nothing but debug lines on stderr: warnings would go through Nest's Logger (stdout), and there are none here.
    expect(stderr.split('\n').filter((line) => line !== '' && !/^ERPS \d+: /.test(line))).toEqual([]);
  });

  it('prints nothing without it', async () => {
    const { stdout, stderr } = await run(undefined);
    expect(JSON.parse(stdout.trim().split('\n').pop()!)).toEqual({ status: 'SERVING', refused: 'ERPS_HANDSHAKE' });
    expect(debugLines(stderr)).toEqual([]);
  });
});
