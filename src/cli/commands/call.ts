import type { Command } from 'commander';
import { ErpsHeadersError } from '../../errors/index.js';
import { validateHeaders } from '../../protocol/headers.js';
import { CLIENT_DEFAULTS } from '../../config/defaults.js';
import { runAction, withConnection, type CliEnvironment, type ExitRecord } from '../command-kit.js';
import { ExitCode, usageError } from '../errors.js';
import { addConnectionOptions, collectHeader, integer, patternOf, payloadOf, type ConnectionFlags } from '../options.js';
import { toJson } from '../output.js';

interface CallFlags extends ConnectionFlags {
  header?: Record<string, string>;
  timeout: number;
}

const PAYLOAD_HELP = 'the payload as JSON (quoted for the shell), or - to read it from stdin; none: null';
const PATTERN_HELP = 'the @MessagePattern / @EventPattern: a string, or an object pattern as JSON (\'{"cmd":"sum"}\')';

/** `--header` values, checked as the library checks them. */
export function headersOf(flags: { header?: Record<string, string> }): Record<string, string> | undefined {
  if (flags.header === undefined) return undefined;
  try {
    validateHeaders(flags.header);
  } catch (err) {
    if (err instanceof ErpsHeadersError) throw usageError(`--header: ${err.message}`);
    throw err;
  }
  return flags.header;
}

export function registerCall(program: Command, env: CliEnvironment, exit: ExitRecord): void {
  const { output } = env;
  addConnectionOptions(
    program
      .command('call')
      .summary('make one call, print the reply as JSON (one line per value)')
      .description('Make one call: each reply value is printed as one JSON line on stdout (a streamed reply prints one line per value).')
      .argument('<target>', 'the daemon: host:port, dns:name:port or srv:name')
      .argument('<pattern>', PATTERN_HELP)
      .argument('[json]', PAYLOAD_HELP)
      .option('--header <name=value>', 'a header the handler reads with ctx.getHeaders() (repeatable)', collectHeader)
      .option('--timeout <ms>', 'wait at most this long for the reply, and between the values of a stream (0: no limit)', integer(0), CLIENT_DEFAULTS.timeoutMs),
  )
    .addHelpText(
      'after',
      `
Examples:
  $ erps call 127.0.0.1:4000 sum '[1,2,3]' --certs ./certs --identifier calc --version 1.0.0
  6
  $ erps call 127.0.0.1:4000 '{"cmd":"count","version":1}' 3 --certs ./certs     # a stream: 1, 2, 3 on three lines
  $ echo '{"name":"ada"}' | erps call 127.0.0.1:4000 user.create - --header tenant=acme --timeout 10000
`,
    )
    .action(
      runAction(exit, output, async (command, flags: CallFlags, target: string, pattern: string, json: string | undefined) => {
        const route = patternOf(pattern);
        const headers = headersOf(flags);
        const data = await payloadOf(json, env.stdin);
        return withConnection(command, flags, target, output, async (connection) => {
          let interrupted = false;
          await new Promise<void>((resolve, reject) => {
            const cancel = connection.call(route, data, headers, flags.timeout, {
              next: (value) => output.out(toJson(value)),
              error: (err) => {
                stop();
                reject(err);
              },
              complete: () => {
                stop();
                resolve();
              },
            });
            // Ctrl-C during a stream: CANCEL it (the server tears the handler's stream down), then leave.
            const stop = env.onInterrupt(() => {
              interrupted = true;
              cancel();
              resolve();
            });
          });
          return interrupted ? 130 : ExitCode.OK;
        });
      }),
    );
}

