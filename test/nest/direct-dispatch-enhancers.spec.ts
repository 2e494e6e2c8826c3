import { AsyncLocalStorage } from 'node:async_hooks';
import diagnostics_channel from 'node:diagnostics_channel';
import {
  ArgumentMetadata,
  ArgumentsHost,
  BadRequestException,
  CallHandler,
  CanActivate,
  Catch,
  Controller,
  createParamDecorator,
  ExecutionContext,
  INestApplication,
  INestMicroservice,
  Injectable,
  Module,
  NestInterceptor,
  ParseIntPipe,
  PipeTransform,
  Provider,
  RpcExceptionFilter,
  Scope,
  UseFilters,
  UseGuards,
  UseInterceptors,
  UsePipes,
  ValidationPipe,
} from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_INTERCEPTOR, APP_PIPE } from '@nestjs/core';
import { Ctx, EventPattern, MessagePattern, NestMicroservice, Payload, RpcException } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { IsInt, Min } from 'class-validator';
import { lastValueFrom, map, Observable, of, throwError } from 'rxjs';
import { ERPS_CHANNELS, ErpsClient, ErpsContext, ErpsExceptionFilter, ErpsServer, LocalOnly, RemoteOnly } from 'nestjs-erps';
import { testCertificates } from '../support/certs';
import {
  answered,
  DirectApp,
  directClient,
  expectDirect,
  expectThroughNest,
  failedWith,
  FORBIDDEN,
  INTERNAL,
  outcomeOf,
  PlanEntry,
  planOf,
  Seen,
  startDirectApp,
} from '../support/direct-dispatch';
import { waitFor } from '../support/wait';

/*
 * Issue 16, direct dispatch: a handler that no enhancer applies to is called directly; every other one goes through
 * Nest's pipeline as before. These tests put each kind of enhancer (guard, pipe, parameter pipe, interceptor,
 * exception filter, custom parameter decorator, pre-request hook, processing hook) at each level (method,
 * controller, global through app.useGlobalX(), global through an APP_X provider) in an app handed to
 * enableDirectDispatch(), and check that the caller sees the enhancer's effect and that dispatchPlan() routes that
 * pattern through Nest, while a plain sibling is direct. Two kinds act without taking a handler off the direct path:
 * exception filters (a failure goes through the exceptions handler Nest built for the method) and processing hooks
 * (the dispatcher runs them around every handler, direct or not).
 */

// ------------------------------------------------------------------------------------------------------------
// What the enhancers and handlers did, in order. Reset before each test.
// ------------------------------------------------------------------------------------------------------------

/** Each step as it ran: 'guard', 'pipe', 'interceptor:before', 'handler:<pattern>', 'interceptor:after', 'filter:rpc'... */
const journal: string[] = [];
/** The ExecutionContext each guard, interceptor and pre-request hook got. */
const contexts: Array<{ who: string; type: string; handler: unknown; cls: unknown; data: unknown; isErpsContext: boolean }> = [];
/** The payloads event handlers got. */
const events: unknown[] = [];

function resetJournal(): void {
  journal.length = 0;
  contexts.length = 0;
  events.length = 0;
}

function recordContext(who: string, context: ExecutionContext): void {
  journal.push(who);
  const rpc = context.switchToRpc();
  contexts.push({
    who,
    type: context.getType(),
    handler: context.getHandler(),
    cls: context.getClass(),
    data: rpc.getData(),
    isErpsContext: rpc.getContext() instanceof ErpsContext,
  });
}

function field(data: unknown, name: string): unknown {
  return typeof data === 'object' && data !== null ? (data as Record<string, unknown>)[name] : undefined;
}

// ------------------------------------------------------------------------------------------------------------
// Enhancers
// ------------------------------------------------------------------------------------------------------------

/** Lets everything through but `{ deny: true }`. */
@Injectable()
class RecordingGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    recordContext('guard', context);
    return field(context.switchToRpc().getData(), 'deny') !== true;
  }
}

/** The same guard, transient: each consumer gets its own instance. */
@Injectable({ scope: Scope.TRANSIENT })
class TransientGuard extends RecordingGuard {}

/** Doubles numbers, refuses 'reject' with an RpcException, leaves anything else alone. */
@Injectable()
class DoublePipe implements PipeTransform {
  transform(value: unknown, _metadata: ArgumentMetadata): unknown {
    journal.push('pipe');
    if (value === 'reject') throw new RpcException('rejected by the pipe');
    return typeof value === 'number' ? value * 2 : value;
  }
}

/** Wraps each value as `{ wrapped: value }`; journals before the handler and after each value. */
@Injectable()
class WrapInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    recordContext('interceptor:before', context);
    return next.handle().pipe(
      map((value: unknown) => {
        journal.push('interceptor:after');
        return { wrapped: value };
      }),
    );
  }
}

/** The same interceptor, request-scoped (as an APP_INTERCEPTOR this makes every controller request-scoped). */
@Injectable({ scope: Scope.REQUEST })
class ScopedWrapInterceptor extends WrapInterceptor {}

/** Shapes every error as `{ shaped: true, message }`. */
@Catch()
class ShapeFilter implements RpcExceptionFilter<unknown> {
  catch(exception: unknown, host: ArgumentsHost): Observable<never> {
    journal.push(`filter:${host.getType()}`);
    return throwError(() => ({ shaped: true, message: exception instanceof Error ? exception.message : String(exception) }));
  }
}

/** A custom parameter decorator: `<data>:<caller's CN>:<pattern>`. */
const CallerTag = createParamDecorator((data: string, context: ExecutionContext): string => {
  journal.push('decorator');
  const ctx = context.switchToRpc().getContext<ErpsContext>();
  return `${data}:${ctx.peer?.cn}:${ctx.getPattern()}`;
});

class PointDto {
  @IsInt()
  @Min(0)
  x!: number;
}

// ------------------------------------------------------------------------------------------------------------
// Method and controller levels: one app, many controllers, plain siblings beside each enhanced handler.
// ------------------------------------------------------------------------------------------------------------

@Controller()
class MethodLevelController {
  @MessagePattern('plain')
  plain(@Payload() data: unknown): unknown {
    journal.push('handler:plain');
    return { plain: data };
  }

  @EventPattern<string>('plain.event')
  plainEvent(@Payload() data: unknown): void {
    journal.push('handler:plain.event');
    events.push(data);
  }

