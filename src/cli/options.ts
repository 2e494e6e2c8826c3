import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { CLIENT_DEFAULTS, COMMON_DEFAULTS } from '../config/defaults.js';
import { CODEC_NAMES, type CodecName } from '../protocol/codec.js';
import type { CliConnectOptions, CliTarget, CliTlsFiles } from './cli-connection.js';
import { type Attempt, usageError } from './errors.js';
import type { Output } from './output.js';

/** The options every command that connects takes (commander's parsed values). */
export interface ConnectionFlags {
  ca?: string;
  cert?: string;
  key?: string;
  certs?: string;
  serverName?: string;
  plain?: boolean;
  identifier: string;
  version: string;
  codec: CodecName;
  connectTimeout: number;
  json?: boolean;
}

/** The connect timeout of the CLI: shorter than the library's, a person is waiting. */
export const CLI_CONNECT_TIMEOUT_MS = 5000;

/** An integer option ≥ `min`. */
export function integer(min: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer ≥ ${min}, got "${value}"`);
    return n;
  };
}

/** A number option > 0 (or ≥ 0 with `zero`). */
export function positive(zero = false): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < 0 || (!zero && n === 0)) throw new InvalidArgumentError(`expected a number ${zero ? '≥ 0' : '> 0'}, got "${value}"`);
    return n;
  };
}

/** Adds the connection options (certificates, handshake, --json) to `command`. */
export function addConnectionOptions(command: Command): Command {
  return command
    .addOption(new Option('--ca <file>', "CA certificate (PEM) that signs the server's certificate").env('ERPS_CA'))
    .addOption(new Option('--cert <file>', 'client certificate (PEM)').env('ERPS_CERT'))
    .addOption(new Option('--key <file>', 'private key of the client certificate (PEM)').env('ERPS_KEY'))
    .option('--certs <dir>', 'a folder written by `erps certs`: ca.crt, and client.crt/.key (else alice.crt/.key); --ca/--cert/--key override single files')
    .option('--server-name <name>', 'the name the server certificate must carry (and SNI), when the host you dial is not one of its names')
    .option('--plain', "plain TCP, no TLS (a server with transport 'tcp'): no encryption, no peer identity; development only")
    .option('--identifier <id>', "the server's identifier (HELLO)", COMMON_DEFAULTS.identifier)
    .option('--version <semver>', "this client's version (HELLO), checked against the server's range", CLIENT_DEFAULTS.version)
    .addOption(new Option('--codec <codec>', 'payload codec').choices(CODEC_NAMES).default(COMMON_DEFAULTS.codec))
    .option('--connect-timeout <ms>', 'TCP + TLS + handshake must finish within this', integer(1), CLI_CONNECT_TIMEOUT_MS)
    .option('--json', 'machine-readable output; errors as one JSON object on stderr');
}

/**
 * `host:port` → { host, port }; `[::1]:port` for IPv6; `dns:name:port` and `srv:name` are looked up when the command
 * connects (the first address found is used; the name is the one the certificate must carry).
 */
export function parseTarget(target: string): CliTarget {
  const dns = /^dns:([^:]+):(\d+)$/i.exec(target);
  if (dns) return { host: dns[1]!, port: checkedPort(target, Number(dns[2])), discover: { dns: dns[1]!, port: Number(dns[2]) } };
  const srv = /^srv:([^:]+)$/i.exec(target);
  if (srv) return { host: srv[1]!, port: 0, discover: { srv: srv[1]! } };
  if (/^(dns|srv):/i.test(target)) throw usageError(`"${target}" is not a target`, 'give dns:name:port (A/AAAA records) or srv:name (SRV records), e.g. dns:calc.internal:4000');
  const match = /^\[([^\]]+)\]:(\d+)$/.exec(target) ?? /^([^:[\]]+):(\d+)$/.exec(target);
  const port = match ? Number(match[2]) : NaN;
  if (!match || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw usageError(`"${target}" is not a target`, 'give the server as host:port (e.g. 127.0.0.1:4000, localhost:4000, [::1]:4000)');
  }
  const host = match[1]!;
  if (target.startsWith('[') && isIP(host) !== 6) throw usageError(`"${host}" is not an IPv6 address`, 'give the server as host:port, or [ipv6]:port');
  return { host, port };
}

function checkedPort(target: string, port: number): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw usageError(`"${target}": the port must be 1..65535`, 'e.g. dns:calc.internal:4000');
  return port;
}

/** The certificates to use, from --ca/--cert/--key, then --certs DIR, then ERPS_CA/ERPS_CERT/ERPS_KEY. */
export function resolveTlsFiles(command: Command, flags: ConnectionFlags): CliTlsFiles {
  const fromCli = (name: 'ca' | 'cert' | 'key'): string | undefined => (command.getOptionValueSource(name) === 'cli' ? flags[name] : undefined);
  const fromEnv = (name: 'ca' | 'cert' | 'key'): string | undefined => (command.getOptionValueSource(name) === 'env' ? flags[name] : undefined);
  let dirFiles: Partial<CliTlsFiles> = {};
  if (flags.certs !== undefined) {
    const dir = flags.certs;
    if (!existsSync(dir)) throw usageError(`--certs ${dir}: no such folder`, 'create development certificates there with: npx erps certs ' + dir);
    const client = ['client', 'alice'].find((name) => existsSync(join(dir, `${name}.crt`)) && existsSync(join(dir, `${name}.key`)));
    dirFiles = { caFile: join(dir, 'ca.crt') };
    if (client !== undefined) dirFiles = { ...dirFiles, certFile: join(dir, `${client}.crt`), keyFile: join(dir, `${client}.key`) };
  }
  const files = {
    caFile: fromCli('ca') ?? dirFiles.caFile ?? fromEnv('ca'),
    certFile: fromCli('cert') ?? dirFiles.certFile ?? fromEnv('cert'),
    keyFile: fromCli('key') ?? dirFiles.keyFile ?? fromEnv('key'),
  };
  const missing = (['caFile', 'certFile', 'keyFile'] as const).filter((name) => files[name] === undefined);
  if (missing.length > 0) {
    const names = missing.map((name) => ({ caFile: '--ca', certFile: '--cert', keyFile: '--key' })[name]).join(', ');
    throw usageError(
      `mutual TLS needs a CA, a client certificate and its key; missing: ${names}`,
      "pass --certs DIR (a folder written by `npx erps certs DIR`), or --ca, --cert and --key (or set ERPS_CA, ERPS_CERT, ERPS_KEY); --plain for a server with transport 'tcp'",
    );
  }
  const flagOf = { caFile: '--ca', certFile: '--cert', keyFile: '--key' } as const;
  for (const name of ['caFile', 'certFile', 'keyFile'] as const) {
    const file = files[name]!;
    try {
      accessSync(file, constants.R_OK);
    } catch (err) {
      const why = (err as { code?: string }).code === 'ENOENT' ? 'no such file' : 'cannot be read';
      throw usageError(
        `${flagOf[name]} ${file}: ${why}`,
        flags.certs !== undefined && files[name] === dirFiles[name] ? `is ${flags.certs} a folder written by \`npx erps certs\`?` : undefined,
      );
    }
  }
  return files as CliTlsFiles;
}

