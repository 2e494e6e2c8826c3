import { isObservable, Observable } from 'rxjs';
import { catchError } from 'rxjs/operators';

/**
 * Direct dispatch: a handler that no guard, pipe, interceptor, custom parameter decorator or pre-request hook applies
 * to is called straight, without Nest's per-call pipeline (an async wrapper per stage, Promise.all over the
 * parameters). What applies is read once per handler from Nest's own context creators and metadata, given the
 * application's container; anything this file does not recognise keeps the handler on Nest's path. Exception
 * filters do not stand in the way: they act only on a failure, and a failure goes through the very exceptions
 * handler Nest builds for that method (its filters, with the same arguments host), so a caller sees exactly what it
 * saw before.
 */

/** How a pattern is dispatched, and why not directly (`ErpsServer.dispatchPlan()`). */
export interface ErpsDispatchPlanEntry {
  pattern: string;
  kind: 'call' | 'event';
  direct: boolean;
  /** Why the pattern goes through Nest's pipeline (absent when direct). */
  reason?: string;
}

/** A handler as the dispatcher calls it; a direct one also says whether it reads its context. */
export type DirectHandler = ((data: unknown, ctx: unknown) => unknown) & {
  isEventHandler?: boolean;
  /** False: the method has no `@Ctx()`; the dispatcher may pass undefined instead of building one. */
  usesContext: boolean;
};

/** A controller method, as Nest's context creators take it. */
type Method = (...args: unknown[]) => unknown;

/** What the plan needs from the server. */
export interface DirectDispatchServer {
  /** The server object itself (found among a hybrid app's microservices). */
  readonly instance: unknown;
  readonly transportId?: unknown;
  readonly propagatesEventHandlerErrors?: boolean;
  normalizePattern(pattern: unknown): string;
}

// Nest's metadata keys (stable across Nest 10–12; the tests fail if they stop matching).
const PATTERN_METADATA = 'microservices:pattern';
const PATTERN_HANDLER_METADATA = 'microservices:handler_type';
const TRANSPORT_METADATA = 'microservices:transport';
const ROUTE_ARGS_METADATA = '__routeArguments__';
const CUSTOM_ROUTE_ARGS_METADATA = '__customRouteArgs__';
const EXCEPTION_FILTERS_METADATA = '__exceptionFilters__';
const PATTERN_HANDLER_EVENT = 2;
const PARAM_PAYLOAD = 3;
const PARAM_CONTEXT = 6;

interface ParamArg {
  index: number;
  type: number;
  data: unknown;
  pipes?: unknown[];
}

interface InstanceWrapperLike {
  instance: object | null | undefined;
  isDependencyTreeStatic(): boolean;
}

interface ModuleLike {
  controllers: Map<unknown, InstanceWrapperLike>;
}

interface ApplicationConfigLike {
  getGlobalPreRequestHooks?(): unknown[];
}

interface ContainerLike {
  getModules(): Map<string, ModuleLike>;
  applicationConfig?: ApplicationConfigLike;
}

/** The parts of a Nest application (microservice, hybrid HTTP app, TestingModule) the plan reads, all by name. */
interface ApplicationLike {
  container?: ContainerLike;
  serverInstance?: unknown;
  applicationConfig?: ApplicationConfigLike;
  microservices?: ApplicationLike[];
}

interface ExceptionsHandlerLike {
  handle(err: unknown, host: unknown, reportUnhandled?: boolean): Observable<unknown>;
}

interface NestPieces {
  enhancers: Array<{ kind: string; article: string; count(instance: object, callback: Method, moduleKey: string): number }>;
  filterCount(instance: object, callback: Method, moduleKey: string): number;
  exceptionsHandler(instance: object, callback: Method, moduleKey: string): ExceptionsHandlerLike;
  hostFor(args: unknown[]): unknown;
  methodNames(prototype: object): string[];
}