  @UseGuards(RecordingGuard)
  @MessagePattern('m.guard')
  guarded(@Payload() data: unknown): unknown {
    journal.push('handler:m.guard');
    return { guarded: data };
  }

  @UseGuards(TransientGuard)
  @MessagePattern('m.guard.transient')
  guardedTransient(@Payload() data: unknown): unknown {
    journal.push('handler:m.guard.transient');
    return { guarded: data };
  }

  @UseGuards(RecordingGuard)
  @EventPattern<string>('m.guard.event')
  guardedEvent(@Payload() data: unknown): void {
    journal.push('handler:m.guard.event');
    events.push(data);
  }

  @UsePipes(DoublePipe)
  @MessagePattern('m.pipe')
  piped(@Payload() n: unknown): unknown {
    journal.push('handler:m.pipe');
    return n;
  }

  @UsePipes(DoublePipe)
  @EventPattern<string>('m.pipe.event')
  pipedEvent(@Payload() n: unknown): void {
    journal.push('handler:m.pipe.event');
    events.push(n);
  }

  @UsePipes(new ValidationPipe({ transform: true }))
  @MessagePattern('m.validation')
  validated(@Payload() point: PointDto): unknown {
    journal.push('handler:m.validation');
    return { isDto: point instanceof PointDto, x: point.x };
  }

  @MessagePattern('m.param-pipe')
  paramPipe(@Payload(new ParseIntPipe()) n: number): unknown {
    journal.push('handler:m.param-pipe');
    return { n, type: typeof n };
  }

  @MessagePattern('m.param-pipe.key')
  paramPipeKey(@Payload('n', ParseIntPipe) n: number, @Ctx() ctx: ErpsContext): unknown {
    journal.push('handler:m.param-pipe.key');
    return { n, type: typeof n, pattern: ctx.getPattern() };
  }

  @UseInterceptors(WrapInterceptor)
  @MessagePattern('m.interceptor')
  intercepted(@Payload() data: unknown): unknown {
    journal.push('handler:m.interceptor');
    return data;
  }

  @UseInterceptors(WrapInterceptor)
  @MessagePattern('m.interceptor.stream')
  interceptedStream(): Observable<number> {
    journal.push('handler:m.interceptor.stream');
    return of(1, 2, 3);
  }

  @UseInterceptors(WrapInterceptor)
  @EventPattern<string>('m.interceptor.event')
  interceptedEvent(@Payload() data: unknown): void {
    journal.push('handler:m.interceptor.event');
    events.push(data);
  }

  @UseFilters(ShapeFilter)
  @MessagePattern('m.filter')
  filtered(): never {
    journal.push('handler:m.filter');
    throw new Error('method boom');
  }

  @UseFilters(ShapeFilter)
  @MessagePattern('m.filter.async')
  async filteredAsync(): Promise<never> {
    journal.push('handler:m.filter.async');
    await Promise.resolve();
    throw new Error('async method boom');
  }

  @UseFilters(ShapeFilter)
  @EventPattern<string>('m.filter.event')
  filteredEvent(): never {
    journal.push('handler:m.filter.event');
    throw new Error('event boom');
  }

  @UseFilters(new ErpsExceptionFilter())
  @MessagePattern('m.erps-filter')
  erpsFiltered(): never {
    journal.push('handler:m.erps-filter');
    throw new BadRequestException(['x must be an integer']);
  }

  @MessagePattern('m.decorator')
  decorated(@CallerTag('who') who: string, @Payload() data: unknown): unknown {
    journal.push('handler:m.decorator');
    return { who, data };
  }

  @RemoteOnly()
  @MessagePattern('m.remote-only')
  remoteOnly(): string {
    journal.push('handler:m.remote-only');
    return 'remote ok';
  }

  @LocalOnly()
  @MessagePattern('m.local-only')
  localOnly(): string {
    journal.push('handler:m.local-only');
    return 'local ok';
  }
}

@UseGuards(RecordingGuard)
@Controller()
class GuardedController {
  @MessagePattern('c.guard')
  guarded(@Payload() data: unknown): unknown {
    journal.push('handler:c.guard');
    return { guarded: data };
  }
}

@UsePipes(DoublePipe)
@Controller()
class PipedController {
  @MessagePattern('c.pipe')
  piped(@Payload() n: unknown): unknown {
    journal.push('handler:c.pipe');
    return n;
  }
}

@UseInterceptors(WrapInterceptor)
@Controller()
class InterceptedController {
  @MessagePattern('c.interceptor')
  intercepted(@Payload() data: unknown): unknown {
    journal.push('handler:c.interceptor');
    return data;
  }
}

@UseFilters(ShapeFilter)
@Controller()
class FilteredController {
  @MessagePattern('c.filter')
  filtered(): never {
    journal.push('handler:c.filter');
    throw new RpcException('controller boom');
  }
}

/** A guard on a base class reaches the controller that extends it (Nest reads class metadata through the prototype chain). */
@UseGuards(RecordingGuard)
class GuardedBase {
  @MessagePattern('inherited.base')
  base(@Payload() data: unknown): unknown {
    journal.push('handler:inherited.base');
    return { base: data };
  }
}

@Controller()
class InheritingController extends GuardedBase {
  @MessagePattern('inherited.own')
  own(@Payload() data: unknown): unknown {
    journal.push('handler:inherited.own');
    return { own: data };
  }
}

const LEVEL_CONTROLLERS = [MethodLevelController, GuardedController, PipedController, InterceptedController, FilteredController, InheritingController];

async function call(client: ErpsClient, pattern: string, data: unknown = {}): Promise<Seen[]> {
  return outcomeOf(client.send(pattern, data));
}

async function emit(client: ErpsClient, pattern: string, data: unknown = {}): Promise<void> {
  await lastValueFrom(client.emit(pattern, data), { defaultValue: undefined });
}

