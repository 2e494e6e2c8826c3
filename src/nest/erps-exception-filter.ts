import { ArgumentsHost, Catch, HttpException } from '@nestjs/common';
import { BaseRpcExceptionFilter } from '@nestjs/microservices';
import { Observable, throwError } from 'rxjs';

/**
 * Nest's RPC filter turns every non-RpcException into "Internal server error", which hides the messages
 * of `ValidationPipe` and other HttpExceptions from remote callers. This filter sends an HttpException's
 * response body instead (`{ statusCode, message, error }` plus `status: 'error'`), and leaves everything
 * else to Nest's filter. Use it with `app.useGlobalFilters(new ErpsExceptionFilter())`.
 */
@Catch()
export class ErpsExceptionFilter extends BaseRpcExceptionFilter {
  override catch(exception: unknown, host: ArgumentsHost): Observable<unknown> {
    if (exception instanceof HttpException) {
      const body = exception.getResponse();
      const shaped = typeof body === 'object' && body !== null ? { status: 'error', ...body } : { status: 'error', statusCode: exception.getStatus(), message: body };
      return throwError(() => shaped);
    }
    return super.catch(exception, host);
  }
}
