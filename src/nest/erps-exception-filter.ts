import { ArgumentsHost, Catch, HttpException, Inject, Optional } from '@nestjs/common';
import { BaseExceptionFilter, HttpAdapterHost } from '@nestjs/core';
import { BaseRpcExceptionFilter } from '@nestjs/microservices';
import { catchError, EMPTY, Observable, throwError } from 'rxjs';
import { markShapedByFilter } from './shaped-by-filter.js';

/**
 * Nest's RPC filter turns every non-RpcException into "Internal server error", which hides the messages
 * of `ValidationPipe` and other HttpExceptions from remote callers. This filter sends an HttpException's
 * response body instead (`{ statusCode, message, error }` plus `status: 'error'`), and leaves everything
 * else to Nest's filter.
 *
 * Register it as a provider `{ provide: APP_FILTER, useClass: ErpsExceptionFilter }`, with
 * `app.useGlobalFilters(new ErpsExceptionFilter())`, or with `@UseFilters(ErpsExceptionFilter)`; in a hybrid app
 * see the README, "Validation and hybrid apps". Bound to HTTP routes as well (a global filter of a hybrid app
 * is), it answers their exceptions as Nest's own HTTP filter does, given the HTTP adapter: Nest injects it into
 * the provider and `@UseFilters` forms; pass `app.get(HttpAdapterHost)` to the constructor otherwise (without it,
 * `@nestjs/core` 11.2.10 and 12.2.0 or later answer HTTP requests themselves, earlier versions leave them unanswered).
 */
@Catch()
export class ErpsExceptionFilter extends BaseRpcExceptionFilter {
  private httpFilter: BaseExceptionFilter | undefined;

  constructor(@Optional() @Inject(HttpAdapterHost) private readonly httpAdapterHost?: HttpAdapterHost) {
    super();
  }

  override catch(exception: unknown, host: ArgumentsHost): Observable<unknown> {
    if (host.getType() === 'http') return this.answerHttp(exception, host);
    const reply$ = exception instanceof HttpException ? throwError(() => httpErrorReply(exception)) : super.catch(exception, host);
    return reply$.pipe(catchError((error: unknown) => throwError(() => markShapedByFilter(error))));
  }

  /** An HTTP route's exception: answered as Nest answers it, or handed back to Nest when there is no adapter. */
  private answerHttp(exception: unknown, host: ArgumentsHost): Observable<never> {
    const adapter = this.httpAdapterHost?.httpAdapter;
    if (adapter === undefined) return throwError(() => exception);
    this.httpFilter ??= new BaseExceptionFilter(adapter);
    this.httpFilter.catch(exception, host);
    return EMPTY;
  }
}

function httpErrorReply(exception: HttpException): Record<string, unknown> {
  const body = exception.getResponse();
  return typeof body === 'object' && body !== null ? { status: 'error', ...body } : { status: 'error', statusCode: exception.getStatus(), message: body };
}