describe.each(['after-listen', 'before-listen'] as const)('direct dispatch keeps method and controller enhancers (enableDirectDispatch %s)', (when) => {
  let running: DirectApp;

  beforeAll(async () => {
    running = await startDirectApp({ controllers: LEVEL_CONTROLLERS }, { when });
  });

  afterAll(async () => {
    await running.close();
  });

  beforeEach(resetJournal);

  it('a plain handler and a plain event handler beside them are called directly, and answer', async () => {
    await expect(call(running.client, 'plain', { a: 1 })).resolves.toEqual(answered({ plain: { a: 1 } }));
    await emit(running.client, 'plain.event', { b: 2 });
    await waitFor(() => events.length === 1);
    expect(events).toEqual([{ b: 2 }]);
    expect(journal).toEqual(['handler:plain', 'handler:plain.event']);
    expectDirect(running.server, 'plain', 'call');
    expectDirect(running.server, 'plain.event', 'event');
  });

  it('method guard: a denied call gets Forbidden and its handler does not run; an allowed one sees the right ExecutionContext', async () => {
    await expect(call(running.client, 'm.guard', { deny: true })).resolves.toEqual(failedWith(FORBIDDEN));
    await expect(call(running.client, 'm.guard', { n: 1 })).resolves.toEqual(answered({ guarded: { n: 1 } }));
    expect(journal).toEqual(['guard', 'guard', 'handler:m.guard']);
    const expected = { who: 'guard', type: 'rpc', handler: MethodLevelController.prototype.guarded, cls: MethodLevelController, isErpsContext: true };
    expect(contexts).toEqual([
      { ...expected, data: { deny: true } },
      { ...expected, data: { n: 1 } },
    ]);
    expectThroughNest(running.server, 'm.guard', 'call', /guard/i);
  });

  it('a transient guard: still refuses', async () => {
    await expect(call(running.client, 'm.guard.transient', { deny: true })).resolves.toEqual(failedWith(FORBIDDEN));
    await expect(call(running.client, 'm.guard.transient', 1)).resolves.toEqual(answered({ guarded: 1 }));
    expect(journal).toEqual(['guard', 'guard', 'handler:m.guard.transient']);
    expectThroughNest(running.server, 'm.guard.transient', 'call', /guard|request|scope/i);
  });

  it('method guard on an event handler: a denied event never reaches it', async () => {
    await emit(running.client, 'm.guard.event', { deny: true });
    await emit(running.client, 'm.guard.event', { n: 2 });
    await waitFor(() => events.length === 1);
    await call(running.client, 'plain'); // a round trip: the denied event had every chance to arrive first
    expect(events).toEqual([{ n: 2 }]);
    expect(contexts.map((context) => [context.handler, context.data])).toEqual([
      [MethodLevelController.prototype.guardedEvent, { deny: true }],
      [MethodLevelController.prototype.guardedEvent, { n: 2 }],
    ]);
    expectThroughNest(running.server, 'm.guard.event', 'event', /guard/i);
  });

  it('controller guard: applies to the handlers of that controller', async () => {
    await expect(call(running.client, 'c.guard', { deny: true })).resolves.toEqual(failedWith(FORBIDDEN));
    await expect(call(running.client, 'c.guard', { n: 3 })).resolves.toEqual(answered({ guarded: { n: 3 } }));
    expect(journal).toEqual(['guard', 'guard', 'handler:c.guard']);
    expect(contexts[1]).toMatchObject({ handler: GuardedController.prototype.guarded, cls: GuardedController });
    expectThroughNest(running.server, 'c.guard', 'call', /guard/i);
  });

  it("a guard on a controller's base class applies to the inherited handler and to the controller's own", async () => {
    for (const pattern of ['inherited.base', 'inherited.own']) {
      await expect(call(running.client, pattern, { deny: true })).resolves.toEqual(failedWith(FORBIDDEN));
      expectThroughNest(running.server, pattern, 'call', /guard/i);
    }
    await expect(call(running.client, 'inherited.own', 4)).resolves.toEqual(answered({ own: 4 }));
    await expect(call(running.client, 'inherited.base', 5)).resolves.toEqual(answered({ base: 5 }));
    expect(journal).toEqual(['guard', 'guard', 'guard', 'handler:inherited.own', 'guard', 'handler:inherited.base']);
    expect(contexts.map((context) => context.cls)).toEqual([InheritingController, InheritingController, InheritingController, InheritingController]);
  });

  it("@RemoteOnly / @LocalOnly (this package's guards) still decide", async () => {
    await expect(call(running.client, 'm.remote-only')).resolves.toEqual(answered('remote ok'));
    await expect(call(running.client, 'm.local-only')).resolves.toEqual(failedWith({ status: 'error', code: 'ERPS_FORBIDDEN', message: '"m.local-only" accepts only local callers' }));
    expect(journal).toEqual(['handler:m.remote-only']);
    expectThroughNest(running.server, 'm.remote-only', 'call', /guard/i);
    expectThroughNest(running.server, 'm.local-only', 'call', /guard/i);
  });

  it('method pipe: transforms the payload of a call and of an event; a pipe that throws refuses the call', async () => {
    await expect(call(running.client, 'm.pipe', 21)).resolves.toEqual(answered(42));
    await expect(call(running.client, 'm.pipe', 'reject')).resolves.toEqual(failedWith({ status: 'error', message: 'rejected by the pipe' }));
    await emit(running.client, 'm.pipe.event', 4);
    await waitFor(() => events.length === 1);
    expect(events).toEqual([8]);
    expect(journal).toEqual(['pipe', 'handler:m.pipe', 'pipe', 'pipe', 'handler:m.pipe.event']);
    expectThroughNest(running.server, 'm.pipe', 'call', /pipe/i);
    expectThroughNest(running.server, 'm.pipe.event', 'event', /pipe/i);
  });

  it('ValidationPipe: a valid payload arrives as the DTO class, an invalid one is refused before the handler', async () => {
    await expect(call(running.client, 'm.validation', { x: 3 })).resolves.toEqual(answered({ isDto: true, x: 3 }));
    // No ErpsExceptionFilter on this handler: Nest's generic answer to the BadRequestException.
    await expect(call(running.client, 'm.validation', { x: -1 })).resolves.toEqual(failedWith(INTERNAL));
    expect(journal).toEqual(['handler:m.validation']);
    expectThroughNest(running.server, 'm.validation', 'call', /pipe/i);
  });

  it('controller pipe: transforms the payload', async () => {
    await expect(call(running.client, 'c.pipe', 5)).resolves.toEqual(answered(10));
    expect(journal).toEqual(['pipe', 'handler:c.pipe']);
    expectThroughNest(running.server, 'c.pipe', 'call', /pipe/i);
  });

  it('parameter pipes (@Payload(new ParseIntPipe()), @Payload(key, ParseIntPipe)) transform and refuse', async () => {
    await expect(call(running.client, 'm.param-pipe', '42')).resolves.toEqual(answered({ n: 42, type: 'number' }));
    await expect(call(running.client, 'm.param-pipe', 'forty-two')).resolves.toEqual(failedWith(INTERNAL));
    await expect(call(running.client, 'm.param-pipe.key', { n: '7' })).resolves.toEqual(answered({ n: 7, type: 'number', pattern: 'm.param-pipe.key' }));
    await expect(call(running.client, 'm.param-pipe.key', { n: 'seven' })).resolves.toEqual(failedWith(INTERNAL));
    expect(journal).toEqual(['handler:m.param-pipe', 'handler:m.param-pipe.key']);
    expectThroughNest(running.server, 'm.param-pipe', 'call', /pipe/i);
    expectThroughNest(running.server, 'm.param-pipe.key', 'call', /pipe/i);
  });

  it('method interceptor: maps the result, runs before and after the handler, sees the right ExecutionContext', async () => {
    await expect(call(running.client, 'm.interceptor', { n: 1 })).resolves.toEqual(answered({ wrapped: { n: 1 } }));
    expect(journal).toEqual(['interceptor:before', 'handler:m.interceptor', 'interceptor:after']);
    expect(contexts).toEqual([
      { who: 'interceptor:before', type: 'rpc', handler: MethodLevelController.prototype.intercepted, cls: MethodLevelController, data: { n: 1 }, isErpsContext: true },
    ]);
    expectThroughNest(running.server, 'm.interceptor', 'call', /interceptor/i);
  });

  it('method interceptor on a stream maps every value; on an event handler it runs too', async () => {
    await expect(call(running.client, 'm.interceptor.stream')).resolves.toEqual(answered({ wrapped: 1 }, { wrapped: 2 }, { wrapped: 3 }));
    await emit(running.client, 'm.interceptor.event', 'e');
    await waitFor(() => events.length === 1);
    await waitFor(() => journal.length === 8);
    expect(journal).toEqual([
      'interceptor:before',
      'handler:m.interceptor.stream',
      'interceptor:after',
      'interceptor:after',
      'interceptor:after',
      'interceptor:before',
      'handler:m.interceptor.event',
      'interceptor:after',
    ]);
    expectThroughNest(running.server, 'm.interceptor.stream', 'call', /interceptor/i);
    expectThroughNest(running.server, 'm.interceptor.event', 'event', /interceptor/i);
  });

  it('controller interceptor: maps the result', async () => {
    await expect(call(running.client, 'c.interceptor', 'x')).resolves.toEqual(answered({ wrapped: 'x' }));
    expect(journal).toEqual(['interceptor:before', 'handler:c.interceptor', 'interceptor:after']);
    expect(contexts[0]).toMatchObject({ handler: InterceptedController.prototype.intercepted, cls: InterceptedController });
    expectThroughNest(running.server, 'c.interceptor', 'call', /interceptor/i);
  });

  it('method exception filter: shapes what the caller gets, for a sync throw, a rejection and an event', async () => {
    await expect(call(running.client, 'm.filter')).resolves.toEqual(failedWith({ shaped: true, message: 'method boom' }));
    await expect(call(running.client, 'm.filter.async')).resolves.toEqual(failedWith({ shaped: true, message: 'async method boom' }));
    await emit(running.client, 'm.filter.event');
    await waitFor(() => journal.length === 6);
    expect(journal).toEqual(['handler:m.filter', 'filter:rpc', 'handler:m.filter.async', 'filter:rpc', 'handler:m.filter.event', 'filter:rpc']);
    // Filters act only on a failure, which a direct handler hands to the exceptions handler Nest built for it.
    expectDirect(running.server, 'm.filter', 'call');
    expectDirect(running.server, 'm.filter.async', 'call');
    expectDirect(running.server, 'm.filter.event', 'event');
    // The server is still fine.
    await expect(call(running.client, 'plain', 1)).resolves.toEqual(answered({ plain: 1 }));
  });

  it('controller exception filter: shapes what the caller gets', async () => {
    await expect(call(running.client, 'c.filter')).resolves.toEqual(failedWith({ shaped: true, message: 'controller boom' }));
    expect(journal).toEqual(['handler:c.filter', 'filter:rpc']);
    expectDirect(running.server, 'c.filter', 'call');
  });

  it('@UseFilters(new ErpsExceptionFilter()): an HttpException reaches the caller with its status and messages', async () => {
    await expect(call(running.client, 'm.erps-filter')).resolves.toEqual(failedWith({ status: 'error', statusCode: 400, message: ['x must be an integer'], error: 'Bad Request' }));
    expectDirect(running.server, 'm.erps-filter', 'call');
  });

  it('custom parameter decorator: its value reaches the handler', async () => {
    await expect(call(running.client, 'm.decorator', { d: 1 })).resolves.toEqual(answered({ who: 'who:alice:m.decorator', data: { d: 1 } }));
    expect(journal).toEqual(['decorator', 'handler:m.decorator']);
    expectThroughNest(running.server, 'm.decorator', 'call', /decorator/i);
  });

  it('dispatchPlan() lists every pattern of the app once, calls and events told apart', () => {
    const plan = running.server.dispatchPlan();
    const patterns = plan.map((entry) => entry.pattern);
    expect(new Set(patterns).size).toBe(patterns.length);
    expect(patterns).toEqual(expect.arrayContaining(['plain', 'plain.event', 'm.guard', 'c.filter', 'inherited.base', 'inherited.own']));
    expect(plan.filter((entry) => entry.direct).map((entry) => entry.pattern)).toEqual(expect.arrayContaining(['plain', 'plain.event']));
    expect(
      plan
        .filter((entry) => entry.direct)
        .map((entry) => entry.pattern)
        .sort(),
    ).toEqual(['c.filter', 'm.erps-filter', 'm.filter', 'm.filter.async', 'm.filter.event', 'plain', 'plain.event']);
    expect(planOf(running.server, 'plain.event').kind).toBe('event');
    expect(planOf(running.server, 'm.guard').kind).toBe('call');
  });
});

