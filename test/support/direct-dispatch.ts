import { INestMicroservice, LoggerService, ModuleMetadata } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Observable } from 'rxjs';
import { ErpsClient, ErpsClientOptions, ErpsServer, ErpsServerOptions } from 'nestjs-erps';
import { testCertificates } from './certs';

/**
 * Helpers for the direct-dispatch specs (issue 16): a real Nest microservice on an Erps daemon over mutual TLS
 * (loopback, port from the OS), handed to `server.enableDirectDispatch(app)` before listen(), after it, or never;
 * and a way to record everything a caller sees of one call, so two runs can be compared with toStrictEqual.
 */

/** When the test hands the app to the server: never (Nest's pipeline for everything), before app.listen() or after. */
export type DirectWhen = 'never' | 'before-listen' | 'after-listen';

export interface DirectAppOptions {
  when: DirectWhen;
  /** Runs after the app is created (and, with 'before-listen', after enableDirectDispatch), before listen(). */
  configure?: (app: INestMicroservice, server: ErpsServer) => void;
  /** Nest's logger for the app (default: none, Nest logs nothing). */
  logger?: LoggerService;
  server?: Partial<ErpsServerOptions>;
  client?: Partial<ErpsClientOptions>;
}

export interface DirectApp {
  app: INestMicroservice;
  server: ErpsServer;
  client: ErpsClient;
  close(): Promise<void>;
}

export async function startDirectApp(metadata: ModuleMetadata, options: DirectAppOptions): Promise<DirectApp> {
  const certs = await testCertificates();
  const builder = Test.createTestingModule(metadata);
  if (options.logger !== undefined) builder.setLogger(options.logger);
  const moduleRef = await builder.compile();
  const server = new ErpsServer({ host: '127.0.0.1', port: 0, tls: certs.server, identifier: 'direct', versions: '^1.0.0', ...options.server });
  const app = moduleRef.createNestMicroservice({ strategy: server, logger: options.logger ?? false });
  if (options.when === 'before-listen') server.enableDirectDispatch(app);
  options.configure?.(app, server);
  await app.listen();
  if (options.when === 'after-listen') server.enableDirectDispatch(app);
  const client = await directClient(server.address().port, options.client);
  return {
    app,
    server,
    client,
    close: async () => {
      await client.close();
      await app.close();
    },
  };
}

/** A connected client (certificate CN "alice") for an Erps daemon started by these helpers. */
export async function directClient(port: number, options: Partial<ErpsClientOptions> = {}): Promise<ErpsClient> {
  const certs = await testCertificates();
  const client = new ErpsClient({ host: '127.0.0.1', port, tls: certs.clients.alice, identifier: 'direct', version: '1.0.0', ...options });
  await client.connect();
  return client;
}

/** One thing a caller saw of a call, in order. */
export type Seen = { next: unknown } | { error: unknown } | { complete: true } | { timedOut: true };

/**
 * Everything a subscriber of `source$` sees: each value, then the error or the completion; `{ timedOut: true }`
 * when it neither failed nor completed within `timeoutMs` (so a broken call fails its test instead of hanging it).
 */
export function outcomeOf(source$: Observable<unknown>, timeoutMs = 3000): Promise<Seen[]> {
  return new Promise((resolve) => {
    const seen: Seen[] = [];
    let done = false;
    const finish = (last: Seen): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve([...seen, last]);
    };
    const timer = setTimeout(() => {
      subscription.unsubscribe();
      finish({ timedOut: true });
    }, timeoutMs);
    const subscription = source$.subscribe({
      next: (value) => seen.push({ next: value }),
      error: (error: unknown) => finish({ error: describeError(error) }),
      complete: () => finish({ complete: true }),
    });
  });
}

/** An error as a plain object: its class and own fields for Error instances (stack left out), the value otherwise. */
export function describeError(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const { stack: _stack, ...fields } = Object.fromEntries(Object.entries(error)) as Record<string, unknown>;
  return { errorClass: error.constructor.name, message: error.message, ...fields };
}

/** What a call that answered `value` looks like to its caller. */
export const answered = (...values: unknown[]): Seen[] => [...values.map((value) => ({ next: value })), { complete: true }];

/** What a call that failed with `error` (and no value before it) looks like to its caller. */
export const failedWith = (error: unknown): Seen[] => [{ error }];

/** Nest's answer to a denying guard. */
export const FORBIDDEN = { status: 'error', message: 'Forbidden resource' };

/** Nest's answer to anything that is not an RpcException, with no filter to shape it. */
export const INTERNAL = { status: 'error', message: 'Internal server error' };

export type PlanEntry = ReturnType<ErpsServer['dispatchPlan']>[number];

/** The dispatchPlan() entry of `pattern`; fails the test if there is none. */
export function planOf(server: ErpsServer, pattern: string): PlanEntry {
  const entry = server.dispatchPlan().find((candidate) => candidate.pattern === pattern);
  if (entry === undefined) throw new Error(`dispatchPlan() has no entry for "${pattern}": ${JSON.stringify(server.dispatchPlan())}`);
  return entry;
}

/** Asserts that `pattern` goes through Nest's pipeline, for a reason that matches `reason`. */
export function expectThroughNest(server: ErpsServer, pattern: string, kind: 'call' | 'event', reason: RegExp): void {
  expect(planOf(server, pattern)).toMatchObject({ pattern, kind, direct: false, reason: expect.stringMatching(reason) });
}

/** Asserts that `pattern` is called directly. */
export function expectDirect(server: ErpsServer, pattern: string, kind: 'call' | 'event'): void {
  expect(planOf(server, pattern)).toMatchObject({ pattern, kind, direct: true });
}
