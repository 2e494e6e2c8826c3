// ESLint flat config: typescript-eslint with type information, the layers of src/ as import rules, and
// eslint-config-prettier last (formatting is prettier's job alone). `npm run lint` runs it with `prettier --check`.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

// ---------------------------------------------------------------------------------------------------------------
// Layers. Lower layers of src/ are framework-free: no @nestjs/*, no rxjs. FRAMEWORK_IMPORTERS is the whole
// allow-list; every other file in src/ (protocol/, connection/, tls/, errors/, config/, ...) is held to it.
// The goal (shared/HOUSE.md) is src/nest/ alone: shorten the list as the adapters move there.
// ---------------------------------------------------------------------------------------------------------------
const FRAMEWORK_IMPORTERS = [
  { files: 'src/nest/**', may: ['@nestjs', 'rxjs'] },
  { files: 'src/server/erps-server.ts', may: ['@nestjs', 'rxjs'] },
  { files: 'src/server/erps-context.ts', may: ['@nestjs', 'rxjs'] },
  { files: 'src/client/erps-client.ts', may: ['@nestjs', 'rxjs'] },
  { files: 'src/terminus/**', may: ['@nestjs'] },
  { files: 'src/server/call-reply.ts', may: ['rxjs'] },
  { files: 'src/server/dispatch.ts', may: ['rxjs'] },
];

/** What each layer must not reach inside src/ (directories under src/, matched on relative import paths). */
const LAYERS = {
  'src/protocol': ['connection', 'tls', 'server', 'client', 'nest'],
  'src/connection': ['server', 'client', 'nest'],
  'src/observability': ['connection', 'server', 'client', 'nest'],
};

const FRAMEWORK = {
  '@nestjs': { regex: '^@nestjs/', message: 'Only the Nest adapters import @nestjs/* (FRAMEWORK_IMPORTERS in eslint.config.mjs).' },
  rxjs: { regex: '^rxjs(/|$)', message: 'Only the Nest adapters import rxjs (FRAMEWORK_IMPORTERS in eslint.config.mjs).' },
};
const SELF_IMPORT = { regex: '^nestjs-erps(/|$)', message: 'Inside src/, import modules by relative path, not through the package name.' };

/** `no-restricted-imports` for files that may import `may` of the framework packages. */
function frameworkRule(may) {
  const banned = Object.entries(FRAMEWORK).filter(([name]) => !may.includes(name));
  return ['error', { patterns: [...banned.map(([, pattern]) => pattern), SELF_IMPORT] }];
}

const layerConfigs = [
  { name: 'erps/layers: framework-free src', files: ['src/**/*.ts'], rules: { 'no-restricted-imports': frameworkRule([]) } },
  ...FRAMEWORK_IMPORTERS.map(({ files, may }) => ({
    name: `erps/layers: ${files} may import ${may.join(', ')}`,
    files: [files],
    rules: { 'no-restricted-imports': frameworkRule(may) },
  })),
  // A second rule (the typescript-eslint extension) so these never replace the framework options above.
  ...Object.entries(LAYERS).map(([layer, forbidden]) => ({
    name: `erps/layers: ${layer} does not import ${forbidden.join(', ')}`,
    files: [`${layer}/**/*.ts`],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: `^(\\.\\./)+(${forbidden.join('|')})(/|$)`,
              message: `${layer}/ sits below ${forbidden.join(', ')}: it must not import them (LAYERS in eslint.config.mjs).`,
            },
          ],
        },
      ],
    },
  })),
];

export default defineConfig(
  { ignores: ['dist/', 'build/', 'coverage/', 'etc/'] },
  { linterOptions: { reportUnusedDisableDirectives: 'error' } },
  {
    name: 'erps/typescript',
    files: ['**/*.ts'],
    extends: [js.configs.recommended, tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // `x as never` hands a value to Nest's differently-typed signatures on Nest 11 and 12: keep those casts.
      '@typescript-eslint/no-unnecessary-type-assertion': ['error', { typesToIgnore: ['never'] }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
      // `interface CodecOptions extends Partial<DecodeBudget> {}` names a public type.
      '@typescript-eslint/no-empty-object-type': ['error', { allowInterfaces: 'with-single-extends' }],
      // Rejecting with what a catch clause caught passes the original error on.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
      // Optional peers are loaded synchronously by the entry point that needs them (@peculiar/x509 on first use by
      // nestjs-erps/testing, @nestjs/terminus when nestjs-erps/terminus loads).
      '@typescript-eslint/no-require-imports': ['error', { allow: ['^@peculiar/x509$', '^reflect-metadata$', '^@nestjs/terminus$'] }],
    },
  },
  {
    // The gRPC benchmark (bench/tsconfig.json) needs bench/node_modules, which npm test does not install: linted
    // without type information so the result does not depend on whether `npm run bench` ran. The attack harness
    // is in tsconfig.json and keeps the type-checked rules.
    name: 'erps/bench-without-types',
    files: ['bench/**/*.ts'],
    ignores: ['bench/attack*.ts'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  {
    name: 'erps/tests',
    files: ['test/**/*.ts'],
    rules: {
      // jest's asymmetric matchers (expect.any, expect.stringContaining...) are typed `any`.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      // expect(fake.method) and methods destructured from fakes whose methods never use `this`.
      '@typescript-eslint/unbound-method': 'off',
      // jest.isolateModules() and jest.doMock() work on require().
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
  {
    name: 'erps/tests-and-bench',
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      // Hooks, factories and drivers written `async` for the signature they fill, awaiting nothing.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    name: 'erps/javascript',
    files: ['**/*.js', '**/*.cjs'],
    extends: [js.configs.recommended],
    languageOptions: { sourceType: 'commonjs', globals: globals.node },
  },
  {
    name: 'erps/esm-javascript',
    files: ['**/*.mjs'],
    extends: [js.configs.recommended],
    languageOptions: { sourceType: 'module', globals: globals.node },
  },
  ...layerConfigs,
  prettier,
);