// ------------------------------------------------------------------------------------------------------------
// Global level: app.useGlobalX() (after enableDirectDispatch, before listen) and APP_X providers (in an imported
// module; enableDirectDispatch after listen). A global enhancer applies to every handler: nothing is direct.
// ------------------------------------------------------------------------------------------------------------

@Controller()
class GlobalController {
  @MessagePattern('g.echo')
  echo(@Payload() data: unknown): unknown {
    journal.push('handler:g.echo');
    if (field(data, 'fail') === true) throw new Error('handler failed');
    return data;
  }

  @MessagePattern('g.http')
  http(): never {
    journal.push('handler:g.http');
    throw new BadRequestException(['y must be positive']);
  }

  @EventPattern<string>('g.event')
  event(@Payload() data: unknown): void {
    journal.push('handler:g.event');
    events.push(data);
    if (field(data, 'fail') === true) throw new Error('event failed');
  }
}

const GLOBAL_PATTERNS = [
  ['g.echo', 'call'],
  ['g.http', 'call'],
  ['g.event', 'event'],
] as const;

interface GlobalCase {
  kind: string;
  level: string;
  reason: RegExp;
  when: 'before-listen' | 'after-listen';
  providers?: Provider[];
  configure?: (app: INestMicroservice) => void;
  check(client: ErpsClient): Promise<void>;
}