/** One @MessagePattern / @EventPattern method the container holds, for one wire pattern. */
interface Definition {
  instance: object;
  methodKey: string;
  moduleKey: string;
  event: boolean;
  static: boolean;
}

/** The application's container: what Nest keeps on every application context (protected, so read by name). */
export function containerOf(app: unknown): ContainerLike | undefined {
  const container = (app as ApplicationLike | null)?.container;
  return container !== undefined && typeof container.getModules === 'function' ? container : undefined;
}

/**
 * The global enhancers `server`'s handlers are built with: those of the microservice that runs it. In a hybrid app
 * that is not always the HTTP app's (a microservice connected without inheritAppConfig has its own), so the
 * microservice is found by its server, in the app or among the app's connected microservices.
 */
function applicationConfigFor(app: ApplicationLike, server: unknown, container: ContainerLike): ApplicationConfigLike | undefined {
  if (app.serverInstance === server && app.applicationConfig !== undefined) return app.applicationConfig;
  const microservice = app.microservices?.find((candidate) => candidate.serverInstance === server);
  if (microservice?.applicationConfig !== undefined) return microservice.applicationConfig;
  return container.applicationConfig;
}

/**
 * Plans every pattern in `handlers` (Nest's registered handlers, by normalized pattern): the direct handler where
 * one is allowed, and for every pattern the entry `dispatchPlan()` reports.
 */
export function planDirectDispatch(
  app: object,
  server: DirectDispatchServer,
  handlers: Map<string, { isEventHandler?: boolean; next?: unknown }>,
): { direct: Map<string, DirectHandler>; plan: ErpsDispatchPlanEntry[] } {
  const direct = new Map<string, DirectHandler>();
  const plan: ErpsDispatchPlanEntry[] = [];
  const container = containerOf(app)!;
  const config = applicationConfigFor(app, server.instance, container);
  let nest: NestPieces | undefined;
  let nestError: string | undefined;
  try {
    nest = loadNestPieces(container, config);
  } catch (err) {
    nestError = `this Nest version's context creators could not be loaded (${(err as Error).message})`;
  }
  const definitions = nest === undefined ? new Map<string, Definition[]>() : collectDefinitions(container, server, nest);
  const preRequestHooks = config?.getGlobalPreRequestHooks?.() ?? [];
  for (const [pattern, handler] of handlers) {
    const kind = handler.isEventHandler === true ? 'event' : 'call';
    const found = definitions.get(pattern) ?? [];
    let reason: string | undefined = nestError;
    if (reason === undefined) {
      if (preRequestHooks.length > 0) reason = 'a pre-request hook is registered';
      else if (found.length === 0) reason = 'no controller method found for it (added by hand?)';
      else if (found.length > 1) reason = kind === 'event' ? 'several event handlers share it' : 'several methods declare it';
      else if (found[0]!.event !== (kind === 'event') || handler.next !== undefined) reason = 'its registered handler does not match its method';
      else reason = whyNotDirect(found[0]!, nest!);
    }
    if (reason === undefined) {
      const fn = directHandler(found[0]!, nest!, kind === 'event' && server.propagatesEventHandlerErrors !== true);
      fn.isEventHandler = handler.isEventHandler;
      direct.set(pattern, fn);
      plan.push({ pattern, kind, direct: true });
    } else {
      plan.push({ pattern, kind, direct: false, reason });
    }
  }
  return { direct, plan };
}

