// The API reports in etc/: the exported surface of 'nestjs-erps' (src/index.ts), 'nestjs-erps/testing'
// (src/testing/index.ts) and 'nestjs-erps/terminus' (src/terminus/index.ts), read by API Extractor from the built
// dist/*.d.ts (run `npm run build` first).
//   node scripts/api-report.mjs check    fails when a report differs from what the code exports (npm test)
//   node scripts/api-report.mjs update   rewrites the reports (npm run api:update); commit them with the change
import { CompilerState, Extractor, ExtractorConfig } from '@microsoft/api-extractor';
import { existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const CONFIGS = ['api-extractor.json', 'api-extractor.testing.json', 'api-extractor.otel.json', 'api-extractor.terminus.json'];

const mode = process.argv[2];
if (mode !== 'check' && mode !== 'update') {
  console.error('usage: node scripts/api-report.mjs check|update');
  process.exit(2);
}
const configs = CONFIGS.map((file) => ExtractorConfig.loadFileAndPrepare(join(root, file)));
const missing = configs.map((config) => config.mainEntryPointFilePath).filter((entry) => !existsSync(entry));
if (missing.length > 0) {
  console.error(`API report: ${missing.map((entry) => relative(root, entry)).join(', ')} not built: run \`npm run build\` first.`);
  process.exit(1);
}
// One TypeScript program for every entry point.
const compilerState = CompilerState.create(configs[0], { additionalEntryPoints: configs.slice(1).map((config) => config.mainEntryPointFilePath) });

const changed = [];
let failed = false;
for (const config of configs) {
  const result = Extractor.invoke(config, {
    localBuild: mode === 'update',
    compilerState,
    printApiReportDiff: true,
    messageCallback(message) {
      // The preamble is noise in npm test; "not copied" is replaced by the line below that says what to run.
      if (message.messageId === 'console-preamble' || message.messageId === 'console-api-report-not-copied') message.handled = true;
    },
  });
  if (result.apiReportChanged) changed.push(relative(root, join(config.reportFolder, config.reportConfigs[0].fileName)));
  // Findings about the API itself go into the report (api-extractor.json); an error means no report could be made.
  if (result.errorCount > 0) failed = true;
}

if (failed) {
  console.error('API Extractor failed (errors above).');
  process.exitCode = 1;
} else if (mode === 'check' && changed.length > 0) {
  console.error(`The public API differs from ${changed.join(' and ')} (diff above): run \`npm run api:update\` and commit the report with the change.`);
  process.exitCode = 1;
} else if (mode === 'update') {
  console.log(changed.length === 0 ? 'API reports unchanged.' : `API reports updated: ${changed.join(', ')}`);
} else {
  console.log(`API reports up to date: ${configs.map((config) => relative(root, join(config.reportFolder, config.reportConfigs[0].fileName))).join(', ')}`);
}
