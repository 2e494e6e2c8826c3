import type { LoggerService } from '@nestjs/common';
import { isShapedByFilter } from './shaped-by-filter.js';

/** What Nest's RPC exception filter sends for anything that is not an RpcException (an HttpException included). */
const NEST_UNKNOWN_ERROR_MESSAGE = 'Internal server error';

/** Patterns warned about; calls reach here only for patterns with a handler, this only bounds odd cases. */
const WARNED_PATTERNS_LIMIT = 1024;

/**
 * Warns, once per pattern, when a call answered Nest's generic "Internal server error" and ErpsExceptionFilter
 * was not in that handler's exception-filter chain. Without the filter an HttpException (ValidationPipe's
 * BadRequestException, NotFoundException, ...) reaches the caller as that generic error, and Nest logs nothing
 * for it; in a hybrid app this happens when the filter was registered after `connectMicroservice()`.
 */
export class MissingFilterWarning {
  private readonly warned = new Set<string>();

  constructor(private readonly logger: LoggerService) {}

  /** `error` is what a call handler's Nest pipeline failed with, as it goes to the caller. */
  check(pattern: string, error: unknown): void {
    if (!isNestUnknownError(error) || isShapedByFilter(error)) return;
    if (this.warned.has(pattern) || this.warned.size >= WARNED_PATTERNS_LIMIT) return;
    this.warned.add(pattern);
    this.logger.warn(
      `Erps call "${pattern}" answered "${NEST_UNKNOWN_ERROR_MESSAGE}" and ErpsExceptionFilter is not in its exception-filter chain: ` +
        `if the handler threw an HttpException (e.g. ValidationPipe's BadRequestException), the caller lost its status and messages ` +
        `and Nest logged nothing. Register the filter as a provider { provide: APP_FILTER, useClass: ErpsExceptionFilter } ` +
        `(in a hybrid app with connectMicroservice(..., { inheritAppConfig: true })), or with app.useGlobalFilters() before ` +
        `connectMicroservice(), or with @UseFilters(ErpsExceptionFilter) on the controller. ` +
        `See the README, "Validation and hybrid apps". Logged once per pattern.`,
    );
  }
}

function isNestUnknownError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { status, message, ...rest } = error as Record<string, unknown>;
  return status === 'error' && message === NEST_UNKNOWN_ERROR_MESSAGE && Object.keys(rest).length === 0;
}