function collectDefinitions(container: ContainerLike, server: DirectDispatchServer, nest: NestPieces): Map<string, Definition[]> {
  const definitions = new Map<string, Definition[]>();
  for (const [moduleKey, module] of container.getModules()) {
    for (const wrapper of module.controllers.values()) {
      const instance = wrapper.instance;
      if (instance === null || typeof instance !== 'object') continue;
      const prototype = Object.getPrototypeOf(instance) as Record<string, unknown>;
      for (const methodKey of nest.methodNames(prototype)) {
        const callback = prototype[methodKey];
        if (typeof callback !== 'function') continue;
        const patterns = Reflect.getMetadata(PATTERN_METADATA, callback) as unknown[] | undefined;
        if (patterns === undefined) continue;
        const transport = Reflect.getMetadata(TRANSPORT_METADATA, callback) as unknown;
        if (transport !== undefined && server.transportId !== undefined && transport !== server.transportId) continue;
        const event = Reflect.getMetadata(PATTERN_HANDLER_METADATA, callback) === PATTERN_HANDLER_EVENT;
        for (const pattern of patterns) {
          const key = server.normalizePattern(pattern);
          const list = definitions.get(key) ?? [];
          list.push({ instance, methodKey, moduleKey, event, static: wrapper.isDependencyTreeStatic() });
          definitions.set(key, list);
        }
      }
    }
  }
  return definitions;
}

function whyNotDirect(definition: Definition, nest: NestPieces): string | undefined {
  if (!definition.static) return 'its controller is request-scoped (or depends on a request-scoped provider)';
  const callback = methodOf(definition);
  for (const enhancer of nest.enhancers) {
    if (enhancer.count(definition.instance, callback, definition.moduleKey) > 0) return `${enhancer.article} ${enhancer.kind} applies`;
  }
  for (const param of paramArgs(definition)) {
    if (param.custom) return 'a custom parameter decorator reads its arguments';
    if (param.pipes > 0) return 'a pipe applies to a parameter';
    if (param.type !== PARAM_PAYLOAD && param.type !== PARAM_CONTEXT) return `parameter type ${param.type} is not a payload or context`;
  }
  return undefined;
}

function methodOf(definition: Definition): Method {
  return (Object.getPrototypeOf(definition.instance) as Record<string, Method>)[definition.methodKey]!;
}

/** The method's parameters as Nest reads them (default: the payload as the only argument). */
function paramArgs(definition: Definition): Array<{ index: number; type: number; data: unknown; custom: boolean; pipes: number }> {
  const metadata = Reflect.getMetadata(ROUTE_ARGS_METADATA, definition.instance.constructor, definition.methodKey) as Record<string, ParamArg> | undefined;
  if (metadata === undefined) return [{ index: 0, type: PARAM_PAYLOAD, data: undefined, custom: false, pipes: 0 }];
  return Object.entries(metadata).map(([key, arg]) => ({
    index: arg.index,
    type: Number(key.split(':')[0]),
    data: arg.data,
    custom: key.includes(CUSTOM_ROUTE_ARGS_METADATA),
    pipes: arg.pipes?.length ?? 0,
  }));
}

/** The method, called as Nest would call it once its (empty) pipeline is done. */
function directHandler(definition: Definition, nest: NestPieces, reportUnhandled: boolean): DirectHandler {
  const instance = definition.instance;
  const method = methodOf(definition);
  const exceptions = nest.exceptionsHandler(instance, method, definition.moduleKey);
  const params = paramArgs(definition);
  const argsLength = Math.max(0, ...params.map((p) => p.index + 1));
  // An exception filter may read the context from its host: build it for every call then, as Nest does.
  const usesContext = params.some((p) => p.type === PARAM_CONTEXT) || nest.filterCount(instance, method, definition.moduleKey) > 0;
  const fail = (err: unknown, data: unknown, ctx: unknown): Observable<unknown> => exceptions.handle(err, nest.hostFor([data, ctx]), reportUnhandled);
  const call = argumentsCall(instance, method, params, argsLength);
  const handler = ((data: unknown, ctx: unknown): unknown => {
    let result: unknown;
    try {
      result = call(data, ctx);
    } catch (err) {
      return fail(err, data, ctx);
    }
    if (isThenable(result)) {
      return Promise.resolve(result).then(
        (value) => (isObservable(value) ? value.pipe(catchError((err: unknown) => fail(err, data, ctx))) : value),
        (err: unknown) => fail(err, data, ctx),
      );
    }
    if (isObservable(result)) return result.pipe(catchError((err: unknown) => fail(err, data, ctx)));
    return result;
  }) as DirectHandler;
  handler.usesContext = usesContext;
  return handler;
}

