import { resolve } from 'node:path';
import { generateDevCertificates } from '../src/testing/dev-certs.js';

/** `npm run certs [-- --force] [-- --dir path]`: development certificates for the sample app and tests. */
async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const force = args.includes('--force');
  const dirAt = args.indexOf('--dir');
  const dir = dirAt >= 0 ? args[dirAt + 1] : resolve(__dirname, '../../certs');
  const certs = await generateDevCertificates({ dir, force });
  console.log(`Development certificates in ${certs.dir} (CA, server, clients alice and bob, untrusted client).`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