async function checkGlobalGuard(client: ErpsClient): Promise<void> {
  await expect(call(client, 'g.echo', { deny: true })).resolves.toEqual(failedWith(FORBIDDEN));
  await expect(call(client, 'g.echo', { n: 1 })).resolves.toEqual(answered({ n: 1 }));
  expect(journal).toEqual(['guard', 'guard', 'handler:g.echo']);
  expect(contexts[1]).toEqual({ who: 'guard', type: 'rpc', handler: GlobalController.prototype.echo, cls: GlobalController, data: { n: 1 }, isErpsContext: true });
  await emit(client, 'g.event', { deny: true });
  await emit(client, 'g.event', { n: 2 });
  await waitFor(() => events.length === 1);
  await call(client, 'g.echo', 0);
  expect(events).toEqual([{ n: 2 }]);
}

async function checkGlobalPipe(client: ErpsClient): Promise<void> {
  await expect(call(client, 'g.echo', 21)).resolves.toEqual(answered(42));
  await expect(call(client, 'g.echo', 'reject')).resolves.toEqual(failedWith({ status: 'error', message: 'rejected by the pipe' }));
  expect(journal).toEqual(['pipe', 'handler:g.echo', 'pipe']);
  await emit(client, 'g.event', 5);
  await waitFor(() => events.length === 1);
  expect(events).toEqual([10]);
}

async function checkGlobalInterceptor(client: ErpsClient): Promise<void> {
  await expect(call(client, 'g.echo', 1)).resolves.toEqual(answered({ wrapped: 1 }));
  expect(journal).toEqual(['interceptor:before', 'handler:g.echo', 'interceptor:after']);
  expect(contexts[0]).toMatchObject({ handler: GlobalController.prototype.echo, cls: GlobalController, data: 1, isErpsContext: true });
  await emit(client, 'g.event', 'e');
  await waitFor(() => journal.length === 6);
  expect(journal.slice(3)).toEqual(['interceptor:before', 'handler:g.event', 'interceptor:after']);
}

async function checkGlobalFilter(client: ErpsClient): Promise<void> {
  await expect(call(client, 'g.echo', { fail: true })).resolves.toEqual(failedWith({ shaped: true, message: 'handler failed' }));
  await expect(call(client, 'g.http')).resolves.toEqual(failedWith({ shaped: true, message: 'Bad Request Exception' }));
  await expect(call(client, 'g.echo', 7)).resolves.toEqual(answered(7));
  await emit(client, 'g.event', { fail: true });
  await waitFor(() => journal.length === 7);
  expect(journal).toEqual(['handler:g.echo', 'filter:rpc', 'handler:g.http', 'filter:rpc', 'handler:g.echo', 'handler:g.event', 'filter:rpc']);
}

async function checkGlobalErpsFilter(client: ErpsClient): Promise<void> {
  await expect(call(client, 'g.http')).resolves.toEqual(failedWith({ status: 'error', statusCode: 400, message: ['y must be positive'], error: 'Bad Request' }));
  await expect(call(client, 'g.echo', { fail: true })).resolves.toEqual(failedWith(INTERNAL));
  await expect(call(client, 'g.echo', 8)).resolves.toEqual(answered(8));
}

/** An imported module that only declares `providers` (APP_X providers work from any module). */
@Module({})
class EnhancersModule {}

const GLOBAL_CASES: GlobalCase[] = [
  { kind: 'guard', level: 'app.useGlobalGuards()', reason: /guard/i, when: 'before-listen', configure: (app) => app.useGlobalGuards(new RecordingGuard()), check: checkGlobalGuard },
  { kind: 'guard', level: 'an APP_GUARD provider', reason: /guard/i, when: 'after-listen', providers: [{ provide: APP_GUARD, useClass: RecordingGuard }], check: checkGlobalGuard },
  { kind: 'pipe', level: 'app.useGlobalPipes()', reason: /pipe/i, when: 'before-listen', configure: (app) => app.useGlobalPipes(new DoublePipe()), check: checkGlobalPipe },
  { kind: 'pipe', level: 'an APP_PIPE provider', reason: /pipe/i, when: 'after-listen', providers: [{ provide: APP_PIPE, useClass: DoublePipe }], check: checkGlobalPipe },
  {
    kind: 'interceptor',
    level: 'app.useGlobalInterceptors()',
    reason: /interceptor/i,
    when: 'before-listen',
    configure: (app) => app.useGlobalInterceptors(new WrapInterceptor()),
    check: checkGlobalInterceptor,
  },
  {
    kind: 'interceptor',
    level: 'an APP_INTERCEPTOR provider',
    reason: /interceptor/i,
    when: 'after-listen',
    providers: [{ provide: APP_INTERCEPTOR, useClass: WrapInterceptor }],
    check: checkGlobalInterceptor,
  },
  {
    kind: 'interceptor',
    level: 'a request-scoped APP_INTERCEPTOR provider',
    reason: /interceptor|request/i,
    when: 'after-listen',
    providers: [{ provide: APP_INTERCEPTOR, useClass: ScopedWrapInterceptor }],
    check: checkGlobalInterceptor,
  },
  { kind: 'filter', level: 'app.useGlobalFilters()', reason: /filter/i, when: 'before-listen', configure: (app) => app.useGlobalFilters(new ShapeFilter()), check: checkGlobalFilter },
  { kind: 'filter', level: 'an APP_FILTER provider', reason: /filter/i, when: 'after-listen', providers: [{ provide: APP_FILTER, useClass: ShapeFilter }], check: checkGlobalFilter },
  {
    kind: 'filter',
    level: 'app.useGlobalFilters(new ErpsExceptionFilter())',
    reason: /filter/i,
    when: 'before-listen',
    configure: (app) => app.useGlobalFilters(new ErpsExceptionFilter()),
    check: checkGlobalErpsFilter,
  },
  {
    kind: 'filter',
    level: 'an APP_FILTER provider of ErpsExceptionFilter',
    reason: /filter/i,
    when: 'after-listen',
    providers: [{ provide: APP_FILTER, useClass: ErpsExceptionFilter }],
    check: checkGlobalErpsFilter,
  },
];