/** The call with the method's arguments laid out; the two common shapes without an array per call. */
function argumentsCall(instance: object, method: Method, params: Array<{ index: number; type: number; data: unknown }>, argsLength: number): (data: unknown, ctx: unknown) => unknown {
  const plain = params.every((p) => p.data === undefined || p.data === null || p.data === '');
  const only = params[0];
  if (plain && params.length === 1 && only!.index === 0 && only!.type === PARAM_PAYLOAD) return (data) => method.call(instance, data);
  const extract = params.map((p) => {
    const key = p.data;
    if (p.type === PARAM_CONTEXT) return (_data: unknown, ctx: unknown): unknown => ctx;
    if (key === undefined || key === null || key === '') return (data: unknown): unknown => data;
    return (data: unknown): unknown => (data as Record<string, unknown> | null | undefined)?.[key as string];
  });
  return (data, ctx) => {
    const args = new Array<unknown>(argsLength).fill(undefined);
    for (let i = 0; i < params.length; i++) args[params[i]!.index] = extract[i]!(data, ctx);
    return method.apply(instance, args);
  };
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value instanceof Promise || (typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function');
}

/** Nest's own context creators, from the installed Nest (loaded only when direct dispatch is asked for). */
function loadNestPieces(container: ContainerLike, config: ApplicationConfigLike | undefined): NestPieces {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { GuardsContextCreator } = require('@nestjs/core/guards/guards-context-creator.js') as { GuardsContextCreator: CreatorClass };
  const { PipesContextCreator } = require('@nestjs/core/pipes/pipes-context-creator.js') as { PipesContextCreator: CreatorClass };
  const { InterceptorsContextCreator } = require('@nestjs/core/interceptors/interceptors-context-creator.js') as {
    InterceptorsContextCreator: CreatorClass;
  };
  const { ExceptionFiltersContext } = require('@nestjs/microservices/context/exception-filters-context.js') as {
    ExceptionFiltersContext: new (
      container: unknown,
      config: unknown,
    ) => {
      create(instance: object, callback: Method, moduleKey: string): ExceptionsHandlerLike;
      createContext(instance: object, callback: Method, metadataKey: string): unknown[];
      moduleContext?: string;
    };
  };
  const { ExecutionContextHost } = require('@nestjs/core/helpers/execution-context-host.js') as {
    ExecutionContextHost: new (args: unknown[]) => { setType(type: string): void };
  };
  const { MetadataScanner } = require('@nestjs/core') as { MetadataScanner: new () => { getAllMethodNames(prototype: object): string[] } };
  /* eslint-enable @typescript-eslint/no-require-imports */
  const guards = new GuardsContextCreator(container, config);
  const pipes = new PipesContextCreator(container, config);
  const interceptors = new InterceptorsContextCreator(container, config);
  const filters = new ExceptionFiltersContext(container, config);
  const scanner = new MetadataScanner();
  return {
    enhancers: [
      { kind: 'guard', article: 'a', count: (i, c, m) => guards.create(i, c, m).length },
      { kind: 'interceptor', article: 'an', count: (i, c, m) => interceptors.create(i, c, m).length },
      { kind: 'pipe', article: 'a', count: (i, c, m) => pipes.create(i, c, m).length },
    ],
    filterCount: (i, c, m) => {
      filters.moduleContext = m;
      return filters.createContext(i, c, EXCEPTION_FILTERS_METADATA).length;
    },
    exceptionsHandler: (i, c, m) => filters.create(i, c, m),
    hostFor: (args) => {
      const host = new ExecutionContextHost(args);
      host.setType('rpc');
      return host;
    },
    methodNames: (prototype) => scanner.getAllMethodNames(prototype),
  };
}

type CreatorClass = new (container: unknown, config: unknown) => { create(instance: object, callback: Method, moduleKey: string): unknown[] };
