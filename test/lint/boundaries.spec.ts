import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/**
 * The layer rule in eslint.config.mjs: framework-free lower layers, and protocol/ and connection/ below the
 * rest. Each case lints one import at a virtual path with the real config and names the rule that must fire
 * (or null: the import is allowed).
 */
const FRAMEWORK = 'no-restricted-imports';
const LAYER = '@typescript-eslint/no-restricted-imports';

type Case = [file: string, from: string, fires: string | null];

const cases: Case[] = [
  // Lower layers import neither Nest nor rxjs (type-only imports included), also in directories not written yet.
  ...['protocol', 'connection', 'tls', 'errors', 'config'].flatMap((dir): Case[] => [
    [`src/${dir}/fixture.ts`, '@nestjs/common', FRAMEWORK],
    [`src/${dir}/fixture.ts`, '@nestjs/microservices', FRAMEWORK],
    [`src/${dir}/fixture.ts`, 'rxjs', FRAMEWORK],
    [`src/${dir}/fixture.ts`, 'rxjs/operators', FRAMEWORK],
  ]),
  ['src/client/dial.ts', '@nestjs/common', FRAMEWORK],
  ['src/server/session.ts', 'rxjs', FRAMEWORK],
  ['src/client/balancer/pick-first.ts', '@nestjs/core', FRAMEWORK],
  ['src/forward-context.ts', 'rxjs', FRAMEWORK],
  // The command-line client runs without Nest (test/cli checks what it loads, too).
  ['src/cli/fixture.ts', '@nestjs/common', FRAMEWORK],
  ['src/cli/commands/fixture.ts', 'rxjs', FRAMEWORK],
  ['src/protocol/fixture.ts', 'nestjs-erps', FRAMEWORK],
  ['src/protocol/fixture.ts', 'rxjsx', null],
  // The allow-list.
  ['src/nest/fixture.ts', '@nestjs/common', null],
  ['src/nest/fixture.ts', 'rxjs', null],
  ['src/server/erps-server.ts', '@nestjs/microservices', null],
  ['src/server/erps-context.ts', '@nestjs/microservices', null],
  ['src/client/erps-client.ts', 'rxjs', null],
  ['src/server/call-reply.ts', 'rxjs', null],
  ['src/server/call-reply.ts', '@nestjs/common', FRAMEWORK],
  ['src/server/dispatch.ts', 'rxjs', null],
  ['src/server/dispatch.ts', '@nestjs/core', FRAMEWORK],
  ['src/server/daemon.ts', 'rxjs', FRAMEWORK],
  ['src/client/channel.ts', 'rxjs', FRAMEWORK],
  // protocol/ sits below connection, tls, server, client and nest.
  ['src/protocol/fixture.ts', '../connection/connection.js', LAYER],
  ['src/protocol/fixture.ts', '../tls/index.js', LAYER],
  ['src/protocol/fixture.ts', '../server/session.js', LAYER],
  ['src/protocol/fixture.ts', '../client/dial.js', LAYER],
  ['src/protocol/fixture.ts', '../nest/erps-allow.js', LAYER],
  ['src/protocol/nested/fixture.ts', '../../client/dial.js', LAYER],
  ['src/protocol/fixture.ts', '../errors/index.js', null],
  ['src/protocol/fixture.ts', './frame.js', null],
  // connection/ sits below server, client and nest.
  ['src/connection/fixture.ts', '../server/session.js', LAYER],
  ['src/connection/fixture.ts', '../client/client-link.js', LAYER],
  ['src/connection/fixture.ts', '../nest/origin-guards.js', LAYER],
  ['src/connection/fixture.ts', '../protocol/frame.js', null],
  ['src/connection/fixture.ts', '../tls/index.js', null],
  // Above the layers, and outside src/, anything goes.
  ['src/server/session.ts', '../connection/connection.js', null],
  ['test/fixture.spec.ts', '@nestjs/common', null],
  ['sample-app/fixture.ts', 'rxjs', null],
];

interface Linted {
  filePath: string;
  messages: { ruleId: string | null; message: string }[];
}

describe('eslint layer boundaries', () => {
  let linted: Linted[];

  beforeAll(() => {
    const fixtures = cases.map(([filePath, from]) => ({ filePath, code: `import type { X } from '${from}';\nexport type Y = X;\n` }));
    const out = execFileSync(process.execPath, [join(__dirname, 'lint-fixtures.mjs')], { input: JSON.stringify(fixtures), encoding: 'utf8' });
    linted = JSON.parse(out) as Linted[];
  });

  it.each(cases.map((c, i) => [...c, i] as const))('%s importing %s: %s', (_file, _from, fires, index) => {
    const rules = linted[index]?.messages.map((m) => m.ruleId);
    expect(rules).toEqual(fires === null ? [] : [fires]);
  });

  it('says where the allow-list lives', () => {
    const protocol = linted.find((l) => l.filePath === 'src/protocol/fixture.ts');
    expect(protocol?.messages[0]?.message).toContain('FRAMEWORK_IMPORTERS in eslint.config.mjs');
  });
});