describe.each(GLOBAL_CASES.map((c) => [`${c.kind} registered with ${c.level}`, c] as const))('direct dispatch keeps a global %s', (_name, globalCase) => {
  let running: DirectApp;

  beforeAll(async () => {
    const imports = globalCase.providers === undefined ? [] : [{ module: EnhancersModule, providers: globalCase.providers }];
    running = await startDirectApp({ imports, controllers: [GlobalController] }, { when: globalCase.when, configure: globalCase.configure });
  });

  afterAll(async () => {
    await running.close();
  });

  beforeEach(resetJournal);

  it('the enhancer acts on calls and events as Nest applies it', async () => {
    await globalCase.check(running.client);
  });

  it(`dispatchPlan() ${globalCase.kind === 'filter' ? 'keeps every pattern direct (a filter acts only on failures)' : 'routes every pattern through Nest, naming the enhancer'}`, () => {
    for (const [pattern, kind] of GLOBAL_PATTERNS) {
      if (globalCase.kind === 'filter') expectDirect(running.server, pattern, kind);
      else expectThroughNest(running.server, pattern, kind, globalCase.reason);
    }
  });
});

// ------------------------------------------------------------------------------------------------------------
// Pre-request hooks (Nest 12: app.registerPreRequestHook) and processing hooks (server.setOnProcessingStartHook).
// ------------------------------------------------------------------------------------------------------------

type PreRequestHookLike = (context: ExecutionContext, next: () => Observable<unknown>) => Observable<unknown>;
const hasPreRequestHooks = typeof (NestMicroservice.prototype as unknown as Record<string, unknown>).registerPreRequestHook === 'function';

(hasPreRequestHooks ? describe : describe.skip)('direct dispatch keeps Nest pre-request hooks (Nest 12)', () => {
  let running: DirectApp;

  const hook: PreRequestHookLike = (context, next) => {
    recordContext('hook', context);
    if (field(context.switchToRpc().getData(), 'block') === true) return throwError(() => new RpcException('blocked by the hook'));
    return next().pipe(map((value: unknown) => ({ hooked: value })));
  };

  beforeAll(async () => {
    running = await startDirectApp(
      { controllers: [GlobalController] },
      {
        when: 'before-listen',
        configure: (app) => (app as unknown as { registerPreRequestHook(...hooks: PreRequestHookLike[]): unknown }).registerPreRequestHook(hook),
      },
    );
  });

  afterAll(async () => {
    await running.close();
  });

  beforeEach(resetJournal);

  it('the hook runs around calls and events, sees the ExecutionContext, and can answer instead of the handler', async () => {
    await expect(call(running.client, 'g.echo', { n: 1 })).resolves.toEqual(answered({ hooked: { n: 1 } }));
    await expect(call(running.client, 'g.echo', { block: true })).resolves.toEqual(failedWith({ status: 'error', message: 'blocked by the hook' }));
    expect(journal).toEqual(['hook', 'handler:g.echo', 'hook']);
    expect(contexts[0]).toEqual({ who: 'hook', type: 'rpc', handler: GlobalController.prototype.echo, cls: GlobalController, data: { n: 1 }, isErpsContext: true });
    await emit(running.client, 'g.event', { block: true });
    await emit(running.client, 'g.event', { n: 2 });
    await waitFor(() => events.length === 1);
    await call(running.client, 'g.echo', 0);
    expect(events).toEqual([{ n: 2 }]);
  });

  it('dispatchPlan() routes every pattern through Nest, naming the hook', () => {
    for (const [pattern, kind] of GLOBAL_PATTERNS) expectThroughNest(running.server, pattern, kind, /pre.?request/i);
  });
});

interface ProcessingHookServer {
  setOnProcessingStartHook?: (hook: (transportId: symbol, ctx: unknown, done: () => Promise<unknown>) => unknown) => void;
  setOnProcessingEndHook?: (hook: (transportId: symbol, ctx: unknown) => void) => void;
}
const hasProcessingHooks = typeof (ErpsServer.prototype as unknown as ProcessingHookServer).setOnProcessingStartHook === 'function';

(hasProcessingHooks ? describe : describe.skip)('direct dispatch keeps processing hooks installed after listen()', () => {
  let running: DirectApp;
  let planBefore: PlanEntry[];

  beforeAll(async () => {
    running = await startDirectApp({ controllers: [MethodLevelController] }, { when: 'after-listen' });
    planBefore = running.server.dispatchPlan();
    const server = running.server as unknown as Required<ProcessingHookServer>;
    server.setOnProcessingStartHook((transportId, _ctx, done) => {
      journal.push(`start:${transportId === running.server.transportId}`);
      return done();
    });
    server.setOnProcessingEndHook(() => journal.push('end'));
  });

  afterAll(async () => {
    await running.close();
  });

  beforeEach(resetJournal);

  it('before any hook was installed, the plain handlers were direct', () => {
    expect(
      planBefore
        .filter((entry) => entry.direct)
        .map((entry) => entry.pattern)
        .sort(),
    ).toEqual(['c.filter', 'm.erps-filter', 'm.filter', 'm.filter.async', 'm.filter.event', 'plain', 'plain.event'].filter((p) => planBefore.some((e) => e.pattern === p)));
  });

  it('the hooks run around every call and event of a plain handler', async () => {
    await expect(call(running.client, 'plain', 1)).resolves.toEqual(answered({ plain: 1 }));
    expect(journal).toEqual(['start:true', 'handler:plain', 'end']);
    await emit(running.client, 'plain.event', 2);
    await waitFor(() => journal.length === 6);
    expect(journal.slice(3)).toEqual(['start:true', 'handler:plain.event', 'end']);
    expect(events).toEqual([2]);
  });

  it('dispatchPlan() keeps those patterns direct: the dispatcher runs the hooks around direct handlers too', () => {
    expectDirect(running.server, 'plain', 'call');
    expectDirect(running.server, 'plain.event', 'event');
  });
});