export function registerCast(program: Command, env: CliEnvironment, exit: ExitRecord): void {
  const { output } = env;
  addConnectionOptions(
    program
      .command('cast')
      .summary('send one cast (an event, no reply)')
      .description('Send one cast (an @EventPattern message, no reply). Prints nothing; exit 0 once it is written.')
      .argument('<target>', 'the daemon: host:port, dns:name:port or srv:name')
      .argument('<pattern>', PATTERN_HELP)
      .argument('[json]', PAYLOAD_HELP)
      .option('--header <name=value>', 'a header the handler reads with ctx.getHeaders() (repeatable)', collectHeader),
  )
    .addHelpText(
      'after',
      `
Examples:
  $ erps cast 127.0.0.1:4000 audit '{"action":"login","user":"ada"}' --certs ./certs --identifier calc --version 1.0.0
  $ cat entry.json | erps cast 127.0.0.1:4000 audit - --certs ./certs
`,
    )
    .action(
      runAction(exit, output, async (command, flags: CallFlags, target: string, pattern: string, json: string | undefined) => {
        const route = patternOf(pattern);
        const headers = headersOf(flags);
        const data = await payloadOf(json, env.stdin);
        return withConnection(command, flags, target, output, (connection) => {
          connection.cast(route, data, headers);
          return Promise.resolve(ExitCode.OK);
        });
      }),
    );
}

interface PushFlags extends CallFlags {
  count?: number;
  call?: string;
  data?: string;
}

export function registerPushes(program: Command, env: CliEnvironment, exit: ExitRecord): void {
  const { output } = env;
  addConnectionOptions(
    program
      .command('pushes')
      .summary("print the server's pushes as JSON lines")
      .description('Print what the server pushes (ctx.push, server.push, server.broadcast) as JSON lines {"pattern":…,"data":…}, until interrupted (Ctrl-C, exit 0) or --count.')
      .argument('<target>', 'the daemon: host:port, dns:name:port or srv:name')
      .argument('[pattern]', 'only pushes of this pattern (a string, or an object pattern as JSON)')
      .option('--count <n>', 'exit 0 after this many pushes', integer(1))
      .option('--call <pattern>', 'make this call first on the same connection (e.g. a handler that subscribes the caller); its reply values go to stderr')
      .option('--data <json>', 'the payload of --call, as JSON')
      .option('--header <name=value>', 'a header of --call (repeatable)', collectHeader)
      .option('--timeout <ms>', 'how long --call may take (0: no limit)', integer(0), CLIENT_DEFAULTS.timeoutMs),
  )
    .addHelpText(
      'after',
      `
Examples:
  $ erps pushes 127.0.0.1:4000 --certs ./certs --identifier calc --version 1.0.0
  {"pattern":"news","data":{"headline":"…"}}
  $ erps pushes 127.0.0.1:4000 news --count 1 --call news.subscribe --data '{"topic":"tech"}' --certs ./certs
`,
    )
    .action(
      runAction(exit, output, async (command, flags: PushFlags, target: string, pattern: string | undefined) => {
        const only = pattern === undefined ? undefined : patternOf(pattern);
        const subscribe = flags.call === undefined ? undefined : patternOf(flags.call);
        const data = flags.data === undefined ? null : await payloadOf(flags.data);
        const headers = headersOf(flags);
        return withConnection(command, flags, target, output, async (connection) => {
          let seen = 0;
          return new Promise<ExitCode>((resolve, reject) => {
            const stop = env.onInterrupt(() => resolve(ExitCode.OK));
            if (!flags.json) output.err(`erps: connected to ${target}; printing pushes${only !== undefined ? ` of ${only}` : ''} (Ctrl-C to stop)`);
            connection.onPush((pushed, value) => {
              if (only !== undefined && pushed !== only) return;
              if (flags.count !== undefined && seen >= flags.count) return;
              seen++;
              output.out(toJson({ pattern: pushed, data: value }));
              if (seen === flags.count) {
                stop();
                resolve(ExitCode.OK);
              }
            });
            connection.onClose((reason) => {
              stop();
              reject(reason ?? new Error('the server closed the connection'));
            });
            if (subscribe !== undefined) {
              connection.call(subscribe, data, headers, flags.timeout, {
                next: (value) => output.err(`${flags.call}: ${toJson(value)}`),
                error: (err) => {
                  stop();
                  reject(err);
                },
                complete: () => undefined,
              });
            }
          });
        });
      }),
    );
}