/** Everything `connect()` needs, from the parsed options; warns on stderr under --plain, as the library does. */
export function connectOptions(command: Command, flags: ConnectionFlags, output: Output): CliConnectOptions {
  if (flags.plain) {
    output.err('erps: --plain: plain TCP, no encryption, no peer identity. For development only.');
    return { tls: undefined, identifier: flags.identifier, version: flags.version, codec: flags.codec, connectTimeoutMs: flags.connectTimeout };
  }
  return {
    tls: resolveTlsFiles(command, flags),
    serverName: flags.serverName,
    identifier: flags.identifier,
    version: flags.version,
    codec: flags.codec,
    connectTimeoutMs: flags.connectTimeout,
  };
}

/** What explain() needs to advise on a failed attempt. */
export function attemptOf(target: string, flags: Partial<ConnectionFlags>): Attempt {
  return { where: target, plain: flags.plain === true, version: flags.version ?? '' };
}

/**
 * A pattern as given: a string as it is, or a JSON object (`{"cmd":"sum"}`) turned into the route Nest matches
 * handlers on (keys sorted, as @nestjs/microservices' transformPatternToRoute does).
 */
export function patternOf(pattern: string): string {
  const trimmed = pattern.trim();
  if (!trimmed.startsWith('{')) return pattern;
  let parsed: unknown;
  try {
    parsed = JSON.parse(trimmed);
  } catch (err) {
    throw usageError(`the pattern looks like JSON but does not parse: ${(err as Error).message}`, 'quote object patterns for the shell: \'{"cmd":"sum"}\'');
  }
  return route(parsed);
}

function route(value: unknown): string {
  if (typeof value === 'string' || typeof value === 'number') return `${value}`;
  if (typeof value !== 'object' || value === null) return String(value);
  const escape = (s: string): string => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
  const parts = Object.keys(value)
    .sort((a, b) => a.localeCompare(b))
    .map((key) => {
      const item = (value as Record<string, unknown>)[key];
      return `"${escape(key)}":${typeof item === 'string' ? `"${escape(route(item))}"` : route(item)}`;
    });
  return `{${parts.join(',')}}`;
}

/** The payload: the JSON argument, `-` for JSON on stdin, null when there is none. */
export async function payloadOf(json: string | undefined, stdin: NodeJS.ReadableStream = process.stdin): Promise<unknown> {
  if (json === undefined) return null;
  const text = json === '-' ? await readAll(stdin) : json;
  const where = json === '-' ? 'stdin' : 'the payload argument';
  try {
    return JSON.parse(text);
  } catch (err) {
    throw usageError(`${where} is not JSON: ${(err as Error).message}`, "give the payload as JSON, quoted for the shell: '[1,2,3]', '\"text\"', '{\"a\":1}'");
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}

/** `--header k=v` (repeatable) → headers. */
export function collectHeader(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const at = value.indexOf('=');
  if (at <= 0) throw new InvalidArgumentError(`expected name=value, got "${value}"`);
  return { ...previous, [value.slice(0, at)]: value.slice(at + 1) };
}

/** The version of this package, from its package.json. */
export function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