// ------------------------------------------------------------------------------------------------------------
// Hybrid apps: the HTTP app (from connectMicroservice) is what the user hands to enableDirectDispatch.
// ------------------------------------------------------------------------------------------------------------

@Controller()
class HybridController {
  @MessagePattern('h.plain')
  plain(@Payload() data: unknown): unknown {
    journal.push('handler:h.plain');
    return { plain: data };
  }

  @UseGuards(RecordingGuard)
  @MessagePattern('h.guard')
  guarded(@Payload() data: unknown): unknown {
    journal.push('handler:h.guard');
    return { guarded: data };
  }
}

interface Hybrid {
  app: INestApplication;
  server: ErpsServer;
  client: ErpsClient;
  close(): Promise<void>;
}

interface HybridSetup {
  inheritAppConfig: boolean;
  deferInitialization?: boolean;
  /** Registers global enhancers on the HTTP app, before connectMicroservice(). */
  onHttpApp?: (app: INestApplication) => void;
  /** Registers global enhancers on the microservice connectMicroservice() returned, before startAllMicroservices(). */
  onMicroservice?: (microservice: INestMicroservice) => void;
}

/** A hybrid app (HTTP + the Erps daemon through connectMicroservice), handed to enableDirectDispatch() when `direct`. */
async function startHybrid(setup: HybridSetup, direct: boolean): Promise<Hybrid> {
  const certs = await testCertificates();
  const moduleRef = await Test.createTestingModule({ controllers: [HybridController] }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  setup.onHttpApp?.(app);
  const server = new ErpsServer({ host: '127.0.0.1', port: 0, tls: certs.server, identifier: 'direct', versions: '^1.0.0' });
  const microservice = app.connectMicroservice({ strategy: server }, { inheritAppConfig: setup.inheritAppConfig, deferInitialization: setup.deferInitialization });
  setup.onMicroservice?.(microservice);
  await app.startAllMicroservices();
  await app.listen(0, '127.0.0.1');
  if (direct) server.enableDirectDispatch(app);
  const client = await directClient(server.address().port);
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

/** The same hybrid app without and with direct dispatch: what callers saw of `calls`, and the journal. */
async function hybridOutcomes(setup: HybridSetup, calls: Array<[string, unknown]>): Promise<{ nest: unknown; direct: unknown }> {
  const outcomes: Record<string, unknown> = {};
  for (const direct of [false, true]) {
    resetJournal();
    const hybrid = await startHybrid(setup, direct);
    try {
      const seen: Seen[][] = [];
      for (const [pattern, data] of calls) seen.push(await call(hybrid.client, pattern, data));
      outcomes[direct ? 'direct' : 'nest'] = { seen, journal: [...journal] };
    } finally {
      await hybrid.close();
    }
  }
  return outcomes as { nest: unknown; direct: unknown };
}

const withHttpInterceptor = (app: INestApplication): void => void app.useGlobalInterceptors(new WrapInterceptor());

describe('direct dispatch in a hybrid app (connectMicroservice), given the HTTP app', () => {
  beforeEach(resetJournal);

  it('with inheritAppConfig, the global interceptor of the HTTP app still wraps every Erps call', async () => {
    const hybrid = await startHybrid({ inheritAppConfig: true, onHttpApp: withHttpInterceptor }, true);
    try {
      await expect(call(hybrid.client, 'h.plain', 1)).resolves.toEqual(answered({ wrapped: { plain: 1 } }));
      await expect(call(hybrid.client, 'h.guard', { deny: true })).resolves.toEqual(failedWith(FORBIDDEN));
      expect(journal).toEqual(['interceptor:before', 'handler:h.plain', 'interceptor:after', 'guard']);
      expectThroughNest(hybrid.server, 'h.plain', 'call', /interceptor/i);
      expectThroughNest(hybrid.server, 'h.guard', 'call', /guard|interceptor/i);
    } finally {
      await hybrid.close();
    }
  });

  it('without inheritAppConfig, callers see what they saw without direct dispatch (the HTTP global is not applied), and method guards still run', async () => {
    const outcomes = await hybridOutcomes({ inheritAppConfig: false, onHttpApp: withHttpInterceptor }, [
      ['h.plain', 1],
      ['h.guard', { deny: true }],
      ['h.guard', { n: 2 }],
    ]);
    expect(outcomes.nest).toEqual({
      seen: [answered({ plain: 1 }), failedWith(FORBIDDEN), answered({ guarded: { n: 2 } })],
      journal: ['handler:h.plain', 'guard', 'guard', 'handler:h.guard'],
    });
    expect(outcomes.direct).toStrictEqual(outcomes.nest);
  });

  // With deferInitialization the microservice builds its handlers at startAllMicroservices(), from its own config:
  // global enhancers registered on it (not on the HTTP app) apply.
  it('deferInitialization, no inheritAppConfig: a global guard registered on the microservice still refuses', async () => {
    const outcomes = await hybridOutcomes({ inheritAppConfig: false, deferInitialization: true, onMicroservice: (ms) => void ms.useGlobalGuards(new RecordingGuard()) }, [
      ['h.plain', { deny: true }],
      ['h.plain', 3],
    ]);
    expect(outcomes.nest).toEqual({ seen: [failedWith(FORBIDDEN), answered({ plain: 3 })], journal: ['guard', 'guard', 'handler:h.plain'] });
    expect(outcomes.direct).toStrictEqual(outcomes.nest);
  });

  it('deferInitialization, no inheritAppConfig: a global interceptor registered on the microservice still wraps', async () => {
    const outcomes = await hybridOutcomes({ inheritAppConfig: false, deferInitialization: true, onMicroservice: (ms) => void ms.useGlobalInterceptors(new WrapInterceptor()) }, [
      ['h.plain', 4],
    ]);
    expect(outcomes.nest).toEqual({ seen: [answered({ wrapped: { plain: 4 } })], journal: ['interceptor:before', 'handler:h.plain', 'interceptor:after'] });
    expect(outcomes.direct).toStrictEqual(outcomes.nest);
  });

  (hasPreRequestHooks ? it : it.skip)('deferInitialization, no inheritAppConfig: a pre-request hook registered on the microservice still runs (Nest 12)', async () => {
    const hook: PreRequestHookLike = (context, next) => {
      recordContext('hook', context);
      return next().pipe(map((value: unknown) => ({ hooked: value })));
    };
    const register = (ms: INestMicroservice): void => void (ms as unknown as { registerPreRequestHook(...hooks: PreRequestHookLike[]): unknown }).registerPreRequestHook(hook);
    const outcomes = await hybridOutcomes({ inheritAppConfig: false, deferInitialization: true, onMicroservice: register }, [['h.plain', 5]]);
    expect(outcomes.nest).toEqual({ seen: [answered({ hooked: { plain: 5 } })], journal: ['hook', 'handler:h.plain'] });
    expect(outcomes.direct).toStrictEqual(outcomes.nest);
  });
});

describe('a global guard registered after listen()', () => {
  beforeEach(resetJournal);

  it('does to callers what it does without direct dispatch', async () => {
    const outcomes: Record<string, unknown> = {};
    for (const when of ['never', 'after-listen'] as const) {
      resetJournal();
      const running = await startDirectApp({ controllers: [GlobalController] }, { when });
      try {
        running.app.useGlobalGuards(new RecordingGuard());
        outcomes[when] = { denied: await call(running.client, 'g.echo', { deny: true }), allowed: await call(running.client, 'g.echo', 1), journal: [...journal] };
      } finally {
        await running.close();
      }
    }
    expect(outcomes['after-listen']).toStrictEqual(outcomes.never);
  });
});

// ------------------------------------------------------------------------------------------------------------
// The server's own options and observability apply to direct handlers as to the others.
// ------------------------------------------------------------------------------------------------------------

const serverStorage = new AsyncLocalStorage<{ universe: string }>();
const clientStorage = new AsyncLocalStorage<{ universe: string }>();

@Controller()
class OptionsController {
  @MessagePattern('o.plain')
  plain(@Payload() data: unknown): unknown {
    journal.push('handler:o.plain');
    return { plain: data };
  }

  @MessagePattern('o.refused')
  refused(): string {
    journal.push('handler:o.refused');
    return 'should not run';
  }

  @MessagePattern('o.universe')
  async universe(): Promise<string> {
    await Promise.resolve();
    return serverStorage.getStore()?.universe ?? 'none';
  }

  @EventPattern<string>('o.event')
  event(@Payload() data: unknown): void {
    journal.push('handler:o.event');
    events.push([data, serverStorage.getStore()?.universe ?? 'none']);
  }

  @EventPattern<string>('o.refused.event')
  refusedEvent(): void {
    journal.push('handler:o.refused.event');
  }
}

describe('direct handlers under the server options (authorize, forwardContext) and tracing channels', () => {
  let running: DirectApp;

  beforeAll(async () => {
    running = await startDirectApp(
      { controllers: [OptionsController] },
      {
        when: 'after-listen',
        server: { authorize: ({ pattern }) => !pattern.startsWith('o.refused'), forwardContext: { storage: serverStorage } },
        client: { forwardContext: { storage: clientStorage } },
      },
    );
  });

  afterAll(async () => {
    await running.close();
  });

  beforeEach(resetJournal);

  it('the handlers are direct', () => {
    for (const pattern of ['o.plain', 'o.refused', 'o.universe']) expectDirect(running.server, pattern, 'call');
    for (const pattern of ['o.event', 'o.refused.event']) expectDirect(running.server, pattern, 'event');
  });

  it('authorize still refuses calls and casts before the handler', async () => {
    const refused = await call(running.client, 'o.refused');
    expect(refused).toEqual(failedWith({ status: 'error', code: 'ERPS_FORBIDDEN', message: 'peer "alice" may not call "o.refused"' }));
    await emit(running.client, 'o.refused.event');
    await emit(running.client, 'o.event', 1);
    await waitFor(() => events.length === 1);
    await expect(call(running.client, 'o.plain', 2)).resolves.toEqual(answered({ plain: 2 }));
    expect(journal).toEqual(['handler:o.event', 'handler:o.plain']);
  });

  it("forwardContext: the handler runs in the caller's context", async () => {
    const universes = await Promise.all(['A', 'B', 'C'].map((universe) => clientStorage.run({ universe }, () => call(running.client, 'o.universe'))));
    expect(universes).toEqual([answered('A'), answered('B'), answered('C')]);
    clientStorage.run({ universe: 'E' }, () => running.client.emit('o.event', 'e'));
    await waitFor(() => events.length === 1);
    expect(events).toEqual([['e', 'E']]);
  });

  it('the erps:server:call and erps:server:cast tracing channels still see each call and cast, with its result or error', async () => {
    const seen: Array<{ kind: string; pattern: string; result?: unknown; error?: unknown }> = [];
    const handlers = {
      start: () => undefined,
      end: () => undefined,
      asyncStart: () => undefined,
      error: () => undefined,
      asyncEnd: (message: unknown) => {
        const { kind, pattern, result, error } = message as { kind: string; pattern: string; result?: unknown; error?: unknown };
        seen.push({ kind, pattern, result, error });
      },
    };
    const calls = diagnostics_channel.tracingChannel(ERPS_CHANNELS.serverCall);
    const casts = diagnostics_channel.tracingChannel(ERPS_CHANNELS.serverCast);
    calls.subscribe(handlers);
    casts.subscribe(handlers);
    try {
      await expect(call(running.client, 'o.plain', 3)).resolves.toEqual(answered({ plain: 3 }));
      await emit(running.client, 'o.event', 4);
      await waitFor(() => seen.length === 2);
      expect(seen).toEqual([
        { kind: 'call', pattern: 'o.plain', result: { plain: 3 }, error: undefined },
        { kind: 'cast', pattern: 'o.event', result: undefined, error: undefined },
      ]);
    } finally {
      calls.unsubscribe(handlers);
      casts.unsubscribe(handlers);
    }
  });
});
