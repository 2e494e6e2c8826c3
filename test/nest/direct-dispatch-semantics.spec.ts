import { Controller, Inject, Injectable, NotFoundException, Scope } from '@nestjs/common';
import { CONTEXT, Ctx, EventPattern, MessagePattern, Payload, RequestContext, RpcException } from '@nestjs/microservices';
import { concat, EMPTY, finalize, firstValueFrom, interval, Observable, of, Subscription, take, tap, throwError } from 'rxjs';
import { ErpsContext, ErpsPush, ErpsRecordBuilder, ErpsServer } from 'nestjs-erps';
import { CapturedLogs, LogEntry } from '../support/captured-logs';
import { answered, DirectApp, expectDirect, expectThroughNest, failedWith, INTERNAL, outcomeOf, planOf, Seen, startDirectApp } from '../support/direct-dispatch';
import { waitFor } from '../support/wait';

/*
 * Issue 16, direct dispatch: the same app of plain handlers (no guard, pipe, interceptor, filter or custom decorator)
 * run twice, once as Nest runs it (no enableDirectDispatch) and once with direct dispatch. Every call and event is
 * recorded as its caller and the app see it (values, errors, pushes, what the event handlers got, what was logged),
 * and the two runs must match exactly. The Nest run is also checked against what Nest is known to answer, so the
 * comparison cannot pass on two equally broken runs.
 */

/** What the handlers did, in order. */
const journal: unknown[] = [];
let scopedInstances = 0;
let perRequestIds = 0;

