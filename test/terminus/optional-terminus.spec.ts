/**
 * @nestjs/terminus is an optional peer dependency, needed only by `nestjs-erps/terminus`: the main entry never
 * loads it, and without it `nestjs-erps/terminus` fails to load with an error that names the package to install.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const DIST = join(ROOT, 'dist');
const MESSAGE = 'nestjs-erps/terminus needs @nestjs/terminus (11 or 12): npm install @nestjs/terminus';

/** Node's own error for a package that is not installed. */
function moduleNotFound(name: string): Error {
  return Object.assign(new Error(`Cannot find module '${name}'\nRequire stack:\n- ${__filename}`), { code: 'MODULE_NOT_FOUND' });
}

/** What loading the terminus entry (from source) throws in a registry where requiring @nestjs/terminus throws `error`. */
function loadingTerminusWhere(error: Error): unknown {
  let thrown: unknown;
  jest.isolateModules(() => {
    jest.doMock('@nestjs/terminus', () => {
      throw error;
    });
    try {
      require('../../src/terminus/index');
    } catch (err) {
      thrown = err;
    }
  });
  return thrown;
}

/** Runs a CommonJS snippet in a fresh node and returns the JSON it prints on its last line. */
function runNode(cwd: string, script: string): unknown {
  const out = execFileSync(process.execPath, ['-e', script], { cwd, encoding: 'utf8', env: { ...process.env, NODE_PATH: '' } });
  return JSON.parse(out.trim().split('\n').pop()!);
}

afterEach(() => {
  jest.dontMock('@nestjs/terminus');
});

describe('nestjs-erps/terminus without @nestjs/terminus', () => {
  it('fails to load with an ErpsConfigError naming the package', () => {
    const error = loadingTerminusWhere(moduleNotFound('@nestjs/terminus'));
    expect(error).toMatchObject({ name: 'ErpsConfigError', code: 'ERPS_CONFIG', message: MESSAGE });
    expect((error as Error).cause).toMatchObject({ code: 'MODULE_NOT_FOUND' });
  });

  it('passes on other load failures as they are (a broken install is not a missing package)', () => {
    const broken = moduleNotFound('@nestjs/common');
    expect(loadingTerminusWhere(broken)).toBe(broken);
  });
});

describe('loading of @nestjs/terminus (built package, fresh node)', () => {
  beforeAll(() => {
    if (!existsSync(join(DIST, 'terminus', 'index.js'))) throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
  });

  it('the main entry loads nothing of nestjs-erps/terminus; the terminus entry works where the package is installed', () => {
    const result = runNode(
      ROOT,
      `require(${JSON.stringify(join(DIST, 'index.js'))});
       const loaded = () => Object.keys(require.cache).some((file) => file.includes('/dist/terminus/'));
       const byMain = loaded();
       const terminus = require(${JSON.stringify(join(DIST, 'terminus', 'index.js'))});
       import(${JSON.stringify(join(DIST, 'terminus', 'index.mjs'))}).then((esm) =>
         console.log(JSON.stringify({ byMain, indicator: typeof terminus.ErpsHealthIndicator, same: esm.ErpsHealthIndicator === terminus.ErpsHealthIndicator })));`,
    );
    expect(result).toEqual({ byMain: false, indicator: 'function', same: true });
  });

  it('in an app where it is not installed: the main entry works, the terminus entry names the package', () => {
    // An app folder whose node_modules holds the built package and links to every installed package but @nestjs/terminus.
    const app = mkdtempSync(join(tmpdir(), 'erps-app-'));
    try {
      const modules = join(app, 'node_modules');
      const pkg = join(modules, 'nestjs-erps');
      mkdirSync(pkg, { recursive: true });
      cpSync(join(ROOT, 'package.json'), join(pkg, 'package.json'));
      cpSync(DIST, join(pkg, 'dist'), { recursive: true, filter: (source) => !source.endsWith('.map') });
      for (const name of readdirSync(join(ROOT, 'node_modules'))) {
        if (name === '@nestjs' || name === 'nestjs-erps' || name.startsWith('.')) continue;
        symlinkSync(join(ROOT, 'node_modules', name), join(modules, name));
      }
      mkdirSync(join(modules, '@nestjs'));
      for (const name of readdirSync(join(ROOT, 'node_modules', '@nestjs'))) {
        if (name !== 'terminus') symlinkSync(join(ROOT, 'node_modules', '@nestjs', name), join(modules, '@nestjs', name));
      }
      // Through require() and through import (the generated ESM entry points), in the same fresh node.
      const result = runNode(
        app,
        `const outcome = (erps, load) => load().then(
           () => ({ loaded: true }),
           (err) => ({ server: typeof erps.ErpsServer, config: err instanceof erps.ErpsConfigError, code: err.code, message: err.message }),
         );
         (async () => {
           const required = await outcome(require('nestjs-erps'), async () => require('nestjs-erps/terminus'));
           const imported = await outcome(await import('nestjs-erps'), () => import('nestjs-erps/terminus'));
           console.log(JSON.stringify({ required, imported }));
         })();`,
      );
      const expected = { server: 'function', config: true, code: 'ERPS_CONFIG', message: MESSAGE };
      expect(result).toEqual({ required: expected, imported: expected });
    } finally {
      rmSync(app, { recursive: true, force: true });
    }
  });
});
