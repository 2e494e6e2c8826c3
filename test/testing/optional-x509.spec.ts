/**
 * @peculiar/x509 is an optional peer dependency, needed only by the certificate helpers of `nestjs-erps/testing`:
 * the main entry never loads it, the testing entry loads it on first use, and without it the helpers fail with
 * an error that names the package to install.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const DIST = join(ROOT, 'dist');
const MESSAGE = 'nestjs-erps/testing needs @peculiar/x509: npm install -D @peculiar/x509';

type Testing = typeof import('../../src/testing/index');

/** Node's own error for a package that is not installed. */
function moduleNotFound(name: string): Error {
  return Object.assign(new Error(`Cannot find module '${name}'\nRequire stack:\n- ${__filename}`), { code: 'MODULE_NOT_FOUND' });
}

/** The testing entry (from source) in a registry where requiring `name` throws `error`. */
function testingWhere(name: string, error: Error): Testing {
  let testing: Testing | undefined;
  jest.isolateModules(() => {
    jest.doMock(name, () => {
      throw error;
    });
    testing = require('../../src/testing/index') as Testing;
  });
  return testing!;
}

/** Runs a CommonJS snippet in a fresh node and returns the JSON it prints on its last line. */
function runNode(cwd: string, script: string): unknown {
  const out = execFileSync(process.execPath, ['-e', script], { cwd, encoding: 'utf8', env: { ...process.env, NODE_PATH: '' } });
  return JSON.parse(out.trim().split('\n').pop()!);
}

const LOADED_X509 = `Object.keys(require.cache).some((file) => file.includes('/node_modules/@peculiar/x509/'))`;

afterEach(() => {
  jest.dontMock('@peculiar/x509');
});

describe('nestjs-erps/testing without @peculiar/x509', () => {
  it('imports, and each certificate helper rejects with an ErpsConfigError naming the package', async () => {
    const testing = testingWhere('@peculiar/x509', moduleNotFound('@peculiar/x509'));
    for (const attempt of [() => testing.createCertificateAuthority('ca'), () => testing.issueCertificate({} as never, { cn: 'alice' }), () => testing.createCrl({} as never, [])]) {
      const error = await attempt().then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(error).toMatchObject({ name: 'ErpsConfigError', code: 'ERPS_CONFIG', message: MESSAGE });
      expect((error as Error).cause).toMatchObject({ code: 'MODULE_NOT_FOUND' });
    }
  });

  it('generateDevCertificates rejects before writing anything', async () => {
    const testing = testingWhere('@peculiar/x509', moduleNotFound('@peculiar/x509'));
    const parent = mkdtempSync(join(tmpdir(), 'erps-no-x509-'));
    try {
      const dir = join(parent, 'certs');
      await expect(testing.generateDevCertificates({ dir })).rejects.toMatchObject({ code: 'ERPS_CONFIG', message: MESSAGE });
      expect(existsSync(dir)).toBe(false);
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });

  it('passes on other load failures as they are (a broken install is not a missing package)', async () => {
    const broken = moduleNotFound('tslib');
    const testing = testingWhere('@peculiar/x509', broken);
    await expect(testing.createCertificateAuthority('ca')).rejects.toBe(broken);
  });
});

describe('loading of @peculiar/x509 (built package, fresh node)', () => {
  beforeAll(() => {
    if (!existsSync(join(DIST, 'index.js'))) throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
  });

  it('the main entry never loads it', () => {
    const loaded = runNode(ROOT, `require(${JSON.stringify(join(DIST, 'index.js'))}); console.log(${LOADED_X509});`);
    expect(loaded).toBe(false);
  });

  it('the testing entry loads it on the first certificate, not on import', () => {
    const result = runNode(
      ROOT,
      `const testing = require(${JSON.stringify(join(DIST, 'testing', 'index.js'))});
       const onImport = ${LOADED_X509};
       testing.createCertificateAuthority('ca').then((ca) => console.log(JSON.stringify({ onImport, afterUse: ${LOADED_X509}, pem: ca.cert.startsWith('-----BEGIN CERTIFICATE-----') })));`,
    );
    expect(result).toEqual({ onImport: false, afterUse: true, pem: true });
  });

  it('in an app where it is not installed: the main entry works, the testing entry names the package', () => {
    // An app folder whose node_modules holds the built package and links to every installed package but @peculiar/*.
    const app = mkdtempSync(join(tmpdir(), 'erps-app-'));
    try {
      const modules = join(app, 'node_modules');
      const pkg = join(modules, 'nestjs-erps');
      mkdirSync(pkg, { recursive: true });
      cpSync(join(ROOT, 'package.json'), join(pkg, 'package.json'));
      cpSync(DIST, join(pkg, 'dist'), { recursive: true, filter: (source) => !source.endsWith('.map') });
      for (const name of readdirSync(join(ROOT, 'node_modules'))) {
        if (name === '@peculiar' || name === 'nestjs-erps' || name.startsWith('.')) continue;
        symlinkSync(join(ROOT, 'node_modules', name), join(modules, name));
      }
      // Through require() and through import (the generated ESM entry points), in the same fresh node.
      const result = runNode(
        app,
        `const outcome = (erps, testing) => testing.generateDevCertificates({ dir: 'certs' }).then(
           () => ({ ok: true }),
           (err) => ({ server: typeof erps.ErpsServer, config: err instanceof erps.ErpsConfigError, code: err.code, message: err.message }),
         );
         (async () => {
           const required = await outcome(require('nestjs-erps'), require('nestjs-erps/testing'));
           const imported = await outcome(await import('nestjs-erps'), await import('nestjs-erps/testing'));
           console.log(JSON.stringify({ required, imported }));
         })();`,
      );
      const expected = { server: 'function', config: true, code: 'ERPS_CONFIG', message: MESSAGE };
      expect(result).toEqual({ required: expected, imported: expected });
      expect(existsSync(join(app, 'certs'))).toBe(false);
    } finally {
      rmSync(app, { recursive: true, force: true });
    }
  });
});
