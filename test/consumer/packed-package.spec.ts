import { execFile, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

/**
 * The package as a consumer gets it: `npm pack` of the built repo, unpacked into throwaway CommonJS and ESM apps
 * whose other dependencies are links into this repo's node_modules (no registry). Each app runs in its own `node`.
 */
const run = promisify(execFile);
const repo = join(__dirname, '..', '..');
const fixtures = join(__dirname, 'fixtures');

interface PackedFile {
  path: string;
}

describe('the packed package, installed in consumer apps', () => {
  let work: string;
  let tarball: string;
  let packed: string[];
  let manifest: { dependencies: Record<string, string>; peerDependencies: Record<string, string> };
  let cjsApp: string;
  let esmApp: string;

  beforeAll(async () => {
    if (!existsSync(join(repo, 'dist', 'index.mjs'))) throw new Error('dist/ is not built: run `npm run build` (npm test does)');
    work = mkdtempSync(join(tmpdir(), 'erps-consumer-'));
    // --ignore-scripts: the suite built dist/ already, and a rebuild here would rewrite files that other test
    // files are loading in parallel. That prepack builds dist/ is checked below, on package.json.
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: repo });
    const [result] = JSON.parse(stdout) as Array<{ filename: string; files: PackedFile[] }>;
    tarball = join(work, result!.filename);
    packed = result!.files.map((file) => file.path);
    manifest = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8'));
    [cjsApp, esmApp] = await Promise.all([consumerApp('cjs-app', 'commonjs', 'cjs-app.cjs'), consumerApp('esm-app', 'module', 'esm-app.mjs')]);
  });

  afterAll(() => {
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  /** An app folder with the tarball unpacked as node_modules/nestjs-erps and links for everything it needs. */
  async function consumerApp(name: string, type: 'commonjs' | 'module', fixture: string): Promise<string> {
    const app = join(work, name);
    const installed = join(app, 'node_modules', 'nestjs-erps');
    mkdirSync(installed, { recursive: true });
    await run('tar', ['-xzf', tarball, '-C', installed, '--strip-components=1']);
    for (const dependency of [...Object.keys(manifest.dependencies), ...Object.keys(manifest.peerDependencies)]) {
      const link = join(app, 'node_modules', dependency);
      mkdirSync(dirname(link), { recursive: true });
      symlinkSync(join(repo, 'node_modules', dependency), link, 'dir');
    }
    // The package's bin, linked as npm links it on install.
    mkdirSync(join(app, 'node_modules', '.bin'));
    symlinkSync(join('..', 'nestjs-erps', 'dist', 'cli', 'main.js'), join(app, 'node_modules', '.bin', 'erps'));
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name, private: true, type }));
    copyFileSync(join(fixtures, fixture), join(app, fixture));
    return app;
  }

  /**
   * Type-checks typed-consumer.ts in each app, as its package type makes it (ESM or CommonJS), in one compiler run;
   * returns the typings of the package each app's copy was read from.
   */
  async function typecheckApps(apps: string[]): Promise<string[][]> {
    for (const app of apps) copyFileSync(join(fixtures, 'typed-consumer.ts'), join(app, 'typed-consumer.ts'));
    const compilerOptions = { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', lib: ['es2022'], strict: true, noEmit: true, skipLibCheck: true, types: [] };
    const files = apps.map((app) => join(app, 'typed-consumer.ts'));
    writeFileSync(join(work, 'tsconfig.json'), JSON.stringify({ compilerOptions, files }));
    const tsc = join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
    const { stdout } = await run(process.execPath, [tsc, '-p', 'tsconfig.json', '--listFiles'], { cwd: work }).catch((err: Error & { stdout?: string }) => {
      throw new Error(`typed-consumer.ts does not compile:\n${err.stdout ?? String(err)}`);
    });
    const listed = stdout.split('\n');
    return apps.map((app) => {
      const installed = join(app, 'node_modules', 'nestjs-erps') + '/';
      return listed.filter((file) => file.startsWith(installed)).map((file) => file.slice(installed.length));
    });
  }

  async function runApp(app: string, fixture: string): Promise<Record<string, unknown>> {
    const certs = join(app, 'certs');
    const { stdout } = await run(process.execPath, [fixture, certs], { cwd: app, timeout: 20_000 });
    return JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown>;
  }

  it('builds dist/ on prepare (npm install from git) and on prepack (npm pack, npm publish)', () => {
    const scripts = (JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    expect(scripts.prepare).toMatch(/npm run build/);
    expect(scripts.prepack).toMatch(/npm run build/);
    expect(scripts.build).toMatch(/scripts\/write-esm-entries\.mjs/);
  });

  it('ships the CommonJS build, its ESM entry points and typings, without source maps or sources', () => {
    for (const file of [
      'dist/index.js',
      'dist/index.mjs',
      'dist/index.d.ts',
      'dist/index.d.mts',
      'dist/testing/index.js',
      'dist/testing/index.mjs',
      'dist/testing/index.d.mts',
      'dist/terminus/index.js',
      'dist/terminus/index.mjs',
      'dist/terminus/index.d.mts',
      'dist/cli/main.js',
      'package.json',
      'README.md',
    ]) {
      expect(packed).toContain(file);
    }
    expect(packed.filter((file) => file.endsWith('.map') || file.startsWith('src/') || file.startsWith('test/'))).toEqual([]);
    expect(statSync(tarball).size).toBeLessThan(1024 * 1024);
  });

  it('runs in CommonJS and native-ESM apps: a call over mutual TLS, one copy of each class', async () => {
    const [fromCjs, fromEsm] = await Promise.all([runApp(cjsApp, 'cjs-app.cjs'), runApp(esmApp, 'esm-app.mjs')]);

    const reply = { sum: 6, cn: 'alice', contextIsErpsContext: true };
    expect(fromCjs).toEqual({ reply, resolved: join(cjsApp, 'node_modules', 'nestjs-erps', 'dist', 'index.js') });
    expect(fromEsm).toEqual({
      reply,
      resolved: {
        import: `file://${join(esmApp, 'node_modules', 'nestjs-erps', 'dist', 'index.mjs')}`,
        require: join(esmApp, 'node_modules', 'nestjs-erps', 'dist', 'index.js'),
      },
      exportCount: expect.any(Number),
      differ: [],
      health: 'SERVING',
      recordIsRequiredErpsRecord: true,
      requiredRecordIsErpsRecord: true,
    });
    expect(fromEsm.exportCount).toBeGreaterThan(20);
  });

  it('npx erps in a consumer app: certificates, a daemon on them, a call, inspect with the expiry, bench with a latency table', async () => {
    expect(statSync(join(cjsApp, 'node_modules', 'nestjs-erps', 'dist', 'cli', 'main.js')).mode & 0o111).toBe(0o111);
    // npx finds the bin; the rest run it as a shell would, through the link (its shebang and mode), without npm's start-up.
    const certs = await run('npx', ['--no-install', 'erps', 'certs', './cli-certs'], { cwd: cjsApp, timeout: 30_000 });
    const erps = (...args: string[]) => run(join(cjsApp, 'node_modules', '.bin', 'erps'), args, { cwd: cjsApp, timeout: 30_000 });
    expect(certs.stdout).toMatch(/^Development certificates in \.\/cli-certs: written\./);
    copyFileSync(join(fixtures, 'cli-daemon.cjs'), join(cjsApp, 'cli-daemon.cjs'));
    const daemon = spawn(process.execPath, ['cli-daemon.cjs', './cli-certs'], { cwd: cjsApp, stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        daemon.stdout.once('data', (chunk: Buffer) => resolve((JSON.parse(chunk.toString()) as { port: number }).port));
        daemon.once('exit', (code) => reject(new Error(`the daemon exited with ${code}`)));
      });
      const target = `127.0.0.1:${port}`;
      const [call, inspect, bench] = await Promise.all([
        erps('call', target, 'sum', '[1,2,3]', '--certs', './cli-certs'),
        erps('inspect', target, '--certs', './cli-certs'),
        erps('bench', target, 'sum', '[1,2,3]', '--certs', './cli-certs', '--concurrency', '2', '--duration', '0.3'),
      ]);
      expect(call.stdout).toBe('6\n');
      expect(inspect.stdout).toMatch(/^ {2}valid +\S+ → \S+ \(expires in \d+ days\)$/m);
      expect(inspect.stdout).toMatch(/^handshake +accepted/m);
      expect(bench.stdout).toMatch(/^ {2}latency\n {4}min +[\d.]+ ms\n {4}mean .*\n {4}p50 .*\n {4}p90 .*\n {4}p99 .*\n {4}max /m);
    } finally {
      daemon.kill('SIGTERM');
    }
  });

  it('typings resolve through exports (.d.mts under import, .d.ts under require) and keep options typed', async () => {
    const [cjsTypings, esmTypings] = await typecheckApps([cjsApp, esmApp]);
    expect(cjsTypings).toEqual(expect.arrayContaining(['dist/index.d.ts', 'dist/testing/index.d.ts', 'dist/terminus/index.d.ts']));
    expect(cjsTypings?.filter((file) => file.endsWith('.d.mts'))).toEqual([]);
    expect(esmTypings).toEqual(expect.arrayContaining(['dist/index.d.mts', 'dist/testing/index.d.mts', 'dist/terminus/index.d.mts']));
  });
});
