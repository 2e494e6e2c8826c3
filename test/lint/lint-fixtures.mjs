// Lints source strings at virtual paths with the project's eslint.config.mjs, without type information (so the
// files need not exist). A plain Node script because jest cannot load ESLint's ESM config; boundaries.spec.ts
// runs it. Input on stdin: [{ filePath, code }] with paths relative to the repository; output on stdout:
// [{ filePath, messages: [{ ruleId, message }] }].
import { text } from 'node:stream/consumers';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';

const root = fileURLToPath(new URL('../..', import.meta.url));
const eslint = new ESLint({ cwd: root, overrideConfig: [{ ...tseslint.configs.disableTypeChecked, files: ['**/*.ts'] }] });
const fixtures = JSON.parse(await text(process.stdin));
const results = [];
for (const { filePath, code } of fixtures) {
  const [result] = await eslint.lintText(code, { filePath: join(root, filePath) });
  results.push({ filePath, messages: result.messages.map(({ ruleId, message }) => ({ ruleId, message })) });
}
process.stdout.write(JSON.stringify(results));
