import { existsSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { ErpsConfigError } from '../../errors/index.js';
import { generateDevCertificates } from '../../testing/dev-certs.js';
import { commandFailed, runAction, type CliEnvironment, type ExitRecord } from '../command-kit.js';
import { ExitCode, usageError } from '../errors.js';
import { table, toJson } from '../output.js';

interface CertsFlags {
  client: string[];
  force?: boolean;
  json?: boolean;
}

const BASE_FILES = ['ca.crt', 'ca.key', 'server.crt', 'server.key', 'alice.crt', 'alice.key', 'bob.crt', 'bob.key', 'untrusted-ca.crt', 'untrusted-client.crt', 'untrusted-client.key'];

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** A path as short as it can be said from the working directory. */
function shown(path: string): string {
  const from = relative(process.cwd(), path);
  return from === '' ? '.' : from.startsWith('..') ? path : from.startsWith('.') ? from : `./${from}`;
}

export function registerCerts(program: Command, env: CliEnvironment, exit: ExitRecord): void {
  const { output } = env;
  program
    .command('certs')
    .summary('write development certificates')
    .description(
      'Write development certificates (the generator of nestjs-erps/testing): a dev CA, a server certificate for localhost, 127.0.0.1 and ::1, ' +
        'client certificates alice and bob (and --client NAMEs), an untrusted CA with a client of its own for negative tests. ' +
        'Keys are unencrypted: never for production. Existing files are kept unless --force. Needs @peculiar/x509 (npm install -D @peculiar/x509).',
    )
    .argument('[dir]', 'output folder', 'certs')
    .option('--client <name>', 'issue a client certificate NAME.crt/.key (CN=NAME) as well (repeatable)', collect, [])
    .option('--force', 'regenerate everything, even if the files exist')
    .option('--json', 'print the paths as JSON')
    .addHelpText(
      'after',
      `
Examples:
  $ npx erps certs ./certs
  $ npx erps certs ./certs --client billing --client ops     # adds billing.crt/.key and ops.crt/.key
  $ npx erps certs ./certs --force                           # new CA and certificates

Then: tls: { caFile: 'certs/ca.crt', certFile: 'certs/server.crt', keyFile: 'certs/server.key' } for the ErpsServer,
and --certs ./certs (ca.crt, alice.crt/.key) for erps itself.
`,
    )
    .action(
      runAction(exit, output, async (_command, flags: CertsFlags, dirArg: string) => {
        const { client, force, json } = flags;
        const dir = resolve(dirArg);
        const before = new Set(BASE_FILES.concat(client.flatMap((name) => [`${name}.crt`, `${name}.key`])).filter((file) => existsSync(join(dir, file))));
        let certs;
        try {
          certs = await generateDevCertificates({ dir, force: force === true, clients: client });
        } catch (err) {
          if (err instanceof ErpsConfigError && /@peculiar\/x509/.test(err.message)) {
            throw commandFailed(
              'erps certs needs @peculiar/x509, an optional peer dependency of nestjs-erps that is not installed',
              'install it in your app: npm install -D @peculiar/x509 (then run erps certs again)',
            );
          }
          if (err instanceof ErpsConfigError)
            throw usageError(err.message, /without its ca\.crt and ca\.key/.test(err.message) ? `regenerate the folder: npx erps certs ${shown(dir)} --force` : undefined);
          throw err;
        }
        // The generator keeps a complete folder (all but ca.key) unless forced, and then issues only missing clients.
        const baseKept = force !== true && BASE_FILES.every((file) => file === 'ca.key' || before.has(file));
        const kept = baseKept ? before : new Set<string>();
        const clientNames = Object.keys(certs.clients);
        if (json) {
          output.out(
            toJson({
              dir: certs.dir,
              ca: certs.caFile,
              server: certs.server,
              clients: certs.clients,
              untrustedClient: certs.untrustedClient,
              kept: [...kept].sort(),
            }),
          );
          return ExitCode.OK;
        }
        const d = shown(certs.dir);
        const generated = baseKept ? 'kept (--force to regenerate)' : 'written';
        output.out(`Development certificates in ${d}: ${generated}. Keys are unencrypted: never for production.`);
        for (const line of table(
          [
            ['ca.crt', 'the dev CA: the trust anchor of both ends (ca.key signs)'],
            ['server.crt/.key', 'the server: localhost, 127.0.0.1, ::1'],
            ...clientNames.map((name): [string, string] => [`${name}.crt/.key`, `a client, CN=${name}${kept.has(`${name}.crt`) ? ' (kept)' : ''}`]),
            ['untrusted-client.crt/.key', 'a client of another CA (untrusted-ca.crt): for negative tests'],
          ],
          '  ',
        )) {
          output.out(line);
        }
        output.out('');
        output.out('Server:');
        output.out(`  new ErpsServer({ port: 4000, tls: { caFile: '${d}/ca.crt', certFile: '${d}/server.crt', keyFile: '${d}/server.key' } })`);
        output.out('Client:');
        output.out(`  npx erps call 127.0.0.1:4000 <pattern> '<json>' --certs ${d}`);
        return ExitCode.OK;
      }),
    );
}