function describeCtx(ctx: unknown): Record<string, unknown> {
  if (!(ctx instanceof ErpsContext)) return { isErpsContext: false, type: typeof ctx };
  return {
    isErpsContext: true,
    pattern: ctx.getPattern(),
    remote: ctx.isRemote(),
    cn: ctx.peer?.cn,
    headers: ctx.getHeaders(),
    metadata: ctx.getMetadata() ?? 'none',
    connectionId: typeof ctx.connectionId,
    remoteAddress: ctx.remoteAddress,
    args: ctx.getArgs().length,
  };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

@Controller()
class PlainController {
  @MessagePattern('value')
  value(@Payload() n: number): number {
    return n + 1;
  }

  @MessagePattern('undefined')
  returnsUndefined(): undefined {
    return undefined;
  }

  @MessagePattern('null')
  returnsNull(): null {
    return null;
  }

  @MessagePattern('promise')
  async promise(@Payload() n: number): Promise<string> {
    await tick();
    return `later ${n}`;
  }

  @MessagePattern('promise.reject')
  async promiseReject(): Promise<never> {
    await tick();
    throw new Error('async boom');
  }

  @MessagePattern('promise.reject.rpc')
  async promiseRejectRpc(): Promise<never> {
    await tick();
    throw new RpcException('async rpc error');
  }

  @MessagePattern('throw')
  throws(): never {
    throw new Error('sync boom');
  }

  @MessagePattern('throw.rpc.text')
  throwsRpcText(): never {
    throw new RpcException('plain text');
  }

  @MessagePattern('throw.rpc.object')
  throwsRpcObject(): never {
    throw new RpcException({ code: 'E_APP', message: 'object error', details: { n: 1 } });
  }

  @MessagePattern('throw.http')
  throwsHttp(): never {
    throw new NotFoundException('no such thing');
  }

  @MessagePattern('throw.string')
  throwsString(): never {
    // eslint-disable-next-line @typescript-eslint/only-throw-error -- what some code does; Nest copes with it
    throw 'a thrown string';
  }

  @MessagePattern('observable')
  observable(): Observable<number> {
    return of(1, 2, 3);
  }

  @MessagePattern('observable.async')
  observableAsync(): Observable<number> {
    return interval(1).pipe(take(3));
  }

  @MessagePattern('observable.empty')
  observableEmpty(): Observable<never> {
    return EMPTY;
  }

  @MessagePattern('observable.error')
  observableError(): Observable<number> {
    return concat(
      of(1, 2),
      throwError(() => new RpcException('mid-stream')),
    );
  }

  @MessagePattern('observable.error.plain')
  observableErrorPlain(): Observable<string> {
    return concat(
      of('a'),
      throwError(() => new Error('mid-stream crash')),
    );
  }

  @MessagePattern('promise.observable')
  async promiseObservable(): Promise<Observable<string>> {
    await tick();
    return of('x', 'y');
  }

  @MessagePattern('promise.observable.error')
  async promiseObservableError(): Promise<Observable<string>> {
    await tick();
    return concat(
      of('x'),
      throwError(() => new RpcException({ code: 'E_LATE', message: 'late' })),
    );
  }

  @MessagePattern('observable.throws.on.subscribe')
  observableThrowsOnSubscribe(): Observable<never> {
    return new Observable<never>(() => {
      throw new Error('subscribe boom');
    });
  }

  @MessagePattern({ cmd: 'object.pattern', version: 2 })
  objectPattern(@Payload() data: unknown): unknown {
    return { object: data };
  }

  @MessagePattern('payload.whole')
  payloadWhole(@Payload() payload: unknown): unknown {
    return { payload };
  }

  @MessagePattern('payload.key')
  payloadKey(@Payload('key') key: unknown): unknown {
    return { key, type: typeof key };
  }

  @MessagePattern('ctx')
  ctx(@Ctx() ctx: ErpsContext): unknown {
    return describeCtx(ctx);
  }

  @MessagePattern('bare')
  bare(data: unknown, ctx: unknown): unknown {
    return { data, ctx: describeCtx(ctx) };
  }

  @MessagePattern('rest')
  rest(...args: unknown[]): unknown {
    return { count: args.length, data: args[0], ctx: describeCtx(args[1]) };
  }

  @MessagePattern('payload.rest')
  payloadRest(@Payload() payload: unknown, ...rest: unknown[]): unknown {
    return { payload, rest: rest.length };
  }

  @MessagePattern('payload.ctx')
  payloadCtx(@Payload() payload: unknown, @Ctx() ctx: ErpsContext): unknown {
    return { payload, ctx: describeCtx(ctx) };
  }

  @MessagePattern('ctx.payload')
  ctxPayload(@Ctx() ctx: ErpsContext, @Payload() payload: unknown): unknown {
    return { payload, ctx: describeCtx(ctx) };
  }

  @MessagePattern('ctx.key')
  ctxKey(@Ctx() ctx: ErpsContext, @Payload('key') key: unknown): unknown {
    return { key, pattern: ctx.getPattern() };
  }

  @MessagePattern('ctx.push')
  ctxPush(@Payload() count: number, @Ctx() ctx: ErpsContext): string {
    for (let i = 0; i < count; i++) ctx.push('note', { i });
    return 'pushed';
  }

  @MessagePattern('this')
  self(): unknown {
    return { isController: this instanceof PlainController };
  }

  @MessagePattern('ticks')
  ticks(): Observable<number> {
    return interval(2).pipe(finalize(() => journal.push('ticks torn down')));
  }

  @EventPattern<string>('ev.sync')
  evSync(@Payload() data: unknown): void {
    journal.push(['ev.sync', data]);
  }

  @EventPattern<string>('ev.async')
  async evAsync(@Payload() data: unknown): Promise<void> {
    journal.push(['ev.async', 'start', data]);
    await tick();
    journal.push(['ev.async', 'end']);
  }

  @EventPattern<string>('ev.throw')
  evThrow(@Payload() data: unknown): never {
    journal.push(['ev.throw', data]);
    throw new Error('event boom');
  }

  @EventPattern<string>('ev.throw.async')
  async evThrowAsync(@Payload() data: unknown): Promise<never> {
    journal.push(['ev.throw.async', data]);
    await tick();
    throw new Error('async event boom');
  }

  @EventPattern<string>('ev.throw.rpc')
  evThrowRpc(@Payload() data: unknown): never {
    journal.push(['ev.throw.rpc', data]);
    throw new RpcException('event rpc error');
  }

  @EventPattern<string>('ev.ctx')
  evCtx(@Payload() data: unknown, @Ctx() ctx: ErpsContext): void {
    journal.push(['ev.ctx', data, describeCtx(ctx)]);
  }

  @EventPattern<string>('ev.bare')
  evBare(data: unknown, ctx: unknown): void {
    journal.push(['ev.bare', data, describeCtx(ctx)]);
  }

  @EventPattern<string>('ev.observable')
  evObservable(@Payload() data: unknown): Observable<unknown> {
    return of(1, 2).pipe(tap((value) => journal.push(['ev.observable', data, value])));
  }

  @EventPattern<string>('ev.twice')
  evTwiceFirst(@Payload() data: unknown): void {
    journal.push(['ev.twice', 'first', data]);
  }
}

@Controller()
class SecondController {
  @EventPattern<string>('ev.twice')
  evTwiceSecond(@Payload() data: unknown): void {
    journal.push(['ev.twice', 'second', data]);
  }
}

@Controller({ scope: Scope.REQUEST })
class RequestScopedController {
  private readonly instance = ++scopedInstances;

  constructor(@Inject(CONTEXT) private readonly request: RequestContext) {}

  @MessagePattern('scoped')
  scoped(@Payload() data: unknown, @Ctx() ctx: ErpsContext): unknown {
    return { instance: this.instance, pattern: this.request.getPattern(), data: this.request.getData(), sameData: this.request.getData() === data, ctx: describeCtx(ctx) };
  }

  @EventPattern<string>('scoped.event')
  scopedEvent(@Payload() data: unknown): void {
    journal.push(['scoped.event', data, this.instance, this.request.getPattern()]);
  }
}

@Injectable({ scope: Scope.REQUEST })
class PerRequest {
  readonly id = ++perRequestIds;
}

/** No scope option, but it depends on a request-scoped provider: Nest makes it request-scoped too. */
@Controller()
class ImplicitlyScopedController {
  constructor(private readonly perRequest: PerRequest) {}

  @MessagePattern('implicit')
  implicit(@Payload() data: unknown): unknown {
    return { id: this.perRequest.id, data };
  }
}

// ------------------------------------------------------------------------------------------------------------
// The cases, with what Nest answers.
// ------------------------------------------------------------------------------------------------------------

const CTX_SEEN = { isErpsContext: true, remote: true, cn: 'alice', headers: {}, metadata: 'none', connectionId: 'number', remoteAddress: '127.0.0.1', args: 4 };
const ctxSeen = (pattern: string, headers?: Record<string, string>): Record<string, unknown> =>
  headers === undefined ? { ...CTX_SEEN, pattern } : { ...CTX_SEEN, pattern, headers, metadata: headers };

const NO_CTX = { isErpsContext: false, type: 'undefined' };

interface CallCase {
  name: string;
  /** As the client sends it (a string, or an object pattern). */
  pattern: string | Record<string, unknown>;
  data?: unknown;
  headers?: Record<string, string>;
  /** What Nest answers. */
  nest: Seen[];
  /** The pushes Nest sends before the answer. */
  pushes?: unknown[];
}

const CALL_CASES: CallCase[] = [
  { name: 'a sync value', pattern: 'value', data: 1, nest: answered(2) },
  { name: 'undefined', pattern: 'undefined', nest: answered(undefined) },
  { name: 'null', pattern: 'null', nest: answered(null) },
  { name: 'a Promise', pattern: 'promise', data: 5, nest: answered('later 5') },
  { name: 'a Promise rejecting with an Error', pattern: 'promise.reject', nest: failedWith(INTERNAL) },
  { name: 'a Promise rejecting with an RpcException', pattern: 'promise.reject.rpc', nest: failedWith({ status: 'error', message: 'async rpc error' }) },
  { name: 'a sync throw', pattern: 'throw', nest: failedWith(INTERNAL) },
  { name: "throw RpcException('text')", pattern: 'throw.rpc.text', nest: failedWith({ status: 'error', message: 'plain text' }) },
  { name: 'throw RpcException({ code, message })', pattern: 'throw.rpc.object', nest: failedWith({ code: 'E_APP', message: 'object error', details: { n: 1 } }) },
  { name: 'an HttpException, no filter', pattern: 'throw.http', nest: failedWith(INTERNAL) },
  { name: 'a thrown string', pattern: 'throw.string', nest: failedWith(INTERNAL) },
  { name: 'an Observable of several values', pattern: 'observable', nest: answered(1, 2, 3) },
  { name: 'an asynchronous Observable', pattern: 'observable.async', nest: answered(0, 1, 2) },
  { name: 'an empty Observable', pattern: 'observable.empty', nest: answered() },
  {
    name: 'an Observable failing mid-stream with an RpcException',
    pattern: 'observable.error',
    nest: [{ next: 1 }, { next: 2 }, { error: { status: 'error', message: 'mid-stream' } }],
  },
  { name: 'an Observable failing mid-stream with an Error', pattern: 'observable.error.plain', nest: [{ next: 'a' }, { error: INTERNAL }] },
  { name: 'a Promise of an Observable', pattern: 'promise.observable', nest: answered('x', 'y') },
  { name: 'a Promise of an Observable that fails', pattern: 'promise.observable.error', nest: [{ next: 'x' }, { error: { code: 'E_LATE', message: 'late' } }] },
  { name: 'an Observable that throws on subscription', pattern: 'observable.throws.on.subscribe', nest: failedWith(INTERNAL) },
  { name: 'an object pattern, keys in another order', pattern: { version: 2, cmd: 'object.pattern' }, data: 'o', nest: answered({ object: 'o' }) },
  { name: '@Payload()', pattern: 'payload.whole', data: { a: [1, 'b'], c: null }, nest: answered({ payload: { a: [1, 'b'], c: null } }) },
  { name: "@Payload('key')", pattern: 'payload.key', data: { key: 'k', other: 1 }, nest: answered({ key: 'k', type: 'string' }) },
  { name: "@Payload('key') of a payload without it", pattern: 'payload.key', data: { other: 1 }, nest: answered({ key: undefined, type: 'undefined' }) },
  { name: "@Payload('key') of a null payload", pattern: 'payload.key', data: null, nest: answered({ key: undefined, type: 'undefined' }) },
  { name: "@Payload('key') of a number", pattern: 'payload.key', data: 3, nest: answered({ key: undefined, type: 'undefined' }) },
  { name: '@Ctx()', pattern: 'ctx', nest: answered(ctxSeen('ctx')) },
  { name: '@Ctx() with headers', pattern: 'ctx', headers: { tenant: 'acme' }, nest: answered(ctxSeen('ctx', { tenant: 'acme' })) },
  // Without parameter decorators Nest passes the payload alone.
  { name: 'no decorators: (data, ctx)', pattern: 'bare', data: { d: 1 }, nest: answered({ data: { d: 1 }, ctx: NO_CTX }) },
  { name: 'no decorators: (...args)', pattern: 'rest', data: 'r', nest: answered({ count: 1, data: 'r', ctx: NO_CTX }) },
  { name: '@Payload() then ...rest', pattern: 'payload.rest', data: 'p', nest: answered({ payload: 'p', rest: 0 }) },
  { name: '@Payload() then @Ctx()', pattern: 'payload.ctx', data: 7, nest: answered({ payload: 7, ctx: ctxSeen('payload.ctx') }) },
  { name: '@Ctx() then @Payload()', pattern: 'ctx.payload', data: 8, nest: answered({ payload: 8, ctx: ctxSeen('ctx.payload') }) },
  { name: "@Ctx() then @Payload('key')", pattern: 'ctx.key', data: { key: 9 }, nest: answered({ key: 9, pattern: 'ctx.key' }) },
  { name: 'ctx.push() before the answer', pattern: 'ctx.push', data: 2, nest: answered('pushed'), pushes: [{ i: 0 }, { i: 1 }] },
  { name: 'this is the controller', pattern: 'this', nest: answered({ isController: true }) },
  {
    name: 'a request-scoped controller (first call)',
    pattern: 'scoped',
    data: { s: 1 },
    nest: answered({ instance: 1, pattern: 'scoped', data: { s: 1 }, sameData: true, ctx: ctxSeen('scoped') }),
  },
  {
    name: 'a request-scoped controller (second call: a new instance)',
    pattern: 'scoped',
    data: { s: 2 },
    nest: answered({ instance: 2, pattern: 'scoped', data: { s: 2 }, sameData: true, ctx: ctxSeen('scoped') }),
  },
  { name: 'a controller made request-scoped by its dependency (first call)', pattern: 'implicit', data: 'i', nest: answered({ id: 1, data: 'i' }) },
  { name: 'a controller made request-scoped by its dependency (second call)', pattern: 'implicit', data: 'j', nest: answered({ id: 2, data: 'j' }) },
];

interface EventCase {
  name: string;
  pattern: string;
  data: unknown;
  headers?: Record<string, string>;
  /** What the event handlers journal under Nest (waited for). */
  nest: unknown[];
}

const EVENT_CASES: EventCase[] = [
  { name: 'a sync handler', pattern: 'ev.sync', data: { e: 1 }, nest: [['ev.sync', { e: 1 }]] },
  {
    name: 'an async handler',
    pattern: 'ev.async',
    data: 2,
    nest: [
      ['ev.async', 'start', 2],
      ['ev.async', 'end'],
    ],
  },
  { name: 'a handler that throws', pattern: 'ev.throw', data: 3, nest: [['ev.throw', 3]] },
  { name: 'an async handler that rejects', pattern: 'ev.throw.async', data: 4, nest: [['ev.throw.async', 4]] },
  { name: 'a handler that throws an RpcException', pattern: 'ev.throw.rpc', data: 5, nest: [['ev.throw.rpc', 5]] },
  { name: '@Payload() and @Ctx()', pattern: 'ev.ctx', data: 6, headers: { trace: 't-1' }, nest: [['ev.ctx', 6, ctxSeen('ev.ctx', { trace: 't-1' })]] },
  { name: 'no decorators', pattern: 'ev.bare', data: 7, nest: [['ev.bare', 7, NO_CTX]] },
  {
    name: 'a handler returning an Observable',
    pattern: 'ev.observable',
    data: 8,
    nest: [
      ['ev.observable', 8, 1],
      ['ev.observable', 8, 2],
    ],
  },
  {
    name: 'two handlers of one pattern in two controllers',
    pattern: 'ev.twice',
    data: 9,
    nest: [
      ['ev.twice', 'first', 9],
      ['ev.twice', 'second', 9],
    ],
  },
  // The third instance: the two 'scoped' calls made the first two.
  { name: 'a request-scoped controller', pattern: 'scoped.event', data: 10, nest: [['scoped.event', 10, 3, 'scoped.event']] },
];

// ------------------------------------------------------------------------------------------------------------
// Running every case against one app.
// ------------------------------------------------------------------------------------------------------------

interface CallOutcome {
  reply: Seen[];
  pushes: unknown[];
}

interface EventOutcome {
  journal: unknown[];
  /** A call right after the event: the server still answers. */
  after: Seen[];
}

interface Run {
  calls: Record<string, CallOutcome>;
  events: Record<string, EventOutcome>;
  /** Error and warning lines Nest and the server logged, per case. */
  logs: Record<string, LogEntry[]>;
  cancelled: { values: Seen[]; tornDown: boolean };
  concurrent: Seen[][];
}

const logs = new CapturedLogs();
const CONTROLLERS = [PlainController, SecondController, RequestScopedController, ImplicitlyScopedController];

const loud = (): LogEntry[] => logs.entries.filter((entry) => entry.level !== 'log' && entry.level !== 'debug' && entry.level !== 'verbose');

function withHeaders(data: unknown, headers: Record<string, string> | undefined): unknown {
  return headers === undefined ? data : new ErpsRecordBuilder(data).setHeaders(headers).build();
}

async function runEveryCase(running: DirectApp): Promise<Run> {
  const { client } = running;
  const run: Run = { calls: {}, events: {}, logs: {}, cancelled: { values: [], tornDown: false }, concurrent: [] };
  const pushes: unknown[] = [];
  const subscription: Subscription = client.pushes('note').subscribe((push: ErpsPush) => pushes.push(push.data));
  try {
    for (const testCase of CALL_CASES) {
      pushes.length = 0;
      logs.clear();
      const reply = await outcomeOf(client.send(testCase.pattern, withHeaders(testCase.data, testCase.headers)));
      await firstValueFrom(client.send('value', 0)); // lets anything logged after the answer arrive
      run.calls[testCase.name] = { reply, pushes: [...pushes] };
      run.logs[`call ${testCase.name}`] = loud();
    }
    for (const testCase of EVENT_CASES) {
      journal.length = 0;
      logs.clear();
      client.emit(testCase.pattern, withHeaders(testCase.data, testCase.headers));
      await waitFor(() => journal.length >= testCase.nest.length, 1000).catch(() => undefined);
      const after = await outcomeOf(client.send('value', 41));
      await tick();
      run.events[testCase.name] = { journal: [...journal], after };
      run.logs[`event ${testCase.name}`] = loud();
    }
    journal.length = 0;
    const values = await outcomeOf(client.send('ticks', {}).pipe(take(2)));
    const tornDown = await waitFor(() => journal.includes('ticks torn down'), 1000).then(
      () => true,
      () => false,
    );
    run.cancelled = { values, tornDown };
    run.concurrent = await Promise.all(Array.from({ length: 100 }, (_, i) => outcomeOf(client.send(['value', 'promise', 'throw.rpc.text', 'observable'][i % 4]!, i))));
  } finally {
    subscription.unsubscribe();
  }
  return run;
}

// ------------------------------------------------------------------------------------------------------------
// The two runs, compared.
// ------------------------------------------------------------------------------------------------------------

describe('direct dispatch: plain handlers behave exactly as they do through Nest', () => {
  const runs: { nest?: Run; direct?: Run } = {};
  let nestPlan: ReturnType<ErpsServer['dispatchPlan']> = [];
  let directServer: ErpsServer;

  beforeAll(async () => {
    for (const mode of ['nest', 'direct'] as const) {
      scopedInstances = 0;
      perRequestIds = 0;
      journal.length = 0;
      const running = await startDirectApp({ controllers: CONTROLLERS, providers: [PerRequest] }, { when: mode === 'nest' ? 'never' : 'before-listen', logger: logs });
      try {
        runs[mode] = await runEveryCase(running);
        if (mode === 'nest') nestPlan = running.server.dispatchPlan();
        else directServer = running.server;
      } finally {
        await running.close();
      }
    }
  });

  const nest = (): Run => runs.nest!;
  const direct = (): Run => runs.direct!;

  describe('calls', () => {
    it.each(CALL_CASES.map((testCase) => [testCase.name, testCase] as const))('%s: Nest answers as expected', (name, testCase) => {
      expect(nest().calls[name]).toEqual({ reply: testCase.nest, pushes: testCase.pushes ?? [] });
    });

    it.each(CALL_CASES.map((testCase) => testCase.name))('%s: the caller sees exactly the same with direct dispatch', (name) => {
      expect(direct().calls[name]).toStrictEqual(nest().calls[name]);
    });
  });

  describe('events', () => {
    it.each(EVENT_CASES.map((testCase) => [testCase.name, testCase] as const))('%s: Nest runs the handlers as expected, and still answers calls', (name, testCase) => {
      expect(nest().events[name]).toEqual({ journal: testCase.nest, after: answered(42) });
    });

    it.each(EVENT_CASES.map((testCase) => testCase.name))('%s: the handlers get exactly the same with direct dispatch, and the server still answers', (name) => {
      expect(direct().events[name]).toStrictEqual(nest().events[name]);
    });
  });

  it('errors and warnings are logged as Nest logs them (a crash is not swallowed, none is logged twice)', () => {
    // Nest logs what it hides behind "Internal server error"; make sure the comparison has something to compare.
    expect(nest().logs['call a sync throw']).toEqual(expect.arrayContaining([expect.objectContaining({ level: 'error', message: 'sync boom' })]));
    expect(nest().logs['event a handler that throws']).toEqual(expect.arrayContaining([expect.objectContaining({ level: 'error', message: 'event boom' })]));
    expect(direct().logs).toStrictEqual(nest().logs);
  });

  it('a caller unsubscribing tears down the handler stream, as through Nest', () => {
    expect(nest().cancelled).toEqual({ values: [{ next: 0 }, { next: 1 }, { complete: true }], tornDown: true });
    expect(direct().cancelled).toStrictEqual(nest().cancelled);
  });

  it('100 concurrent calls of mixed kinds get the same answers', () => {
    expect(nest().concurrent[0]).toEqual(answered(1));
    expect(nest().concurrent[2]).toEqual(failedWith({ status: 'error', message: 'plain text' }));
    expect(direct().concurrent).toStrictEqual(nest().concurrent);
  });

  it('without enableDirectDispatch, dispatchPlan() has every pattern going through Nest', () => {
    expect(nestPlan.length).toBeGreaterThan(0);
    expect(nestPlan.filter((entry) => entry.direct)).toEqual([]);
  });

  it('with it, every plain handler is direct; two handlers of one event and request-scoped controllers are not', () => {
    const plainCalls = new Set([...CALL_CASES.map((testCase) => testCase.pattern).filter((pattern) => typeof pattern === 'string'), 'ticks']);
    plainCalls.delete('scoped');
    plainCalls.delete('implicit');
    for (const pattern of plainCalls) expectDirect(directServer, pattern, 'call');
    for (const pattern of ['ev.sync', 'ev.async', 'ev.throw', 'ev.throw.async', 'ev.throw.rpc', 'ev.ctx', 'ev.bare', 'ev.observable']) expectDirect(directServer, pattern, 'event');
    expect(directServer.dispatchPlan().filter((entry) => entry.pattern.includes('object.pattern'))).toEqual([expect.objectContaining({ kind: 'call', direct: true })]);
    expect(planOf(directServer, 'ev.twice')).toMatchObject({ kind: 'event', direct: false });
    expectThroughNest(directServer, 'scoped', 'call', /request/i);
    expectThroughNest(directServer, 'scoped.event', 'event', /request/i);
    expectThroughNest(directServer, 'implicit', 'call', /request/i);
  });
});
